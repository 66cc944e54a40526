"""Asymmetric Loss (ASL) for multi-label and single-label classification.

Paper: "Asymmetric Loss For Multi-Label Classification", Ridnik et al., ICCV 2021 (arXiv 2009.14119).
Reference implementation: https://github.com/Alibaba-MIIL/ASL (``src/loss_functions/losses.py``).

ASL decouples the focusing levels of positives and negatives (``gamma_pos`` / ``gamma_neg``) and additionally
shifts the probability of negatives by a margin ``clip`` (``p_m = max(p - m, 0)``), which hard-thresholds very easy
negatives and discards possibly mislabeled ones.

Differences to the reference implementation:
    * the focusing weight is detached with ``.detach()`` instead of toggling ``torch.set_grad_enabled``, so calling
      the loss inside a caller's ``torch.no_grad()`` block never re-enables autograd;
    * targets of -1 mark unannotated labels (partial annotation, as in the CSL / OpenImages setups); they contribute
      nothing to the loss nor to the ``"mean"`` normaliser;
    * the loss is always computed in float32, also under autocast.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["AsymmetricLoss", "AsymmetricLossSingleLabel"]

_REDUCTIONS = ("none", "mean", "sum")


def _check_reduction(reduction: str) -> str:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    return reduction


class AsymmetricLoss(nn.Module):
    """Multi-label Asymmetric Loss on per-class logits.

    For a label with sigmoid probability ``p``, target ``y`` and shifted negative probability
    ``p_neg = min(1 - p + clip, 1)`` (i.e. ``1 - max(p - clip, 0)``)::

        loss = -[y * log(p) + (1 - y) * log(p_neg)] * (1 - pt) ** (gamma_pos * y + gamma_neg * (1 - y))
        pt = y * p + (1 - y) * p_neg

    The defaults are those of the reference ``AsymmetricLoss`` class; note that the original training scripts use
    ``gamma_pos=0`` (``gamma_neg=4, gamma_pos=0, clip=0.05``).

    Args:
        gamma_neg: Focusing parameter of negatives.
        gamma_pos: Focusing parameter of positives.
        clip: Probability margin ``m`` shifting negatives; 0 or None disables probability shifting.
        eps: Lower clamp of probabilities inside the logarithms.
        detach_focal_weight: Compute the focusing weight from detached probabilities, so that it acts as a constant
            per-element weight (as the paper's reference code does with ``disable_torch_grad_focal_loss``).
        reduction: ``"sum"`` (the paper's) sums all elements; ``"mean"`` divides that sum by the number of annotated
            (target >= 0) elements; ``"none"`` returns the ``[B, C]`` element losses.
    """

    def __init__(
        self,
        *,
        gamma_neg: float = 4.0,
        gamma_pos: float = 1.0,
        clip: float | None = 0.05,
        eps: float = 1e-8,
        detach_focal_weight: bool = True,
        reduction: str = "sum",
    ):
        super().__init__()
        self.gamma_neg = float(gamma_neg)
        self.gamma_pos = float(gamma_pos)
        self.clip = float(clip) if clip is not None else 0.0
        self.eps = float(eps)
        self.detach_focal_weight = detach_focal_weight
        self.reduction = _check_reduction(reduction)

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Compute the loss.

        Args:
            logits: ``[B, C]`` raw scores.
            targets: ``[B, C]`` with 1 (positive), 0 (negative) or -1 (not annotated, ignored).
        """
        if logits.shape != targets.shape:
            raise ValueError(f"logits {tuple(logits.shape)} and targets {tuple(targets.shape)} must have equal shapes")
        x = logits.float()
        annotated = (targets >= 0).to(x.dtype)
        y = targets.to(x.dtype).clamp(min=0)

        p = torch.sigmoid(x)
        p_neg = (1 - p + self.clip).clamp(max=1) if self.clip > 0 else 1 - p
        loss = y * torch.log(p.clamp(min=self.eps)) + (1 - y) * torch.log(p_neg.clamp(min=self.eps))

        if self.gamma_pos > 0 or self.gamma_neg > 0:
            if self.detach_focal_weight:
                p_w, p_neg_w = p.detach(), p_neg.detach()
            else:
                p_w, p_neg_w = p, p_neg
            pt = p_w * y + p_neg_w * (1 - y)
            gamma = self.gamma_pos * y + self.gamma_neg * (1 - y)
            loss = loss * torch.pow(1 - pt, gamma)

        loss = -loss * annotated
        if self.reduction == "sum":
            return loss.sum()
        if self.reduction == "mean":
            return loss.sum() / annotated.sum().clamp(min=1)
        return loss

    def extra_repr(self) -> str:
        return (
            f"gamma_neg={self.gamma_neg}, gamma_pos={self.gamma_pos}, clip={self.clip}, eps={self.eps}, "
            f"detach_focal_weight={self.detach_focal_weight}, reduction={self.reduction!r}"
        )


class AsymmetricLossSingleLabel(nn.Module):
    """Single-label (softmax) Asymmetric Loss with label smoothing.

    With ``p = softmax(x)``, one-hot target ``t`` and smoothed target ``q = t * (1 - ls) + ls / C``::

        w = (1 - p * t - (1 - p) * (1 - t)) ** (gamma_pos * t + gamma_neg * (1 - t))
        loss = -sum_c q_c * log(p_c) * w_c

    As in the reference implementation the weight ``w`` is not detached. With both gammas 0 this is the
    label-smoothed cross entropy.

    Args:
        gamma_pos: Focusing parameter of the target class.
        gamma_neg: Focusing parameter of the other classes.
        label_smoothing: Label smoothing ``ls`` in [0, 1].
        reduction: ``"mean"`` over non-ignored rows, ``"sum"``, or ``"none"`` for ``[B]`` row losses (ignored rows
            are 0 there, as in ``F.cross_entropy``).
        ignore_index: Target value of rows that are dropped.
    """

    def __init__(
        self,
        *,
        gamma_pos: float = 0.0,
        gamma_neg: float = 4.0,
        label_smoothing: float = 0.1,
        reduction: str = "mean",
        ignore_index: int = -1,
    ):
        super().__init__()
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing}")
        self.gamma_pos = float(gamma_pos)
        self.gamma_neg = float(gamma_neg)
        self.label_smoothing = float(label_smoothing)
        self.reduction = _check_reduction(reduction)
        self.ignore_index = ignore_index

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Compute the loss.

        Args:
            logits: ``[B, C]`` raw scores.
            target: ``[B]`` class indices (long); rows equal to ``ignore_index`` are dropped.
        """
        if logits.ndim != 2 or target.ndim != 1 or target.shape[0] != logits.shape[0]:
            raise ValueError(f"expected logits [B, C] and target [B], got {tuple(logits.shape)}, {tuple(target.shape)}")
        num_classes = logits.shape[-1]
        keep = target != self.ignore_index
        x = logits.float()
        log_p = F.log_softmax(x, dim=-1)
        t = F.one_hot(torch.where(keep, target, 0).long(), num_classes).to(x.dtype)

        if self.gamma_pos > 0 or self.gamma_neg > 0:
            p = log_p.exp()
            base = 1 - p * t - (1 - p) * (1 - t)
            w = torch.pow(base, self.gamma_pos * t + self.gamma_neg * (1 - t))
            log_p = log_p * w

        q = t * (1 - self.label_smoothing) + self.label_smoothing / num_classes
        loss = -(q * log_p).sum(dim=-1) * keep.to(x.dtype)
        if self.reduction == "sum":
            return loss.sum()
        if self.reduction == "mean":
            return loss.sum() / keep.sum().clamp(min=1)
        return loss

    def extra_repr(self) -> str:
        return (
            f"gamma_pos={self.gamma_pos}, gamma_neg={self.gamma_neg}, label_smoothing={self.label_smoothing}, "
            f"reduction={self.reduction!r}, ignore_index={self.ignore_index}"
        )
