"""PETA inference speed: albums/s of 32-photo albums, against baselines measured in the same run.

Two comparisons, each at a tiny size (narrow TResNet-M, 64 px, 2-layer transformer) and at the paper's default size
(TResNet-M, 224 px, 6 layers x 2048 wide, ~180M parameters):

1. PETA vs the mean of per-photo predictions (same backbone): what the transformer over the album costs.
2. Albums of varying size (8..32 photos) in one batch: key-padding masks (padded slots skip the backbone) vs the
   original's padding by duplicating photos up to 32 (every slot goes through the backbone).

Random weights (speed does not depend on them); eval mode, ``torch.inference_mode``. All measurements of a size are
interleaved round-robin (``--repeats`` rounds after a warm-up) and the fastest round is reported. ``--clock cpu``
(the default) times this process's CPU seconds, which on a machine shared with other jobs measures the code rather
than the neighbours; it is meaningful with ``--threads 1`` (the default). ``--clock wall`` for a machine of one's own.

    uv run python tools/bench/album.py [--repeats 5] [--threads 1] [--clock cpu] [--sizes tiny default] [--batch 4]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch

from miil.album import PETA, MeanOfPredictions
from miil.album.data import eval_album_indices

SIZES = {
    # name: (backbone kwargs, image side, transformer kwargs)
    "tiny": ({"width_factor": 0.125}, 64, {"depth": 2, "num_heads": 8, "ffn_dim": 256}),
    "default": ({}, 224, {}),
}
K = 32


CLOCKS = {"cpu": time.process_time, "wall": time.perf_counter}


def _time_interleaved(fns: dict[str, Callable[[], object]], repeats: int, clock: str) -> dict[str, float]:
    """Seconds per call of each function: warm-up, then ``repeats`` round-robin rounds; the fastest round counts
    (on a shared machine, slower rounds measure the neighbours, not the code)."""
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    now = CLOCKS[clock]
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = now()
            fn()
            times[name].append(now() - t0)
    return {name: min(values) for name, values in times.items()}


def _album_sizes(batch: int) -> list[int]:
    """Sizes spread over 8..32 photos (short albums are common in PEC and CUFED)."""
    if batch == 1:
        return [20]
    return [round(8 + (K - 8) * i / (batch - 1)) for i in range(batch)]


def bench_size(name: str, batch: int, repeats: int, clock: str) -> list[tuple[str, str, float, str]]:
    backbone_kwargs, side, transformer = SIZES[name]
    torch.manual_seed(0)
    peta = PETA("tresnet_m", backbone_kwargs=backbone_kwargs, num_classes=23, **transformer).eval()
    mean = MeanOfPredictions("tresnet_m", backbone_kwargs=backbone_kwargs, num_classes=23).eval()
    full = torch.rand(batch, K, 3, side, side)
    rows = []
    sizes = _album_sizes(batch)
    mask = torch.zeros(batch, K, dtype=torch.bool)
    for i, n in enumerate(sizes):
        mask[i, :n] = True
    # The original: repeat photos (linspace over the album) up to K.
    duplicated = torch.stack([full[i, eval_album_indices(n, K, pad="duplicate")] for i, n in enumerate(sizes)])
    with torch.inference_mode():
        emb = peta.embed_images(full)
        t = _time_interleaved(
            {
                "mean": lambda: mean(full),
                "peta": lambda: peta(full),
                "aggregator": lambda: peta.forward_embeddings(emb),
                "duplicate": lambda: peta(duplicated),
                "mask": lambda: peta(full, mask),
            },
            repeats,
            clock,
        )
    label = f"sizes {sizes[0]}..{sizes[-1]}"
    rows.append((name, "mean of predictions (baseline)", batch / t["mean"], "1.00"))
    rows.append((name, "PETA", batch / t["peta"], f"{t['mean'] / t['peta']:.2f}"))
    rows.append((name, "PETA transformer + head only", batch / t["aggregator"], f"{t['mean'] / t['aggregator']:.2f}"))
    rows.append((name, f"{label}: duplicate to {K} (original)", batch / t["duplicate"], "1.00"))
    rows.append((name, f"{label}: key-padding mask", batch / t["mask"], f"{t['duplicate'] / t['mask']:.2f}"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds (the fastest is reported)")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="cpu", help="process CPU time or wall time")
    parser.add_argument("--sizes", nargs="+", default=["tiny", "default"], choices=sorted(SIZES))
    parser.add_argument("--batch", type=int, default=4, help="albums per batch (tiny size)")
    parser.add_argument("--default-batch", type=int, default=2, help="albums per batch at the default size")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = "cpu"
    print(
        f"PETA albums/s ({args.clock} clock), {K}-photo albums, {device}, {args.threads} thread(s), "
        f"best of {args.repeats} rounds"
    )
    rows = []
    for name in args.sizes:
        batch = args.batch if name == "tiny" else args.default_batch
        repeats = args.repeats if name == "tiny" else max(1, min(args.repeats, 2))
        rows += bench_size(name, batch, repeats, args.clock)
    print(f"{'size':<8} {'model / batch':<46} {'albums/s':>10} {'ratio':>7}")
    for size, what, speed, ratio in rows:
        print(f"{size:<8} {what:<46} {speed:>10.3f} {ratio:>7}")
    print("ratio: speed over the baseline row above it (PETA rows: vs mean of predictions; mask vs duplicate)")


if __name__ == "__main__":
    main()
