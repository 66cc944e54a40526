"""The outcome of an IQNAS search, whichever method produced it (MILP, dynamic program, Frank-Wolfe, evolution).

Paper: IQNAS / BINAS (arXiv 2110.12399), section 3.2. Every result records the architecture, its predicted accuracy
under the accuracy model searched, its resources under every resource model with their limits, and the wall time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from miil.hardcore import Architecture, SearchSpace

from .additive import BlockAdditive

__all__ = ["SearchOutcome", "normalise_limits", "resource_values"]


def resource_values(resources: Sequence[BlockAdditive], arch: Architecture) -> dict[str, float]:
    return {r.name: r(arch) for r in resources}


@dataclass
class SearchOutcome:
    """One search result.

    Args:
        method: ``"milp"``, ``"dp"``, ``"frank_wolfe"``, ``"evolution"`` or ``"brute_force"``.
        architecture: The chosen network.
        predicted: Its predicted accuracy under the searched accuracy model.
        resources: Its value under every resource model (``{"latency": ms, "params": M, ...}``).
        limits: The limits searched under (``None`` for an unconstrained resource).
        seconds: Wall time of the search.
        objective: The solver's own objective value (the MILP's, for checking it against ``predicted``).
        extra: Method-specific facts (solver status, steps...).
    """

    method: str
    architecture: Architecture
    predicted: float
    resources: dict[str, float]
    limits: dict[str, float | None]
    seconds: float
    objective: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def feasible(self, *, tol: float = 1e-9) -> bool:
        """Whether every limited resource is within its limit."""
        return all(lim is None or self.resources[k] <= lim + tol for k, lim in self.limits.items())

    def to_dict(self, space: SearchSpace) -> dict[str, Any]:
        return {
            "method": self.method,
            "arch_def": space.arch_def(self.architecture),
            "space": space.to_dict(),  # read back by `miil iqnas train --arch` / `miil hardcore train --arch`
            "blocks": [list(b) for b in self.architecture.blocks],
            "predicted_accuracy": self.predicted,
            "resources": self.resources,
            "limits": self.limits,
            "feasible": self.feasible(),
            "seconds": self.seconds,
            "objective": self.objective,
            "extra": self.extra,
        }


def normalise_limits(resources: Sequence[BlockAdditive], limits: Mapping[str, float | None]) -> dict[str, float | None]:
    names = [r.name for r in resources]
    unknown = sorted(set(limits) - set(names))
    if unknown:
        raise ValueError(f"limits for unknown resources {unknown}; the resource models are {names}")
    return {n: (None if limits.get(n) is None else float(limits[n])) for n in names}
