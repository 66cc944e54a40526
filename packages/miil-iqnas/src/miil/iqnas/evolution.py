"""Evolutionary search under resource limits: the baseline IQNAS compares its exact solver with.

Paper: IQNAS / BINAS (arXiv 2110.12399), section 4 (the original's ``evo.py``, the Once-for-All evolution finder:
population 100, parent ratio 0.25, mutation probability 0.1, mutation ratio 0.5, 500 generations). Every individual
meets every limit: random samples, mutants and children that break a limit are redrawn, and an infeasible draw is
repaired by moving blocks to their cheapest option and stages to their smallest depth. The best individual ever seen
is returned; its gap to the MILP optimum is what the benchmark reports.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from miil.hardcore import Architecture, InfeasibleConstraintError, SearchSpace

from .additive import BlockAdditive
from .encoding import encode_many
from .predictors import as_predictor
from .result import SearchOutcome, normalise_limits, resource_values

__all__ = ["evolutionary_search"]


class _Feasibility:
    def __init__(self, space: SearchSpace, resources: Sequence[BlockAdditive], limits: dict[str, float | None]):
        self.space = space
        self.active = [r for r in resources if limits[r.name] is not None]
        self.limits = np.array([limits[r.name] for r in self.active])
        # A single "price" per block option and depth to repair with: the sum of the normalised resources.
        self.price = np.zeros(space.alpha_shape)
        self.depth_price = np.zeros(space.beta_shape)
        for r in self.active:
            lo, hi = r.bounds()
            scale = max(hi - lo, 1e-12)
            self.price += r.block / scale
            self.depth_price += r.depth / scale

    def ok(self, archs: list[Architecture]) -> np.ndarray:
        if not self.active:
            return np.ones(len(archs), dtype=bool)
        v = encode_many(self.space, archs)
        values = np.stack([r.constant + v @ r.coefficients for r in self.active], axis=1)
        return np.all(values <= self.limits + 1e-9, axis=1)

    def repair(self, arch: Architecture, rng: np.random.Generator) -> Architecture | None:
        blocks = [list(b) for b in arch.blocks]
        for _ in range(sum(len(b) for b in blocks) + len(blocks) + 1):
            if self.ok([Architecture(tuple(map(tuple, blocks)))])[0]:
                return Architecture(tuple(map(tuple, blocks)))
            s = int(rng.integers(len(blocks)))
            b = self.space.depths.index(len(blocks[s]))
            if b > 0 and rng.random() < 0.5:
                blocks[s] = blocks[s][: self.space.depths[b - 1]]
            else:
                j = int(rng.integers(len(blocks[s])))
                blocks[s][j] = int(np.argmin(self.price[s, j]))
        final = Architecture(tuple(map(tuple, blocks)))
        return final if self.ok([final])[0] else None


def _mutate(space: SearchSpace, arch: Architecture, prob: float, rng: np.random.Generator) -> Architecture:
    blocks = []
    for opts in arch.blocks:
        opts = list(opts)
        if rng.random() < prob:
            depth = int(rng.choice(space.depths))
            opts = (opts + [int(rng.integers(space.num_options)) for _ in range(depth)])[:depth]
        opts = [int(rng.integers(space.num_options)) if rng.random() < prob else c for c in opts]
        blocks.append(tuple(opts))
    return Architecture(tuple(blocks))


def _crossover(a: Architecture, b: Architecture, rng: np.random.Generator) -> Architecture:
    blocks = []
    for pa, pb in zip(a.blocks, b.blocks):
        depth = len(pa) if rng.random() < 0.5 else len(pb)
        pick = []
        for j in range(depth):
            choices = [p[j] for p in (pa, pb) if j < len(p)]
            pick.append(int(choices[int(rng.integers(len(choices)))]))
        blocks.append(tuple(pick))
    return Architecture(tuple(blocks))


def evolutionary_search(
    objective: Any,
    resources: Sequence[BlockAdditive],
    limits: Mapping[str, float | None],
    *,
    population: int = 100,
    generations: int = 500,
    parent_ratio: float = 0.25,
    mutation_ratio: float = 0.5,
    mutation_prob: float = 0.1,
    seed: int = 0,
    progress: bool = False,
) -> SearchOutcome:
    """Evolution (mutation + crossover, elitist) of feasible architectures under a predicted-accuracy fitness.

    Args:
        objective: Any accuracy model (estimator, block-additive form, fitted predictor).
        resources: Resource models.
        limits: ``{resource name: limit}``.
        population: Individuals per generation.
        generations: Generations.
        parent_ratio: Fraction of the population kept as parents.
        mutation_ratio: Fraction of the offspring made by mutation (the rest by crossover).
        mutation_prob: Probability of redrawing each block option and each stage depth in a mutation.
        seed: Random seed.
        progress: A tqdm bar over the generations.
    """
    predictor = as_predictor(objective)
    space = predictor.space
    limits = normalise_limits(resources, limits)
    rng = np.random.default_rng(seed)
    feas = _Feasibility(space, resources, limits)
    t0 = time.perf_counter()

    def feasible_random() -> Architecture:
        for _ in range(50):
            arch = feas.repair(space.random_architecture(rng), rng)
            if arch is not None:
                return arch
        raise InfeasibleConstraintError(f"found no architecture within {limits} (random draws and repairs)")

    pop = [feasible_random() for _ in range(population)]
    fitness = predictor.predict(pop)
    n_parents = max(2, int(round(parent_ratio * population)))
    n_mutants = int(round(mutation_ratio * (population - n_parents)))
    for _ in tqdm(range(generations), desc="evolution", disable=not progress, dynamic_ncols=True, leave=False):
        order = np.argsort(-fitness)[:n_parents]
        parents = [pop[i] for i in order]
        children: list[Architecture] = []
        while len(children) < population - n_parents:
            if len(children) < n_mutants:
                child = _mutate(space, parents[int(rng.integers(n_parents))], mutation_prob, rng)
            else:
                i, j = rng.choice(n_parents, size=2, replace=False)
                child = _crossover(parents[i], parents[j], rng)
            if feas.ok([child])[0]:
                children.append(child)
        pop = parents + children
        fitness = np.concatenate([fitness[order], predictor.predict(children)])
    best = int(np.argmax(fitness))
    arch = pop[best]
    return SearchOutcome(
        "evolution",
        arch,
        float(fitness[best]),
        resource_values(resources, arch),
        limits,
        time.perf_counter() - t0,
        objective=float(fitness[best]),
        extra={"population": population, "generations": generations, "evaluations": population * (generations + 1)},
    )
