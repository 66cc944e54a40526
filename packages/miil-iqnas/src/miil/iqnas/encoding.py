"""Architectures of the HardCoRe-NAS space as 0/1 vectors of present blocks and depths.

Paper: IQNAS / BINAS (arXiv 2110.12399), section 3 (the integer program). An architecture is a one-hot depth ``beta``
per stage and, for every block, a one-hot option ``alpha``. A block beyond its stage's depth does not exist, so the
products ``x[s, j, c] = alpha[s, j, c] * u[s, j]`` with ``u[s, j] = sum_{depth_b > j} beta[s, b]`` (the block is
present) encode a network uniquely: ``sum_c x[s, j, c] = u[s, j]``. Every quantity that adds up over present blocks
(latency, parameters, FLOPs, the measured accuracy contributions) is *linear* in ``(x, beta)``: this is the exact
linearization of the bilinear terms ``alpha^T Q beta`` that the integer program uses.

The vector of an architecture is ``v = [x.flatten(), beta.flatten()]`` (``n_x + n_beta`` entries).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import numpy as np

from miil.hardcore import Architecture, SearchSpace

__all__ = [
    "decode",
    "encode",
    "encode_many",
    "enumerate_architectures",
    "num_variables",
    "presence_matrix",
    "random_architectures",
]


def num_variables(space: SearchSpace) -> tuple[int, int]:
    """``(n_x, n_beta)``: block-option variables and depth variables of ``space``."""
    return int(np.prod(space.alpha_shape)), int(np.prod(space.beta_shape))


def encode(space: SearchSpace, arch: Architecture) -> np.ndarray:
    """The 0/1 vector ``[x, beta]`` of ``arch`` (``x`` is zero for blocks beyond the stage's depth)."""
    space.validate(arch)
    x = np.zeros(space.alpha_shape)
    beta = np.zeros(space.beta_shape)
    for s, blocks in enumerate(arch.blocks):
        beta[s, space.depths.index(len(blocks))] = 1.0
        for j, c in enumerate(blocks):
            x[s, j, c] = 1.0
    return np.concatenate([x.reshape(-1), beta.reshape(-1)])


def encode_many(space: SearchSpace, archs: list[Architecture]) -> np.ndarray:
    """``[len(archs), n_x + n_beta]`` vectors of several architectures."""
    return np.stack([encode(space, a) for a in archs]) if archs else np.zeros((0, sum(num_variables(space))))


def decode(space: SearchSpace, v: np.ndarray, *, atol: float = 1e-4) -> Architecture:
    """The architecture of a 0/1 vector (a solver's answer); raises if it is not a valid encoding."""
    n_x, n_b = num_variables(space)
    v = np.asarray(v, dtype=np.float64).reshape(-1)
    if v.size != n_x + n_b:
        raise ValueError(f"vector has {v.size} entries, the space needs {n_x + n_b}")
    if np.any(np.abs(v - np.round(v)) > atol):
        raise ValueError("vector is not integral; the solver did not return a vertex")
    x = np.round(v[:n_x]).reshape(space.alpha_shape)
    beta = np.round(v[n_x:]).reshape(space.beta_shape)
    blocks = []
    for s in range(space.num_stages):
        if beta[s].sum() != 1:
            raise ValueError(f"stage {s} has {int(beta[s].sum())} depths selected, expected exactly one")
        depth = space.depths[int(np.argmax(beta[s]))]
        options = []
        for j in range(space.max_depth):
            chosen = np.flatnonzero(x[s, j])
            if len(chosen) != (1 if j < depth else 0):
                raise ValueError(f"stage {s} block {j}: {len(chosen)} options chosen at depth {depth}")
            if j < depth:
                options.append(int(chosen[0]))
        blocks.append(tuple(options))
    return space.validate(Architecture(tuple(blocks)))


def presence_matrix(space: SearchSpace) -> np.ndarray:
    """``[stages * max_depth, n_beta]``: row ``(s, j)`` selects the depths of stage ``s`` that include block ``j``."""
    n_stages, max_depth, _ = space.alpha_shape
    n_depths = len(space.depths)
    out = np.zeros((n_stages * max_depth, n_stages * n_depths))
    for s in range(n_stages):
        for j in range(max_depth):
            for b, depth in enumerate(space.depths):
                if depth > j:
                    out[s * max_depth + j, s * n_depths + b] = 1.0
    return out


def enumerate_architectures(space: SearchSpace, *, limit: int = 2_000_000) -> Iterator[Architecture]:
    """Every architecture of a (reduced) space, for brute-force checks.

    Raises:
        ValueError: if the space holds more than ``limit`` networks.
    """
    if space.size() > limit:
        raise ValueError(f"the space holds {space.size():.3g} networks, more than the enumeration limit {limit}")
    per_stage = [
        [blocks for d in space.depths for blocks in itertools.product(range(space.num_options), repeat=d)]
        for _ in space.stages
    ]
    for combo in itertools.product(*per_stage):
        yield Architecture(combo)


def random_architectures(space: SearchSpace, n: int, *, seed: int = 0, unique: bool = True) -> list[Architecture]:
    """``n`` uniformly random architectures (depth uniform per stage, then options), distinct when ``unique``."""
    rng = np.random.default_rng(seed)
    out: list[Architecture] = []
    seen: set[Architecture] = set()
    attempts = 0
    while len(out) < n:
        attempts += 1
        if attempts > 100 * n + 1000:
            raise ValueError(f"could not draw {n} distinct architectures from a space of {space.size()} networks")
        arch = space.random_architecture(rng)
        if unique and arch in seen:
            continue
        seen.add(arch)
        out.append(arch)
    return out
