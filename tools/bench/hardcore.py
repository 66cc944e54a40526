"""HardCoRe-NAS search vs the soft-penalty baseline over 20 latency targets, on this CPU.

For each target between the lightest and the heaviest network of the space (predicted by a latency table measured
here: 1 thread, batch 1, the thread's CPU time so that other jobs on a shared CPU do not inflate it), both searches
run the same number of steps on the same supernet and data; then every chosen network is built as a timm MobileNetV3
and timed with the table's protocol. Reported per method: constraint satisfaction rate (predicted latency <= target;
HardCoRe must reach 100%), search time, and |measured - predicted| / measured of the chosen networks (raw table, and
with an affine calibration fitted on separate random networks). Ratios are to the soft-penalty baseline measured in
the same run.

The supernet is freshly initialised unless --supernet names a trained run: constraint handling, search time and
latency prediction do not depend on its accuracy. Its gradient batches are real digits at --search-res pixels.

    uv run python tools/bench/hardcore.py                      # the paper's space, latency at 224x224
    uv run python tools/bench/hardcore.py --space digits --image-size 16
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from torch.utils.data import DataLoader

from miil.core.data import DigitsDataset
from miil.hardcore import (
    HardCoReSupernet,
    TimingConfig,
    build_child,
    calibrate_latency,
    hardcore_search,
    load_supernet,
    measure_latency_table,
    measure_network_latency,
    resolve_space,
    soft_penalty_search,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--space", default="hardcorenas", help="hardcorenas | digits | a space JSON file")
    parser.add_argument("--image-size", type=int, default=224, help="resolution of the latency table")
    parser.add_argument("--targets", type=int, default=20)
    parser.add_argument("--steps", type=int, default=10, help="search steps per target and method")
    parser.add_argument("--batch-size", type=int, default=4, help="images per architecture gradient")
    parser.add_argument("--search-res", type=int, default=32, help="resolution of the gradient batches")
    parser.add_argument("--repeats", type=int, default=20, help="timed forwards per latency measurement")
    parser.add_argument("--statistic", default="median", help="median | min | mean over the repeats")
    parser.add_argument("--clock", default="thread_cpu", help="thread_cpu (ignores preemption on a shared CPU) | wall")
    parser.add_argument("--calibration-nets", type=int, default=6, help="random networks for the affine fit")
    parser.add_argument("--supernet", default=None, help="a trained supernet run directory (optional)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)

    space = resolve_space(args.space, image_size=args.image_size)
    timing = TimingConfig(
        threads=1, batch_size=1, warmup=3, repeats=args.repeats, statistic=args.statistic, clock=args.clock
    )
    t0 = time.perf_counter()
    table = measure_latency_table(space, timing, num_classes=10)
    lut_s = time.perf_counter() - t0
    report = calibrate_latency(table, num_archs=args.calibration_nets, seed=args.seed + 1)
    supernet = load_supernet(args.supernet) if args.supernet else HardCoReSupernet(space, num_classes=10)
    data = DigitsDataset("train", image_size=args.search_res, channels=3)
    loader = DataLoader(data, batch_size=args.batch_size, shuffle=True, generator=torch.Generator().manual_seed(0))
    lo, hi = table.latency(table.lightest()), table.latency(table.heaviest())
    targets = [lo + (i + 1) / (args.targets + 1) * (hi - lo) for i in range(args.targets)]
    rows = {"hardcore": [], "soft_penalty": []}
    for target in targets:
        for method in rows:
            if method == "hardcore":
                res = hardcore_search(
                    supernet,
                    table,
                    loader,
                    target_ms=target,
                    steps=args.steps,
                    gamma=0.5,
                    gamma_schedule="decay",
                    seed=args.seed,
                    progress=False,
                )
            else:
                res = soft_penalty_search(
                    supernet,
                    table,
                    loader,
                    target_ms=target,
                    steps=args.steps,
                    lr=0.1,
                    seed=args.seed,
                    progress=False,
                )
            measured = measure_network_latency(build_child(space, res.architecture, num_classes=10), space, timing)
            raw = table.raw_latency(res.architecture)
            rows[method].append(
                {
                    "ok": res.predicted_ms <= target,
                    "seconds": res.seconds,
                    "err": abs(measured - res.predicted_ms) / measured,
                    "err_cal": abs(measured - (report.slope * raw + report.intercept)) / measured,
                    "used": res.predicted_ms / target,
                }
            )
        print(
            f"target {target:8.3f} ms: "
            + ", ".join(
                f"{m} {'ok' if r[-1]['ok'] else 'VIOLATED'} ({100 * r[-1]['used']:.0f}% of T)" for m, r in rows.items()
            ),
            flush=True,
        )

    def agg(method: str, key: str) -> float:
        values = [r[key] for r in rows[method]]
        return float(np.mean(values)) if key != "seconds" else statistics.median(values)

    print(
        f"\ntorch {torch.__version__}, space {args.space} at {args.image_size}px, {args.targets} targets in "
        f"[{lo:.3f}, {hi:.3f}] ms, {args.steps} steps each, latency table {lut_s:.1f}s "
        f"({table.block_ms.size + 2} entries, {args.statistic} of {args.repeats}, {args.clock} clock), CPU 1 thread, "
        "batch 1"
    )
    print(
        "| method | constraint satisfied | median search s | ratio | mean predicted / target | "
        "mean abs rel. latency error (raw) | (calibrated) |"
    )
    print("|---|---|---|---|---|---|---|")
    base_s = agg("soft_penalty", "seconds")
    for method in ("soft_penalty", "hardcore"):
        sat = 100 * agg(method, "ok")
        print(
            f"| {method} | {sat:.0f}% | {agg(method, 'seconds'):.2f} | {agg(method, 'seconds') / base_s:.2f} | "
            f"{agg(method, 'used'):.3f} | {100 * agg(method, 'err'):.1f}% | {100 * agg(method, 'err_cal'):.1f}% |"
        )
    print(
        f"calibration fit on {args.calibration_nets} random networks: measured = {report.slope:.3f} * raw + "
        f"{report.intercept:.3f} ms"
    )
    if agg("hardcore", "ok") < 1.0:
        raise SystemExit("HardCoRe violated a latency target: the hard constraint is broken")


if __name__ == "__main__":
    main()
