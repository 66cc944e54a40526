"""Knowledge distillation and soft-target losses.

Paper: "Distilling the Knowledge in a Neural Network", Hinton, Vinyals and Dean, 2015 (arXiv 1503.02531): the student
matches the teacher's temperature-softened class distribution, and the KL term is scaled by ``T ** 2`` so that its
gradient magnitude does not depend on the temperature.

``SoftTargetCrossEntropy`` is timm's (used with mixup / cutmix soft targets); ``soft_target_cross_entropy`` is its
functional form.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from timm.loss import SoftTargetCrossEntropy

__all__ = ["DistillationLoss", "SoftTargetCrossEntropy", "distillation_loss", "soft_target_cross_entropy"]

_KL_REDUCTIONS = ("none", "batchmean", "sum", "mean")


def distillation_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    *,
    temperature: float = 1.0,
    reduction: str = "batchmean",
) -> torch.Tensor:
    """Hinton KD loss ``KL(softmax(t / T) || softmax(s / T)) * T ** 2``; the teacher logits are detached.

    Args:
        student_logits: ``[B, C]`` student scores.
        teacher_logits: ``[B, C]`` teacher scores.
        temperature: Softmax temperature ``T`` (> 0).
        reduction: Reduction of ``F.kl_div``: ``"batchmean"`` (the true KL averaged over the batch), ``"sum"``,
            ``"mean"`` (over all elements) or ``"none"``.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if reduction not in _KL_REDUCTIONS:
        raise ValueError(f"reduction must be one of {_KL_REDUCTIONS}, got {reduction!r}")
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(
            f"student {tuple(student_logits.shape)} and teacher {tuple(teacher_logits.shape)} logits must match"
        )
    log_p_s = F.log_softmax(student_logits.float() / temperature, dim=-1)
    log_p_t = F.log_softmax(teacher_logits.detach().float() / temperature, dim=-1)
    return F.kl_div(log_p_s, log_p_t, reduction=reduction, log_target=True) * (temperature**2)


class DistillationLoss(nn.Module):
    """Module form of :func:`distillation_loss`.

    Args:
        temperature: Softmax temperature ``T`` (> 0).
        reduction: Reduction of ``F.kl_div`` (``"batchmean"``, ``"sum"``, ``"mean"`` or ``"none"``).
    """

    def __init__(self, *, temperature: float = 1.0, reduction: str = "batchmean"):
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        if reduction not in _KL_REDUCTIONS:
            raise ValueError(f"reduction must be one of {_KL_REDUCTIONS}, got {reduction!r}")
        self.temperature = float(temperature)
        self.reduction = reduction

    def forward(self, student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
        return distillation_loss(student_logits, teacher_logits, temperature=self.temperature, reduction=self.reduction)

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}, reduction={self.reduction!r}"


def soft_target_cross_entropy(logits: torch.Tensor, soft_targets: torch.Tensor) -> torch.Tensor:
    """Cross entropy with soft (e.g. mixup) targets, ``mean_b -sum_c q_bc * log_softmax(x)_bc``.

    Args:
        logits: ``[B, C]`` raw scores.
        soft_targets: ``[B, C]`` target distributions.
    """
    return torch.sum(-soft_targets * F.log_softmax(logits, dim=-1), dim=-1).mean()
