"""Is bf16 autocast faster than fp32 for a training step on this CPU? (Decides the engine's CPU default: AMP off.)

    uv run python tools/bench/amp_cpu.py [--model resnet18] [--img-size 96] [--batch-size 16] [--repeats 5]

Times forward + backward + SGD step of a timm model on synthetic data, fp32 and bf16 autocast interleaved, and prints
the median seconds per step of each (process CPU time, robust to other load) and the ratio.
"""

from __future__ import annotations

import argparse
import statistics
import time

import timm
import torch


def step_time(model, opt, x, y, dtype, steps: int) -> float:
    ctx = torch.autocast("cpu", dtype=dtype) if dtype is not None else torch.autocast("cpu", enabled=False)
    t0 = time.process_time()
    for _ in range(steps):
        with ctx:
            loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return (time.process_time() - t0) / steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="resnet18")
    ap.add_argument("--img-size", type=int, default=96)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = timm.create_model(args.model, num_classes=10)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x = torch.randn(args.batch_size, 3, args.img_size, args.img_size)
    y = torch.randint(0, 10, (args.batch_size,))
    step_time(model, opt, x, y, None, 2)
    step_time(model, opt, x, y, torch.bfloat16, 2)
    fp32, bf16 = [], []
    for _ in range(args.repeats):
        fp32.append(step_time(model, opt, x, y, None, args.steps))
        bf16.append(step_time(model, opt, x, y, torch.bfloat16, args.steps))
    a, b = statistics.median(fp32), statistics.median(bf16)
    print(f"{args.model} {args.img_size}px batch {args.batch_size}, {args.threads} thread(s), CPU s/step (median)")
    print("| precision | CPU s/step | speed vs fp32 |\n|---|---|---|")
    print(f"| fp32 | {a:.4f} | 1.00x |\n| bf16 autocast | {b:.4f} | {a / b:.2f}x |")


if __name__ == "__main__":
    main()
