"""Album event-recognition metrics: mAP over events and top-1 accuracy, gathered over DDP ranks.

Paper: PETA (arXiv 2109.12499), section 4 reports mAP (multi-label, ML-CUFED) and accuracy (CUFED, PEC). Top-1
here counts an album as correct when its highest-scoring event is one of its events, which is the usual accuracy for
single-label datasets. The original ``validate`` crashed on an undefined ``epsilon`` and skipped the class map (its
issues #14 / #15); mAP here is the core's tie-aware AP (:func:`miil.core.metrics.mean_average_precision`).
"""

from __future__ import annotations

import torch

from miil.core.metrics import StoringMeter, mean_average_precision

__all__ = ["EventMeter", "top1_hit_rate"]


def top1_hit_rate(scores: torch.Tensor, targets: torch.Tensor) -> float:
    """Percent of albums whose top-scoring event is a positive one.

    Args:
        scores: ``[B, C]`` scores or logits.
        targets: ``[B, C]`` multi-hot targets (1 positive; 0 or -1 otherwise).
    """
    if scores.shape != targets.shape or scores.ndim != 2:
        raise ValueError(f"scores {tuple(scores.shape)} and targets {tuple(targets.shape)} must be equal [B, C]")
    if scores.shape[0] == 0:
        raise ValueError("top1_hit_rate needs at least one album")
    top = scores.argmax(dim=1, keepdim=True)
    return 100.0 * float((targets.gather(1, top) == 1).float().mean())


class EventMeter(StoringMeter):
    """Accumulates album scores and targets; ``compute()`` -> ``{"mAP": %, "top1": %}`` over all ranks.

    A rank that saw no album (a validation set smaller than the number of processes: the engine shards it without
    padding) joins the gather with an empty block.

    Args:
        skip_empty: Skip events without positives in the mAP (see the core's ``mean_average_precision``).
    """

    def __init__(self, *, skip_empty: bool = True):
        super().__init__()
        self.skip_empty = skip_empty

    def update(self, outputs: torch.Tensor, targets: torch.Tensor) -> None:
        if outputs.shape != targets.shape:
            raise ValueError(f"outputs {tuple(outputs.shape)} and targets {tuple(targets.shape)} differ")
        super().update(outputs, targets)

    def compute(self) -> dict[str, float]:
        scores, targets = self.gathered()
        m_ap = mean_average_precision(scores.double(), targets, skip_empty=self.skip_empty)
        return {"mAP": 100.0 * m_ap, "top1": top1_hit_rate(scores, targets)}
