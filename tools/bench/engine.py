"""Engine overhead: steps/s of ``miil.core.train.Trainer`` vs a bare hand-written loop, same everything.

Two workloads, each trained by both loops with the same model, timm optimizer, sampler, batch, collate, AMP setting
and data; the engine additionally runs its schedule, loss accounting, finite-loss checks, progress bookkeeping and a
crash-safe checkpoint (weights + optimizer state) per epoch. Runs are interleaved and repeated.

- ``digits``: the core demo's small CNN on real digits (CPU-sized; the overhead is the largest share of a step here).
- ``resnet50``: a realistic GPU step: timm ``resnet50`` (random init, no download), 224 px, batch 128, AMP (fp16
  with a grad scaler; fp32 on a CPU, where bf16 autocast without bf16 units only slows both loops down),
  channels-last, SGD, synthetic uint8 images decoded to normalised floats on the device (as timm's prefetcher does),
  ``--workers`` loader processes with pinned memory.

Reported per workload: the training loop's steps/s (every epoch but the first, which carries cuDNN autotuning and
allocator warm-up; the engine's ``epoch_time_s``, which synchronises the GPU at the end of the epoch, against the bare
loop timed the same way) and the whole run's steps/s including the engine's per-epoch checkpoint, whose cost depends
on the epoch length, not on the step; ratios are to the bare loop measured in the same run. Goals: overhead <= 5 %
on the CPU, <= 2 % on the GPU step.

    uv run python tools/bench/engine.py [--device cpu] [--workloads digits,resnet50] [--repeats 3] [--threads 2]
    uv run python tools/bench/engine.py --device cpu --workloads resnet50 --quick     # a small CPU check of the step
    uv run python tools/bench/engine.py --device cuda --workloads resnet50             # the GPU figure
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass

import timm
import torch
import torch.nn as nn
from timm.optim import create_optimizer_v2
from torch.utils.data import ConcatDataset, DataLoader, Dataset, DistributedSampler

from miil.core.data import DigitsDataset
from miil.core.demo import DigitsCNN
from miil.core.distributed import resolve_device
from miil.core.train import TrainConfig, Trainer

_MEAN = torch.tensor([0.485, 0.456, 0.406]) * 255
_STD = torch.tensor([0.229, 0.224, 0.225]) * 255


class SyntheticImages(Dataset):
    """``n`` uint8 images (views of one random buffer, so nothing is generated per sample) with labels ``i % classes``.

    Args:
        n: Samples.
        img_size: Height and width.
        num_classes: Label range.
    """

    def __init__(self, n: int, img_size: int, num_classes: int = 1000):
        gen = torch.Generator().manual_seed(0)
        self.images = torch.randint(0, 256, (64, 3, img_size, img_size), dtype=torch.uint8, generator=gen)
        self.n, self.num_classes = n, num_classes

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        return self.images[i % len(self.images)], i % self.num_classes


class DeviceNormalize:
    """uint8 ``[B, 3, H, W]`` on the device to normalised floats in channels-last layout (a prefetcher's work)."""

    def __init__(self, device: torch.device):
        self.mean = _MEAN.view(1, 3, 1, 1).to(device)
        self.std = _STD.view(1, 3, 1, 1).to(device)

    def __call__(self, batch):
        x, y = batch[0], batch[1]
        x = x.contiguous(memory_format=torch.channels_last).float().sub_(self.mean).div_(self.std)
        return [x, y]


@dataclass
class Workload:
    """What both loops train."""

    name: str
    make_model: Callable[[], nn.Module]
    dataset: Dataset
    batch_size: int
    opt: str
    lr: float
    weight_decay: float
    amp: bool
    workers: int
    transform: bool  # uint8 images normalised on the device


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bare_loop(w: Workload, epochs: int, device: torch.device) -> dict:
    """The hand-written loop: per-epoch wall times (synchronised), whole-run wall and process-CPU time."""
    torch.manual_seed(0)
    model = w.make_model().to(device)
    opt = create_optimizer_v2(model, opt=w.opt, lr=w.lr, weight_decay=w.weight_decay, momentum=0.9)
    sampler = DistributedSampler(w.dataset, num_replicas=1, rank=0, shuffle=True, seed=0)
    loader = DataLoader(
        w.dataset,
        batch_size=w.batch_size,
        sampler=sampler,
        drop_last=True,
        num_workers=w.workers,
        pin_memory=device.type == "cuda",
        persistent_workers=w.workers > 0,
    )
    amp_dtype = (torch.float16 if device.type == "cuda" else torch.bfloat16) if w.amp else None
    scaler = torch.amp.GradScaler("cuda") if amp_dtype == torch.float16 else None
    transform = DeviceNormalize(device) if w.transform else None
    loss_fn = nn.CrossEntropyLoss()
    steps, epoch_s = 0, []
    t0, c0 = time.perf_counter(), time.process_time()
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        model.train()
        e0 = time.perf_counter()
        for x, y in loader:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            if transform is not None:
                x, y = transform([x, y])
            with torch.autocast(device.type, dtype=amp_dtype) if amp_dtype else nullcontext():
                loss = loss_fn(model(x), y)
            opt.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.step(opt)
                scaler.update()
            else:
                loss.backward()
                opt.step()
            steps += 1
        _sync(device)
        epoch_s.append(time.perf_counter() - e0)
    return {"steps": steps, "epoch_s": epoch_s, "wall": time.perf_counter() - t0, "cpu": time.process_time() - c0}


def engine_loop(w: Workload, epochs: int, device: torch.device) -> dict:
    """The same training through ``Trainer.fit`` (checkpoint every epoch, metrics, schedule)."""
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = TrainConfig(
            out_dir=tmp,
            epochs=epochs,
            batch_size=w.batch_size,
            num_workers=w.workers,
            opt=w.opt,
            lr=w.lr,
            weight_decay=w.weight_decay,
            sched="cosine",
            amp=w.amp,
            progress=False,
            device=str(device),
        )
        transform = DeviceNormalize(device) if w.transform else None
        trainer = Trainer(w.make_model(), nn.CrossEntropyLoss(), w.dataset, cfg, batch_transform=transform)
        t0, c0 = time.perf_counter(), time.process_time()
        result = trainer.fit()
        _sync(device)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    epoch_s = [r["epoch_time_s"] for r in result.history]
    return {"steps": sum(r["updates"] for r in result.history), "epoch_s": epoch_s, "wall": wall, "cpu": cpu}


def _loop_rate(run: dict, epochs: int) -> float:
    """Steps/s of the training loop over every epoch but the first (warm-up)."""
    per_epoch = run["steps"] / epochs
    return per_epoch * (epochs - 1) / sum(run["epoch_s"][1:])


def workloads(names: list[str], device: torch.device, quick: bool, args) -> list[Workload]:
    out = []
    for name in names:
        if name == "digits":
            data = ConcatDataset([DigitsDataset("train")] * args.copies)
            out.append(Workload("digits CNN", DigitsCNN, data, 64, "adamw", 1e-3, 1e-4, False, 0, False))
        elif name == "resnet50":
            size, batch = (64, 8) if quick else (args.img_size, args.batch_size)
            steps = 3 if quick else args.steps
            workers = 0 if quick else args.workers
            data = SyntheticImages(steps * batch, size)

            def make(model=args.model):
                return timm.create_model(model, num_classes=1000).to(memory_format=torch.channels_last)

            amp = device.type == "cuda"  # fp16 autocast; a CPU without bf16 units only gets slower with it
            label = f"{args.model} {size}px batch {batch} {'AMP (fp16) ' if amp else 'fp32 '}channels-last"
            out.append(Workload(label, make, data, batch, "sgd", 0.1, 1e-5, amp, workers, True))
        else:
            raise SystemExit(f"unknown workload {name!r}: digits or resnet50")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--workloads", default="digits", help="comma-separated: digits, resnet50")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved runs of each loop")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per run (the first is warm-up for the loop rate)")
    parser.add_argument("--copies", type=int, default=4, help="digits: dataset repeats per epoch")
    parser.add_argument("--model", default="resnet50", help="resnet50 workload: the timm model")
    parser.add_argument("--img-size", type=int, default=224, help="resnet50 workload: resolution")
    parser.add_argument("--batch-size", type=int, default=128, help="resnet50 workload: batch size")
    parser.add_argument("--steps", type=int, default=60, help="resnet50 workload: steps per epoch")
    parser.add_argument("--workers", type=int, default=8, help="resnet50 workload: loader processes")
    parser.add_argument("--quick", action="store_true", help="resnet50 at 64 px, batch 8, 3 steps, no workers")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    if args.epochs < 2:
        raise SystemExit("--epochs must be >= 2 (the first epoch is warm-up)")
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        where = f"{torch.cuda.get_device_name(device)}"
    else:
        where = f"CPU, {args.threads} threads"
    print(f"torch {torch.__version__}, timm {timm.__version__}, {where}, {args.repeats} interleaved runs per loop")
    for w in workloads([n.strip() for n in args.workloads.split(",")], device, args.quick, args):
        bare_loop(w, 1, device)  # warm-up: allocator, kernels, page cache, cuDNN plans
        bare, engine = [], []
        for _ in range(args.repeats):
            bare.append(bare_loop(w, args.epochs, device))
            engine.append(engine_loop(w, args.epochs, device))
        steps = bare[0]["steps"]
        print(f"\n{w.name}: {steps} steps per run ({args.epochs} epochs)")
        print(
            "| loop | loop steps/s (median) | ratio to bare | run steps/s incl. checkpoints | ratio | "
            "steps per CPU-s | ratio |"
        )
        print("|---|---|---|---|---|---|---|")
        med = {}
        for name, runs in (("bare", bare), ("engine", engine)):
            med[name] = (
                statistics.median(_loop_rate(r, args.epochs) for r in runs),
                statistics.median(r["steps"] / r["wall"] for r in runs),
                statistics.median(r["steps"] / r["cpu"] for r in runs),
            )
        for name, label in (("bare", "bare hand-written loop"), ("engine", "miil Trainer")):
            loop, run, cpu = med[name]
            b = med["bare"]
            print(
                f"| {label} | {loop:.2f} | {loop / b[0]:.3f} | {run:.2f} | {run / b[1]:.3f} | {cpu:.2f} | "
                f"{cpu / b[2]:.3f} |"
            )
        overhead = 100 * (1 - med["engine"][0] / med["bare"][0])
        goal = 2 if device.type == "cuda" else 5
        print(f"engine overhead in the training loop: {overhead:+.1f}% (goal <= {goal}%)", flush=True)


if __name__ == "__main__":
    main()
