"""IQNAS integer program on the paper's full space (255 binaries): exact MILP vs Frank-Wolfe, evolution and the DP.

For 20 latency budgets between the lightest and the heaviest network, the MILP (cvxpy + HiGHS, zero MIP gap) gives
the optimum of the estimator; block-coordinate Frank-Wolfe (miil-hardcore's optimiser on the estimator's exact
gradient) and evolutionary search (OFA-style) are run at the same budgets and reported with their gap to it (in
accuracy points of the estimator); the grid dynamic program is the solver-free oracle. Ratios of time are to the MILP.

Inputs: the paper's space (5 stages, 12 options, depths 2-4) with a latency table measured here at --image-size
(1 thread, batch 1, thread CPU time, 3 repeats) unless --lut is given, and an estimator with the measured
estimator's structure: coefficients drawn at random (seeded) unless --estimator is given. Solve time and
optimality gaps do not depend on where the coefficients come from; supply a measured estimator to reproduce.

    uv run python tools/bench/iqnas.py [--budgets 20] [--lut lut.json] [--estimator estimator.json]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from miil.hardcore import LatencyTable, SearchSpace, TimingConfig, measure_latency_table
from miil.iqnas import (
    AccuracyEstimator,
    IQPSolver,
    dp_search,
    evolutionary_search,
    flop_costs,
    frank_wolfe_search,
    latency_costs,
    parameter_costs,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budgets", type=int, default=20, help="latency budgets")
    parser.add_argument("--lut", default=None, help="latency table JSON of the paper's space (default: measure one)")
    parser.add_argument("--image-size", type=int, default=224, help="resolution of the measured table")
    parser.add_argument("--estimator", default=None, help="estimator JSON (default: random coefficients)")
    parser.add_argument("--fw-steps", type=int, default=200, help="Frank-Wolfe steps per budget")
    parser.add_argument("--evo-generations", type=int, default=100, help="evolution generations (population 100)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    t0 = time.perf_counter()
    if args.lut:
        table = LatencyTable.load(args.lut)
        space = table.space
    else:
        space = SearchSpace(image_size=args.image_size)
        timing = TimingConfig(threads=1, batch_size=1, warmup=1, repeats=3, clock="thread_cpu")
        table = measure_latency_table(space, timing, progress=False)
    print(f"latency table ready [{time.perf_counter() - t0:.1f}s]")
    if args.estimator:
        estimator = AccuracyEstimator.load(args.estimator)
    else:
        rng = np.random.default_rng(args.seed)
        base = 60.0
        block = base + rng.normal(0.0, 1.0, space.alpha_shape) + np.linspace(0, 1.5, space.num_options)
        depth = base + rng.normal(0.0, 1.0, space.beta_shape) + np.linspace(0, 2.0, len(space.depths))
        estimator = AccuracyEstimator(space, base, block, depth)
    latency = latency_costs(table)
    lo, hi = latency.bounds()
    budgets = [lo + f * (hi - lo) for f in np.linspace(0.05, 0.95, args.budgets)]

    t0 = time.perf_counter()
    solver = IQPSolver(estimator, [latency])
    build_s = time.perf_counter() - t0
    rows: dict[str, list[dict]] = {"milp": [], "dp (grid 1e-3 ms)": [], "frank_wolfe": [], "evolution": []}
    for target in budgets:
        t0 = time.perf_counter()
        exact = solver.solve({"latency": target})
        exact_s = time.perf_counter() - t0
        rows["milp"].append({"s": exact_s, "gap": 0.0, "ok": exact.feasible()})
        runs = {
            "dp (grid 1e-3 ms)": lambda t=target: dp_search(estimator, latency, t, resolution=1e-3),
            "frank_wolfe": lambda t=target: frank_wolfe_search(estimator, latency, t, steps=args.fw_steps),
            "evolution": lambda t=target: evolutionary_search(
                estimator, [latency], {"latency": t}, generations=args.evo_generations, seed=args.seed
            ),
        }
        for name, run in runs.items():
            t0 = time.perf_counter()
            r = run()
            rows[name].append({"s": time.perf_counter() - t0, "gap": exact.predicted - r.predicted, "ok": r.feasible()})

    # Several limits at once: latency + parameters + FLOPs in one MILP.
    params, flops = parameter_costs(space), flop_costs(space)
    multi = IQPSolver(estimator, [latency, params, flops])
    mid = {"latency": (lo + hi) / 2, "params": sum(params.bounds()) / 2, "flops": sum(flops.bounds()) / 2}
    t0 = time.perf_counter()
    multi_result = multi.solve(mid)
    multi_s = time.perf_counter() - t0

    base_s = statistics.median(r["s"] for r in rows["milp"])
    print(
        f"\nfull space: {space.size():.3g} networks, 255 binaries; latency {lo:.2f} ... {hi:.2f} ms; "
        f"{args.budgets} budgets; MILP built once in {build_s:.2f}s"
    )
    print(
        f"{'method':<18} {'feasible':>8} {'optimal':>8} {'mean gap':>9} {'max gap':>8} {'median s':>9} "
        f"{'max s':>7} {'time ratio':>10}"
    )
    for name, rs in rows.items():
        gaps = [r["gap"] for r in rs]
        med = statistics.median(r["s"] for r in rs)
        print(
            f"{name:<18} {np.mean([r['ok'] for r in rs]):8.0%} {np.mean([g < 1e-6 for g in gaps]):8.0%} "
            f"{np.mean(gaps):9.3f} {np.max(gaps):8.3f} {med:9.3f} {max(r['s'] for r in rs):7.3f} {med / base_s:10.2f}"
        )
    print(
        f"\nthree limits at once (latency {mid['latency']:.2f} ms, params {mid['params']:.2f} M, "
        f"FLOPs {mid['flops']:.0f} M): {multi_s:.3f}s, feasible {multi_result.feasible()}, "
        f"resources {', '.join(f'{k} {v:.2f}' for k, v in multi_result.resources.items())}"
    )
    print("gap: estimator points below the MILP optimum; optimal: share of budgets with zero gap")


if __name__ == "__main__":
    main()
