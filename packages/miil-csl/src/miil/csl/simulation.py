"""Partial-annotation simulation on a fully labelled multi-label set: FPC(n) and RPS(p).

Paper: "Multi-label Classification with Partial Annotations using Class-aware Selective Loss" (arXiv 2110.10955),
Section 5 (simulated partial annotation of MS-COCO); reference code ``src/helper_functions/coco_simulation.py``.

* FPC(n), "fixed per class": every label starts un-annotated (-1); for each class, ``n`` of its positives are kept as
  1 and ``n`` of its negatives as 0 (all of them when there are fewer).
* RPS(p), "random per sample": each label is removed (set to -1) independently with probability ``p``.

Both are applied to the training split only; the validation set keeps its full labels. Unlike the reference, the
simulations are seeded (the same seed gives the same labels on every machine and DDP rank), labels that are already
-1 stay -1, and a summary of what was kept is returned.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

__all__ = [
    "SIMULATIONS",
    "SimulationSummary",
    "apply_partial_simulation",
    "simulate_fpc",
    "simulate_partial_labels",
    "simulate_rps",
]

SIMULATIONS = ("none", "fpc", "rps")


@dataclass(frozen=True)
class SimulationSummary:
    """What a simulation kept, overall and per class."""

    kind: str
    param: float
    seed: int
    num_samples: int
    num_classes: int
    positives_before: int
    negatives_before: int
    positives_kept: int
    negatives_kept: int
    positives_per_class: list[int] = field(repr=False)
    negatives_per_class: list[int] = field(repr=False)

    @property
    def annotated_before(self) -> int:
        return self.positives_before + self.negatives_before

    @property
    def annotated_kept(self) -> int:
        return self.positives_kept + self.negatives_kept

    @property
    def removed_fraction(self) -> float:
        """Fraction of the originally annotated labels that were removed."""
        return 1.0 - self.annotated_kept / max(self.annotated_before, 1)

    def __str__(self) -> str:
        name = {"fpc": f"FPC({self.param:g})", "rps": f"RPS({self.param:g})"}.get(self.kind, self.kind)
        pos, neg = np.array(self.positives_per_class), np.array(self.negatives_per_class)
        return (
            f"partial-label simulation {name}, seed {self.seed}: {self.num_samples} samples x {self.num_classes} "
            f"classes\n  kept {self.positives_kept}/{self.positives_before} positives and "
            f"{self.negatives_kept}/{self.negatives_before} negatives ({100 * self.removed_fraction:.1f}% of the "
            f"annotated labels removed)\n  per class: positives kept min {pos.min()} / median {int(np.median(pos))} "
            f"/ max {pos.max()}, negatives kept min {neg.min()} / median {int(np.median(neg))} / max {neg.max()}"
        )


def _as_numpy(targets: torch.Tensor | np.ndarray) -> np.ndarray:
    array = targets.detach().cpu().numpy() if isinstance(targets, torch.Tensor) else np.asarray(targets)
    if array.ndim != 2:
        raise ValueError(f"targets must be [N, C], got shape {array.shape}")
    bad = ~np.isin(array, (1, 0, -1))
    if bad.any():
        i, c = np.argwhere(bad)[0]
        raise ValueError(f"targets[{i}, {c}] = {array[i, c]}; labels must be 1, 0 or -1")
    return array


def _summary(kind: str, param: float, seed: int, before: np.ndarray, after: np.ndarray) -> SimulationSummary:
    return SimulationSummary(
        kind=kind,
        param=float(param),
        seed=int(seed),
        num_samples=int(before.shape[0]),
        num_classes=int(before.shape[1]),
        positives_before=int((before == 1).sum()),
        negatives_before=int((before == 0).sum()),
        positives_kept=int((after == 1).sum()),
        negatives_kept=int((after == 0).sum()),
        positives_per_class=(after == 1).sum(axis=0).astype(int).tolist(),
        negatives_per_class=(after == 0).sum(axis=0).astype(int).tolist(),
    )


def _like(result: np.ndarray, targets: torch.Tensor | np.ndarray) -> torch.Tensor | np.ndarray:
    if isinstance(targets, torch.Tensor):
        return torch.from_numpy(result).to(dtype=targets.dtype, device=targets.device)
    return result.astype(np.asarray(targets).dtype, copy=False)


def simulate_fpc(
    targets: torch.Tensor | np.ndarray, num_per_class: int, *, seed: int = 0
) -> tuple[torch.Tensor | np.ndarray, SimulationSummary]:
    """FPC(n): keep ``n`` positives and ``n`` negatives per class (chosen at random), everything else -1.

    Args:
        targets: ``[N, C]`` labels 1 / 0 / -1 (a tensor or an array; the result has the same type).
        num_per_class: ``n``, the number of positives and of negatives kept per class.
        seed: Random seed.
    """
    if int(num_per_class) != num_per_class or num_per_class < 0:
        raise ValueError(f"FPC needs a non-negative integer number of labels per class, got {num_per_class!r}")
    n = int(num_per_class)
    before = _as_numpy(targets)
    rng = np.random.default_rng(seed)
    after = np.full_like(before, -1)
    for c in range(before.shape[1]):
        for value in (1, 0):
            idx = np.flatnonzero(before[:, c] == value)
            chosen = rng.choice(idx, size=min(n, idx.size), replace=False) if idx.size else idx
            after[chosen, c] = value
    return _like(after, targets), _summary("fpc", n, seed, before, after)


def simulate_rps(
    targets: torch.Tensor | np.ndarray, remove_prob: float, *, seed: int = 0
) -> tuple[torch.Tensor | np.ndarray, SimulationSummary]:
    """RPS(p): set each label to -1 independently with probability ``p``.

    Args:
        targets: ``[N, C]`` labels 1 / 0 / -1.
        remove_prob: ``p`` in [0, 1].
        seed: Random seed.
    """
    if not 0.0 <= float(remove_prob) <= 1.0:
        raise ValueError(f"RPS removal probability must be in [0, 1], got {remove_prob!r}")
    before = _as_numpy(targets)
    rng = np.random.default_rng(seed)
    after = before.copy()
    after[rng.random(before.shape) < remove_prob] = -1
    return _like(after, targets), _summary("rps", remove_prob, seed, before, after)


def simulate_partial_labels(
    targets: torch.Tensor | np.ndarray, kind: str, param: float, *, seed: int = 0
) -> tuple[torch.Tensor | np.ndarray, SimulationSummary]:
    """Dispatch to :func:`simulate_fpc` (``kind="fpc"``) or :func:`simulate_rps` (``kind="rps"``)."""
    if kind == "fpc":
        return simulate_fpc(targets, int(param) if float(param).is_integer() else param, seed=seed)
    if kind == "rps":
        return simulate_rps(targets, param, seed=seed)
    raise ValueError(f"unknown partial-label simulation {kind!r}; expected 'fpc' or 'rps'")


def apply_partial_simulation(
    dataset, kind: str, param: float, *, seed: int = 0, verbose: bool = True
) -> SimulationSummary | None:
    """Replace ``dataset.targets`` (a dense ``[N, C]`` tensor) by a simulated partial annotation, in place.

    Args:
        dataset: A multi-label dataset with a dense ``targets`` tensor (the miil-csl datasets, the core's
            ``MultiLabelCSVDataset``).
        kind: ``"fpc"``, ``"rps"``, or ``"none"`` (nothing is changed and None is returned).
        param: ``n`` for FPC, ``p`` for RPS.
        seed: Random seed.
        verbose: Print the summary.
    """
    if kind == "none":
        return None
    targets = getattr(dataset, "targets", None)
    if not isinstance(targets, torch.Tensor) or targets.ndim != 2:
        raise TypeError(
            f"{type(dataset).__name__} has no dense [N, C] 'targets' tensor; partial-label simulation needs one"
        )
    new, summary = simulate_partial_labels(targets, kind, param, seed=seed)
    dataset.targets = new
    if verbose:
        print(summary, flush=True)
    return summary
