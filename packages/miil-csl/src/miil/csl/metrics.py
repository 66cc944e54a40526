"""Partial-label mAP: average precision over annotated labels only, for partially annotated validation sets.

Paper: "Multi-label Classification with Partial Annotations using Class-aware Selective Loss" (arXiv 2110.10955),
the OpenImages / LVIS evaluation; reference ``AP_partial`` in ``src/helper_functions/helper_functions.py``. Labels of
-1 are left out of every class's ranking; classes without annotated labels, without positives or without negatives
are skipped (and counted). The positive-weighted "macro" mAP of the reference is reported as well. Fully labelled
validation sets use the standard mAP (``miil.core.metrics.MeanAPMeter``).

Difference to the reference: AP is the core's tie-aware, non-interpolated AP (scikit-learn's), not an ``argsort``
ranking that breaks ties arbitrarily.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from miil.core.metrics import StoringMeter, average_precision

__all__ = ["PartialAP", "PartialMAPMeter", "partial_average_precision", "partial_mean_average_precision"]


@dataclass
class PartialAP:
    """Result of :func:`partial_average_precision` (APs and mAPs as fractions in [0, 1])."""

    ap: torch.Tensor
    """Per-class AP, NaN for skipped classes."""
    valid: torch.Tensor
    """Classes that were scored."""
    mean_ap: float
    """Mean AP over the valid classes (NaN when none)."""
    macro_map: float
    """AP of valid classes weighted by their number of positives."""
    num_no_labels: int
    num_no_positives: int
    num_no_negatives: int


def _tensor(x: Any) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        x = x.detach()
    return torch.as_tensor(x).to(device="cpu", dtype=torch.float64)


def partial_average_precision(scores: Any, targets: Any) -> PartialAP:
    """Per-class AP on annotated labels, with the reference's class filtering.

    Args:
        scores: ``[N, C]`` scores (logits or probabilities).
        targets: ``[N, C]`` labels 1 / 0 / -1.
    """
    s, y = _tensor(scores), _tensor(targets)
    if s.ndim != 2 or s.shape != y.shape:
        raise ValueError(f"scores {tuple(s.shape)} and targets {tuple(y.shape)} must be equal [N, C] shapes")
    has_label = (y >= 0).any(dim=0)
    has_pos = (y == 1).any(dim=0)
    has_neg = (y == 0).any(dim=0)
    no_labels = ~has_label
    no_pos = has_label & ~has_pos
    no_neg = has_label & has_pos & ~has_neg
    valid = has_pos & has_neg
    ap = average_precision(s, torch.where(y == 1, 1.0, torch.where(y == 0, 0.0, -1.0)))
    ap = torch.where(valid, ap, torch.full_like(ap, math.nan))
    if valid.any():
        mean_ap = float(ap[valid].mean())
        n_pos = (y == 1).sum(dim=0).to(torch.float64)[valid]
        macro = float((ap[valid] * n_pos).sum() / n_pos.sum())
    else:
        mean_ap = macro = math.nan
    return PartialAP(
        ap=ap,
        valid=valid,
        mean_ap=mean_ap,
        macro_map=macro,
        num_no_labels=int(no_labels.sum()),
        num_no_positives=int(no_pos.sum()),
        num_no_negatives=int(no_neg.sum()),
    )


def partial_mean_average_precision(scores: Any, targets: Any) -> float:
    """Partial-label mAP in [0, 1]: mean AP over classes with annotated positives and negatives."""
    return partial_average_precision(scores, targets).mean_ap


class PartialMAPMeter(StoringMeter):
    """Dataset-level partial-label mAP for the training engine (percent), gathered over DDP ranks.

    ``compute()`` returns ``mAP`` (partial), ``mAP_macro`` and the number of scored classes.
    """

    def update(self, outputs: torch.Tensor, targets: torch.Tensor) -> None:
        """Store one batch of ``[B, C]`` outputs and labels."""
        if outputs.shape != targets.shape:
            raise ValueError(f"outputs {tuple(outputs.shape)} and targets {tuple(targets.shape)} differ in shape")
        super().update(outputs, targets)

    def compute(self) -> dict[str, float]:
        outputs, targets = self.gathered()
        result = partial_average_precision(outputs, targets)
        return {
            "mAP": 100.0 * result.mean_ap,
            "mAP_macro": 100.0 * result.macro_map,
            "scored_classes": float(result.valid.sum()),
        }
