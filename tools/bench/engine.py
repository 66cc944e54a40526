"""Engine overhead: steps/s of ``miil.core.train.Trainer`` vs a bare hand-written loop, same everything.

Both loops train the same CNN (the core demo's) on the same real digits with the same timm optimizer, sampler,
batch size and collate; the engine additionally runs its schedule, progress bookkeeping, loss accounting and a
crash-safe checkpoint per epoch. Runs are interleaved and repeated; the table reports median steps/s and the
engine's overhead. Goal: overhead <= 5 %.

    uv run python tools/bench/engine.py [--repeats 5] [--epochs 2] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch
import torch.nn as nn
from timm.optim import create_optimizer_v2
from torch.utils.data import ConcatDataset, DataLoader, DistributedSampler

from miil.core.data import DigitsDataset
from miil.core.demo import DigitsCNN
from miil.core.train import TrainConfig, Trainer

BATCH, LR, WD = 64, 1e-3, 1e-4


def _dataset(copies: int):
    return ConcatDataset([DigitsDataset("train")] * copies)


def bare_loop(dataset, epochs: int) -> float:
    torch.manual_seed(0)
    model = DigitsCNN()
    opt = create_optimizer_v2(model, opt="adamw", lr=LR, weight_decay=WD)
    sampler = DistributedSampler(dataset, num_replicas=1, rank=0, shuffle=True, seed=0)
    loader = DataLoader(dataset, batch_size=BATCH, sampler=sampler, drop_last=True)
    loss_fn = nn.CrossEntropyLoss()
    steps = 0
    t0, c0 = time.perf_counter(), time.process_time()
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        model.train()
        for x, y in loader:
            loss = loss_fn(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            steps += 1
    return steps / (time.perf_counter() - t0), steps / (time.process_time() - c0)


def engine_loop(dataset, epochs: int) -> float:
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = TrainConfig(
            out_dir=tmp,
            epochs=epochs,
            batch_size=BATCH,
            opt="adamw",
            lr=LR,
            weight_decay=WD,
            sched="cosine",
            progress=False,
            device="cpu",
        )
        trainer = Trainer(DigitsCNN(), nn.CrossEntropyLoss(), dataset, cfg)
        t0, c0 = time.perf_counter(), time.process_time()
        result = trainer.fit()
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    steps = sum(r["updates"] for r in result.history)
    return steps / elapsed, steps / cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--copies", type=int, default=4, help="dataset repeats per epoch (longer epochs)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = _dataset(args.copies)
    bare_loop(data, 1)  # warm-up: allocator, kernels, page cache
    bare, engine = [], []
    for _ in range(args.repeats):
        bare.append(bare_loop(data, args.epochs))
        engine.append(engine_loop(data, args.epochs))
    steps = args.epochs * (len(data) // BATCH)
    print(f"torch {torch.__version__}, {args.threads} threads, {steps} steps per run, {args.repeats} interleaved runs")
    print("steps/s by wall clock, and per CPU-second of this process (robust to other load on the machine)")
    print("| loop | steps/s wall (median) | steps per CPU-s (median) | ratio to bare, wall | ratio to bare, CPU |")
    print("|---|---|---|---|---|")
    bw, bc = statistics.median(x[0] for x in bare), statistics.median(x[1] for x in bare)
    ew, ec = statistics.median(x[0] for x in engine), statistics.median(x[1] for x in engine)
    print(f"| bare hand-written loop | {bw:.1f} | {bc:.1f} | 1.000 | 1.000 |")
    print(f"| miil Trainer | {ew:.1f} | {ec:.1f} | {ew / bw:.3f} | {ec / bc:.3f} |")
    print(f"engine overhead: {100 * (1 - ew / bw):+.1f}% wall, {100 * (1 - ec / bc):+.1f}% CPU (goal <= 5%)")


if __name__ == "__main__":
    main()
