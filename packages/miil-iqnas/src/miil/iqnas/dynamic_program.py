"""An exact dynamic program over a latency grid: a solver-free oracle for the IQNAS integer program.

Paper: IQNAS / BINAS (arXiv 2110.12399), section 3.2. With the measured estimator the program is a multiple-choice
knapsack: stages are independent given their depths and blocks are independent given the stage depth. With every cost
a whole number of grid steps, the classic knapsack recursion is exact: ``f_s[t]`` is the best accuracy of stages
``< s`` within ``t`` grid steps, and each stage maximises over its depths the chain of per-block choices.

Costs are rounded *up* to the grid, so the answer always meets the true limit; it is the exact optimum when the costs
are multiples of ``resolution`` (as in the tests), and a lower bound within one grid step per block otherwise.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from miil.hardcore import Architecture, InfeasibleConstraintError

from .additive import BlockAdditive
from .result import SearchOutcome

__all__ = ["dp_search"]


def _shifted_max(f: np.ndarray, costs: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``g[t] = max_c f[t - costs[c]] + values[c]`` and its argmax (``-inf`` where nothing fits)."""
    size = len(f)
    best = np.full(size, -np.inf)
    arg = np.full(size, -1, dtype=np.int64)
    for c, (w, val) in enumerate(zip(costs, values)):
        if w >= size:
            continue
        cand = np.full(size, -np.inf)
        cand[w:] = f[: size - w] + val
        better = cand > best
        best[better], arg[better] = cand[better], c
    return best, arg


def dp_search(
    objective: Any,
    cost: BlockAdditive,
    limit: float,
    *,
    resolution: float | None = None,
    max_steps: int = 200_000,
) -> SearchOutcome:
    """Maximise a block-additive accuracy model subject to ``cost(arch) <= limit`` by dynamic programming.

    Args:
        objective: An :class:`~miil.iqnas.AccuracyEstimator` or a :class:`~miil.iqnas.BlockAdditive`.
        cost: The constrained resource (e.g. :func:`~miil.iqnas.latency_costs`); its values must be >= 0.
        limit: The limit of ``cost``.
        resolution: Grid step (default: ``(limit - constant) / 10,000``).
        max_steps: Largest grid allowed.
    """
    form: BlockAdditive = getattr(objective, "additive", objective)
    space = form.space
    if not cost.space.same_networks(space):
        raise ValueError("the cost model belongs to another search space than the accuracy model")
    if np.any(cost.block < 0) or np.any(cost.depth < 0):
        raise ValueError(f"the dynamic program needs non-negative costs; {cost.name!r} has negative entries")
    t0 = time.perf_counter()
    budget = limit - cost.constant
    if budget < 0:
        raise InfeasibleConstraintError(f"the limit {limit} is below the fixed cost {cost.constant} of {cost.name!r}")
    resolution = resolution or max(budget, 1e-12) / 10_000
    steps = int(math.floor(budget / resolution + 1e-9))
    if steps > max_steps:
        raise ValueError(f"the grid has {steps} steps (> {max_steps}); use a coarser resolution")

    def units(x: np.ndarray) -> np.ndarray:
        return np.ceil(np.asarray(x) / resolution - 1e-9).astype(np.int64)

    w_block, w_depth = units(cost.block), units(cost.depth)
    f = np.zeros(steps + 1)
    trace: list[tuple[np.ndarray, list[list[np.ndarray]]]] = []
    for s in range(space.num_stages):
        stage_best = np.full(steps + 1, -np.inf)
        stage_arg = np.full(steps + 1, -1, dtype=np.int64)
        block_args: list[list[np.ndarray]] = []
        for b, depth in enumerate(space.depths):
            h = f
            args = []
            for j in range(depth):
                h, arg = _shifted_max(h, w_block[s, j], form.block[s, j])
                args.append(arg)
            h, _ = _shifted_max(h, w_depth[s, b : b + 1], form.depth[s, b : b + 1])
            block_args.append(args)
            better = h > stage_best
            stage_best[better], stage_arg[better] = h[better], b
        f = stage_best
        trace.append((stage_arg, block_args))
    if not np.isfinite(f[steps]):
        raise InfeasibleConstraintError(f"no architecture meets {cost.name} <= {limit} on the grid {resolution:g}")
    t = steps
    blocks: list[tuple[int, ...]] = []
    for s in reversed(range(space.num_stages)):
        stage_arg, block_args = trace[s]
        b = int(stage_arg[t])
        t -= int(w_depth[s, b])
        options = []
        for j in reversed(range(space.depths[b])):
            c = int(block_args[b][j][t])
            options.append(c)
            t -= int(w_block[s, j, c])
        blocks.append(tuple(reversed(options)))
    arch = space.validate(Architecture(tuple(reversed(blocks))))
    return SearchOutcome(
        "dp",
        arch,
        form(arch),
        {cost.name: cost(arch)},
        {cost.name: float(limit)},
        time.perf_counter() - t0,
        objective=float(form.constant + f[steps]),
        extra={"resolution": resolution, "grid_steps": steps},
    )
