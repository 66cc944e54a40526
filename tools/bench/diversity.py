"""Benchmark: diversity measurement throughput (images/s), streaming moments vs materializing all features.

Paper: "Diverse ImageNet Models Transfer Better" (arXiv 2204.09134): diversity is measured over a dataset. This
measures, in one run and on one device, :func:`miil.diversity.measure_diversity` on the same model and images:

* ``materialize`` (baseline): keep every pooled feature of every measured layer, compute covariances at the end;
* ``streaming``: keep only ``count``, ``sum x`` and ``sum x x^T`` per layer, updated batch by batch.

Both include the forward passes and the filter-diversity pass over the weights; the feature memory each keeps is
reported next to the speed. Images are random tensors (speed does not depend on pixel values).

    uv run python tools/bench/diversity.py                                   # CPU-sized defaults
    uv run python tools/bench/diversity.py --device cuda --model resnet50 --img-size 224 --images 4096
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.utils.data import TensorDataset

from miil.core.backbones import create_backbone
from miil.diversity import FeatureCollector, measure_diversity
from miil.diversity.measure import _default_layers


def _run(model, data, *, materialize: bool, batch_size: int, device: torch.device) -> dict:
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    report = measure_diversity(model, data, batch_size=batch_size, device=device, materialize=materialize)
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "images_per_s": report.images / seconds, "report": report}


def _feature_bytes(model, n_images: int, img_size: int, device, materialize: bool) -> int:
    layers = _default_layers(model)
    collector = FeatureCollector(model, layers, materialize=materialize)
    with torch.no_grad():
        model.eval()
        model(torch.randn(2, 3, img_size, img_size, device=device))
    collector.remove()
    if materialize:
        return sum(t.shape[1] * 4 * n_images for ts in collector.stored.values() for t in ts[:1])
    return sum((m.dim + m.dim * m.dim + 1) * 8 for m in collector.moments.values())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="resnet18", help="timm model name")
    p.add_argument("--img-size", type=int, default=64, help="image side")
    p.add_argument("--images", type=int, default=512, help="number of images")
    p.add_argument("--batch-size", type=int, default=64, help="batch size")
    p.add_argument("--device", default="cpu", help="cpu | cuda")
    p.add_argument("--threads", type=int, default=1, help="CPU threads")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    model = create_backbone(args.model, num_classes=10).to(device)
    data = TensorDataset(torch.randn(args.images, 3, args.img_size, args.img_size), torch.zeros(args.images))
    _run(
        model,
        TensorDataset(data.tensors[0][: args.batch_size], data.tensors[1][: args.batch_size]),
        materialize=False,
        batch_size=args.batch_size,
        device=device,
    )  # warm-up
    base = _run(model, data, materialize=True, batch_size=args.batch_size, device=device)
    stream = _run(model, data, materialize=False, batch_size=args.batch_size, device=device)
    diff = max(
        abs(base["report"].overall[k] - stream["report"].overall[k]) for k in ("effective_rank", "feature_correlation")
    )
    mem = {m: _feature_bytes(model, args.images, args.img_size, device, m) for m in (True, False)}
    print(
        f"{args.model}, {args.images} images {args.img_size}px, batch {args.batch_size}, {device}, "
        f"{args.threads} thread(s); layers: {', '.join(_default_layers(model))}"
    )
    print(f"{'mode':<12} {'seconds':>8} {'images/s':>9} {'ratio':>6} {'feature memory':>15}")
    for name, r, m in (("materialize", base, mem[True]), ("streaming", stream, mem[False])):
        ratio = r["images_per_s"] / base["images_per_s"]
        print(f"{name:<12} {r['seconds']:>8.2f} {r['images_per_s']:>9.1f} {ratio:>5.2f}x {m / 2**20:>12.2f} MiB")
    print(f"largest difference of the overall feature metrics between the two modes: {diff:.2e}")


if __name__ == "__main__":
    main()
