"""EAT on CPU: inference clips/s of EAT-S (EAT-M for reference), and the augmentations batched vs a per-clip loop.

Inference runs ESC-50-length clips (114688 samples, 5.2 s at 22.05 kHz) through EAT-S and EAT-M in eval mode under
``torch.inference_mode``; the table gives clips/s, the real-time factor (seconds of audio per second of compute) and
the ratio to EAT-S. The augmentation rows time EAT's per-sample stage (six signal augmentations in a random order,
then one of the eight noises; the paper's p = 0.5) on one batch, as ``miil.audio`` runs it (one call on the batch)
and as the original ran it (one call per clip, as its data-loader workers did), plus the batch-level resampling.
Every timing is the median of ``--repeats`` runs after a warm-up.

    uv run python tools/bench/audio.py [--batch 8] [--repeats 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from miil.audio import AugmentConfig, RandomResample, WaveformAugment, eat_m, eat_s

SR, SEQ = 22050, 114688


def _median_time(fn, repeats: int) -> tuple[float, float]:
    """Median wall-clock and process-CPU seconds of ``fn`` (CPU time is robust to other load on the machine)."""
    fn()  # warm-up: allocator, kernels, FFT plans
    wall, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return statistics.median(wall), statistics.median(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=8, help="clips per batch")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x = 0.1 * torch.randn(args.batch, 1, SEQ)
    seconds = args.batch * SEQ / SR
    print(f"torch {torch.__version__}, {args.threads} threads, batch {args.batch} x {SEQ} samples ({SEQ / SR:.1f} s)")

    print(
        "\n| inference (eval, CPU) | params | s / batch | CPU s / batch | clips/s | real-time factor | ratio to EAT-S |"
    )
    print("|---|---|---|---|---|---|---|")
    base = None
    for name, make in (("EAT-S", eat_s), ("EAT-M", eat_m)):
        model = make(num_classes=50, seq_len=SEQ).eval()
        params = sum(p.numel() for p in model.parameters()) / 1e6

        def run(model=model):
            with torch.inference_mode():
                model(x)

        t, c = _median_time(run, args.repeats)
        base = base or t
        rtf = seconds / t
        print(f"| {name} | {params:.2f}M | {t:.3f} | {c:.3f} | {args.batch / t:.1f} | {rtf:.1f}x | {base / t:.3f} |")

    augment = WaveformAugment(AugmentConfig(), sample_rate=SR)
    resample = RandomResample(p=1.0)

    def batched():
        augment(x, generator=torch.Generator().manual_seed(1))

    def per_clip():
        g = torch.Generator().manual_seed(1)
        torch.cat([augment(x[i : i + 1], generator=g) for i in range(len(x))])

    t_loop, c_loop = _median_time(per_clip, args.repeats)
    t_batch, c_batch = _median_time(batched, args.repeats)
    t_res, c_res = _median_time(lambda: resample(x, generator=torch.Generator().manual_seed(1)), args.repeats)
    print("\n| augmentation stage (CPU) | s / batch | CPU s / batch | clips/s | speed-up over the per-clip loop |")
    print("|---|---|---|---|---|")
    rows = [
        ("signal + noise, per-clip loop (original)", t_loop, c_loop, "1.000"),
        ("signal + noise, batched (miil.audio)", t_batch, c_batch, f"{t_loop / t_batch:.3f}"),
        ("batch resampling, one factor of 0.8-1.2 (sinc)", t_res, c_res, "-"),
    ]
    for name, t, c, ratio in rows:
        print(f"| {name} | {t:.3f} | {c:.3f} | {args.batch / t:.1f} | {ratio} |")


if __name__ == "__main__":
    main()
