"""EAT's training losses: label-smoothing cross-entropy and the mixed-label BCE used on mixed batches.

Paper: Gazneli et al., 2022 (arXiv 2204.11479), Sec. 3.3-4. Unmixed single-label batches use cross-entropy with
label smoothing 0.1 in the original's form (the true class gets ``1 - s``, every other class ``s / (C - 1)``);
AudioSet uses BCE. Mixed batches use BCE on ``clamp(onehot(a) + onehot(b) * [lam < 0.9], max=1)``: the partner
counts as fully present unless the clip dominates the mix. The original summed the losses over the batch
(``reduction="sum"``), which matters with gradient clipping at 1.0; both reductions are offered.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .augment.mix import MixTargets

__all__ = ["LabelSmoothingCrossEntropy", "MixedLabelBCE", "mixed_label_bce"]


def _reduce(loss: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "sum":
        return loss.sum()
    if reduction == "mean":
        return loss.mean()
    if reduction == "none":
        return loss
    raise ValueError(f"reduction must be 'sum', 'mean' or 'none', got {reduction!r}")


class LabelSmoothingCrossEntropy(nn.Module):
    """Cross-entropy against ``1 - smoothing`` on the target and ``smoothing / (C - 1)`` on every other class.

    Args:
        smoothing: Probability mass moved off the target.
        reduction: "sum" (the original), "mean" or "none".
    """

    def __init__(self, *, smoothing: float = 0.1, reduction: str = "sum"):
        super().__init__()
        if not 0.0 <= smoothing < 1.0:
            raise ValueError(f"smoothing must be in [0, 1), got {smoothing}")
        self.smoothing = smoothing
        self.reduction = reduction

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        c = logits.shape[-1]
        logp = F.log_softmax(logits.float(), dim=-1)
        off = self.smoothing / (c - 1) if c > 1 else 0.0
        dist = torch.full_like(logp, off).scatter_(1, targets.long().unsqueeze(1), 1.0 - self.smoothing)
        return _reduce(-(dist * logp).sum(-1), self.reduction)


def mixed_label_bce(
    logits: torch.Tensor, mix: MixTargets, *, threshold: float = 0.9, reduction: str = "sum"
) -> torch.Tensor:
    """BCE-with-logits against the paper's mixed targets (see the module docstring).

    Args:
        logits: ``[B, C]`` outputs.
        mix: Targets of the mixed batch.
        threshold: The partner's label counts when the clip's own weight is below this.
        reduction: "sum" (the original), "mean" (over all elements) or "none".
    """
    target = mix.bce(logits.shape[-1], threshold=threshold)
    return _reduce(F.binary_cross_entropy_with_logits(logits.float(), target, reduction="none"), reduction)


class MixedLabelBCE(nn.Module):
    """:func:`mixed_label_bce` as a module.

    Args:
        threshold: The partner's label counts when the clip's own weight is below this.
        reduction: "sum", "mean" or "none".
    """

    def __init__(self, *, threshold: float = 0.9, reduction: str = "sum"):
        super().__init__()
        self.threshold = threshold
        self.reduction = reduction

    def forward(self, logits: torch.Tensor, mix: MixTargets) -> torch.Tensor:
        return mixed_label_bce(logits, mix, threshold=self.threshold, reduction=self.reduction)
