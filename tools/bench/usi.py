"""Benchmark: USI student training speed with the teacher in the loop vs precomputed teacher logits vs no KD.

Paper: USI (arXiv 2204.03475): KD from a frozen teacher costs one teacher forward per step (the paper
fuses the teacher's BN to cut it). This measures, in one run and on one device, the training steps per second of
the same student with the engine's USI step (mixup/cutmix, AdamW, EMA; repeated augmentation off so that every
mode takes the same number of steps):

* ``no KD``: soft-target CE only (the baseline);
* ``teacher in the loop``: the frozen, BN-fused teacher on every mixed batch (the paper's scheme);
* ``stored logits``: teacher logits precomputed once (its one-time cost is reported separately).

Data are random tensors (speed does not depend on pixel values); weights are random (nor on weights).

    uv run python tools/bench/usi.py                       # CPU-sized defaults
    uv run python tools/bench/usi.py --device cuda --student resnet50 --teacher tresnet_v2_l --img-size 224 \
        --batch-size 128 --amp --channels-last
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import TensorDataset

from miil.core.backbones import create_backbone
from miil.core.distributed import resolve_device
from miil.usi import USI, FrozenTeacher, build_usi_trainer, precompute_teacher_logits


def _bench_mode(cfg, data, student_name, num_classes, teacher=None) -> dict:
    torch.manual_seed(0)
    student = create_backbone(student_name, num_classes=num_classes)
    trainer = build_usi_trainer(cfg, data, model=student, teacher=teacher)
    cpu0 = time.process_time()
    history = trainer.fit().history
    cpu = time.process_time() - cpu0  # this process's CPU time: what other jobs on a shared machine do not inflate
    # The first epoch absorbs warm-up (allocations, autotuning); the best later epoch is the least disturbed one.
    timed = min(history[1:], key=lambda row: row["epoch_time_s"])
    steps = timed["updates"]
    return {
        "steps_per_s": steps / timed["epoch_time_s"],
        "images_per_s": timed["samples_per_s"],
        "steps": steps,
        "steps_per_cpu_s": sum(row["updates"] for row in history) / cpu,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--student", default="resnet18", help="student timm model")
    parser.add_argument("--teacher", default="resnet50", help="teacher timm model (random weights)")
    parser.add_argument("--img-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=6, help="steps per epoch (1 warm-up + 2 timed epochs per mode)")
    parser.add_argument("--num-classes", type=int, default=100)
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    parser.add_argument("--amp", action="store_true", help="mixed precision for student and teacher")
    parser.add_argument("--channels-last", action="store_true", help="channels-last student and teacher")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved repetitions; the median is reported")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    n = args.batch_size * args.steps
    g = torch.Generator().manual_seed(0)
    data = TensorDataset(
        torch.randn(n, 3, args.img_size, args.img_size, generator=g),
        torch.randint(0, args.num_classes, (n,), generator=g),
    )
    with tempfile.TemporaryDirectory(prefix="miil-bench-usi-") as tmp:
        base = dataclasses.replace(
            USI,
            model=args.student,
            num_classes=args.num_classes,
            img_size=args.img_size,
            batch_size=args.batch_size,
            epochs=3,
            warmup_epochs=0,
            amp=args.amp,
            channels_last=args.channels_last,
            teacher_channels_last=args.channels_last,
            aug_repeats=1,  # every mode sees all n samples once per epoch: equal step counts
            device=args.device,
            progress=False,
        )
        torch.manual_seed(1)
        teacher_net = create_backbone(args.teacher, num_classes=args.num_classes)
        mean, std = teacher_net.pretrained_cfg["mean"], teacher_net.pretrained_cfg["std"]
        student_probe = create_backbone(args.student, num_classes=args.num_classes)
        frozen = FrozenTeacher(
            teacher_net,
            student_mean=student_probe.pretrained_cfg["mean"],
            student_std=student_probe.pretrained_cfg["std"],
            mean=mean,
            std=std,
            input_size=(3, args.img_size, args.img_size),
            channels_last=args.channels_last,
        )
        device = resolve_device(args.device)
        t0 = time.perf_counter()
        logits = precompute_teacher_logits(
            frozen,
            data,
            Path(tmp) / "logits.npy",
            batch_size=args.batch_size,
            device=device,
            amp=args.amp,
            progress=False,
        )
        precompute_s = time.perf_counter() - t0
        modes = {
            "no KD": (dict(teacher="none"), None),
            "teacher in the loop": (dict(teacher="bench-teacher"), frozen),
            "stored logits": (dict(teacher_logits=str(logits)), None),
        }
        # An untimed run first: the process's first training pays one-off costs (allocator, thread pools, caches).
        _bench_mode(
            dataclasses.replace(base, out_dir=f"{tmp}/warmup", teacher="none"), data, args.student, args.num_classes
        )
        runs: dict[str, list[dict]] = {name: [] for name in modes}
        names = list(modes)
        for r in range(
            args.rounds
        ):  # interleaved, rotated rounds: load changes on a shared machine hit every mode alike
            for name in names[r % len(names) :] + names[: r % len(names)]:
                overrides, teacher = modes[name]
                cfg = dataclasses.replace(base, out_dir=f"{tmp}/{r}-{len(runs[name])}-{name}", **overrides)
                runs[name].append(_bench_mode(cfg, data, args.student, args.num_classes, teacher=teacher))
        results = {name: sorted(rs, key=lambda x: x["steps_per_s"])[len(rs) // 2] for name, rs in runs.items()}

    base_rate = results["no KD"]["steps_per_s"]
    cpu_rate = {name: sorted(x["steps_per_cpu_s"] for x in rs)[len(rs) // 2] for name, rs in runs.items()}
    print(
        f"USI training speed: student {args.student}, teacher {args.teacher} (BN fused: "
        f"{len(frozen.fuse_result.fused)} pairs), {args.img_size}px, batch {args.batch_size}, device {device}, "
        f"amp {args.amp}; median of {args.rounds} interleaved runs, each the best of 2 timed epochs of "
        f"{results['no KD']['steps']} steps"
    )
    print(
        "| mode | steps/s (wall, median) | range over runs | vs no KD | steps per CPU-second | vs no KD |\n"
        "|---|---:|---:|---:|---:|---:|"
    )
    for name, r in results.items():
        lo, hi = min(x["steps_per_s"] for x in runs[name]), max(x["steps_per_s"] for x in runs[name])
        print(
            f"| {name} | {r['steps_per_s']:.2f} | {lo:.2f}-{hi:.2f} | {r['steps_per_s'] / base_rate:.2f}x | "
            f"{cpu_rate[name]:.2f} | {cpu_rate[name] / cpu_rate['no KD']:.2f}x |"
        )
    print(
        "CPU-second rates count this process's CPU time over whole runs (warm-up epoch included); with --threads 1 "
        "on a CPU they do not move with other jobs' load. On CUDA read the wall-clock columns."
    )
    print(
        f"one-time teacher pass for stored logits: {precompute_s:.2f} s for {n} images ({n / precompute_s:.1f} img/s)"
    )


if __name__ == "__main__":
    main()
