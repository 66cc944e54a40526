"""EAT: inference clips/s of EAT-S (EAT-M for reference), and the augmentations batched vs a per-clip loop.

Inference runs ESC-50-length clips (114688 samples, 5.2 s at 22.05 kHz) through EAT-S and EAT-M in eval mode under
``torch.inference_mode``; the table gives clips/s, the real-time factor (seconds of audio per second of compute) and
the ratio to EAT-S. The augmentation rows time EAT's per-sample stage (six signal augmentations in a random order,
then one of the eight noises; the paper's p = 0.5) on one batch, as ``miil.audio`` runs it (one call on the batch)
and as the original ran it (one call per clip, as its data-loader workers did), plus the batch-level resampling.
Every timing is the median of ``--repeats`` runs after a warm-up; on a GPU each run is bracketed by
``torch.cuda.synchronize`` (the batch and its random draws live on the device: a generator of the device, as the
global RNG the training engine seeds), so the time is that of the finished work. The batched augmentations exist for
the GPU, where a per-clip loop launches every kernel once per clip (goal there: >= 10x).

    uv run python tools/bench/audio.py [--device cpu|cuda] [--batch 8] [--repeats 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from miil.audio import AugmentConfig, RandomResample, WaveformAugment, eat_m, eat_s
from miil.core.distributed import resolve_device

SR, SEQ = 22050, 114688


def _median_time(fn, repeats: int, device: torch.device) -> tuple[float, float]:
    """Median wall-clock and process-CPU seconds of ``fn`` (CPU time is robust to other load on the machine)."""

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    fn()  # warm-up: allocator, kernels, FFT plans
    sync()
    wall, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        sync()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return statistics.median(wall), statistics.median(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--batch", type=int, default=None, help="clips per batch (default 8 on a CPU, 64 on a GPU)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--inference", default="EAT-S,EAT-M", help="models to time (comma-separated; empty: none)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = resolve_device(args.device)
    batch = args.batch or (64 if device.type == "cuda" else 8)
    x = 0.1 * torch.randn(batch, 1, SEQ, device=device)
    seconds = batch * SEQ / SR
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {args.threads} threads"
    print(f"torch {torch.__version__}, {where}, batch {batch} x {SEQ} samples ({SEQ / SR:.1f} s)")
    dev = "GPU" if device.type == "cuda" else "CPU"

    columns = "params | s / batch | CPU s / batch | clips/s | real-time factor | ratio to EAT-S"
    print(f"\n| inference (eval, {dev}) | {columns} |")
    print("|---|---|---|---|---|---|---|")
    base = None
    wanted = {n.strip() for n in args.inference.split(",") if n.strip()}
    for name, make in (("EAT-S", eat_s), ("EAT-M", eat_m)):
        if name not in wanted:
            continue
        model = make(num_classes=50, seq_len=SEQ).eval().to(device)
        params = sum(p.numel() for p in model.parameters()) / 1e6

        def run(model=model):
            with torch.inference_mode():
                model(x)

        t, c = _median_time(run, args.repeats, device)
        base = base or t
        rtf = seconds / t
        print(f"| {name} | {params:.2f}M | {t:.3f} | {c:.3f} | {batch / t:.1f} | {rtf:.1f}x | {base / t:.3f} |")

    augment = WaveformAugment(AugmentConfig(), sample_rate=SR)
    resample = RandomResample(p=1.0)

    def generator():
        return torch.Generator(device=device).manual_seed(1)

    def batched():
        augment(x, generator=generator())

    def per_clip():
        g = generator()
        torch.cat([augment(x[i : i + 1], generator=g) for i in range(len(x))])

    t_loop, c_loop = _median_time(per_clip, args.repeats, device)
    t_batch, c_batch = _median_time(batched, args.repeats, device)
    t_res, c_res = _median_time(lambda: resample(x, generator=generator()), args.repeats, device)
    print(f"\n| augmentation stage ({dev}) | s / batch | CPU s / batch | clips/s | speed-up over the per-clip loop |")
    print("|---|---|---|---|---|")
    rows = [
        ("signal + noise, per-clip loop (original)", t_loop, c_loop, "1.000"),
        ("signal + noise, batched (miil.audio)", t_batch, c_batch, f"{t_loop / t_batch:.3f}"),
        ("batch resampling, one factor of 0.8-1.2 (sinc)", t_res, c_res, "-"),
    ]
    for name, t, c, ratio in rows:
        print(f"| {name} | {t:.3f} | {c:.3f} | {batch / t:.1f} | {ratio} |")


if __name__ == "__main__":
    main()
