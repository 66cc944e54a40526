"""Brute-force enumeration of a reduced search space: the ground truth the MILP and the dynamic program are tested
against (IQNAS / BINAS, arXiv 2110.12399, section 3.2)."""

from __future__ import annotations

import itertools
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from miil.hardcore import InfeasibleConstraintError

from .additive import BlockAdditive
from .encoding import encode_many, enumerate_architectures
from .predictors import as_predictor
from .result import SearchOutcome, normalise_limits, resource_values

__all__ = ["brute_force_search"]


def brute_force_search(
    objective: Any,
    resources: Sequence[BlockAdditive],
    limits: Mapping[str, float | None],
    *,
    chunk: int = 20_000,
    tol: float = 1e-9,
) -> SearchOutcome:
    """The best architecture within ``limits`` by evaluating every network of a (small) space.

    Args:
        objective: Any accuracy model (estimator, block-additive form, fitted predictor).
        resources: Resource models.
        limits: ``{resource name: limit}``.
        chunk: Architectures evaluated per vectorised batch.
        tol: Tolerance of the limits.
    """
    predictor = as_predictor(objective)
    space = predictor.space
    limits = normalise_limits(resources, limits)
    t0 = time.perf_counter()
    best_value, best_arch = -np.inf, None
    archs = enumerate_architectures(space)
    while batch := list(itertools.islice(archs, chunk)):
        v = encode_many(space, batch)
        ok = np.ones(len(batch), dtype=bool)
        for r in resources:
            if limits[r.name] is not None:
                ok &= r.constant + v @ r.coefficients <= limits[r.name] + tol
        if not ok.any():
            continue
        values = np.where(ok, predictor.predict_encoded(v), -np.inf)
        i = int(np.argmax(values))
        if values[i] > best_value:
            best_value, best_arch = float(values[i]), batch[i]
    if best_arch is None:
        raise InfeasibleConstraintError(f"no architecture of the space meets {limits}")
    return SearchOutcome(
        "brute_force",
        best_arch,
        best_value,
        resource_values(resources, best_arch),
        limits,
        time.perf_counter() - t0,
        objective=best_value,
        extra={"networks": space.size()},
    )
