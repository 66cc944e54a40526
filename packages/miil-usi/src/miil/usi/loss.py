"""The USI knowledge-distillation loss: soft-target cross entropy plus ``alpha_kd`` times the teacher KL.

Paper: USI (arXiv 2204.03475), its loss ``L = L_GT + alpha_kd * L_KD``. ``L_GT`` is the cross entropy
with the mixup/cutmix-mixed labels (no label smoothing), ``L_KD = KL(p_teacher || p_student)`` averaged over the
batch (``F.kl_div(..., reduction="batchmean")``), with ``alpha_kd = 5`` and no temperature. Additions over the paper
(off by default): a temperature ``T`` (the KL term is then scaled by ``T ** 2``, Hinton et al.), a weight on the
ground-truth term, and the KD-only variant (``--use_kd_only_loss`` in the original code). The teacher's distribution
may come as logits or as log-probabilities (e.g. mixed from precomputed teacher outputs); both are log-softmaxed
after the temperature, which leaves log-probabilities unchanged at ``T = 1``.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from miil.core.losses import distillation_loss, soft_target_cross_entropy

__all__ = ["USIDistillationLoss", "usi_kd_loss"]


def usi_kd_loss(
    student_logits: torch.Tensor,
    soft_targets: torch.Tensor | None,
    teacher_logits: torch.Tensor | None,
    *,
    alpha_kd: float = 5.0,
    temperature: float = 1.0,
    gt_weight: float = 1.0,
    kd_only: bool = False,
) -> torch.Tensor:
    """``gt_weight * CE(student, soft_targets) + alpha_kd * T**2 * KL(softmax(t/T) || softmax(s/T))``.

    Args:
        student_logits: ``[B, C]`` student scores.
        soft_targets: ``[B, C]`` (mixed) label distributions; may be ``None`` when ``kd_only``.
        teacher_logits: ``[B, C]`` teacher logits or log-probabilities; ``None`` trains without KD (plain soft CE).
        alpha_kd: Weight of the KD term (the paper's 5).
        temperature: Softmax temperature of the KD term (the paper's 1).
        gt_weight: Weight of the ground-truth term (the paper's 1).
        kd_only: Drop the ground-truth term.
    """
    if alpha_kd < 0 or gt_weight < 0:
        raise ValueError(f"alpha_kd and gt_weight must be >= 0, got {alpha_kd} and {gt_weight}")
    if kd_only and teacher_logits is None:
        raise ValueError("kd_only needs teacher logits: without a teacher there is nothing left to learn from")
    loss = student_logits.new_zeros((), dtype=torch.float32)
    if not kd_only:
        if soft_targets is None:
            raise ValueError("soft_targets are required unless kd_only is set")
        if soft_targets.shape != student_logits.shape:
            raise ValueError(
                f"soft targets {tuple(soft_targets.shape)} must match the student logits {tuple(student_logits.shape)}"
            )
        loss = loss + gt_weight * soft_target_cross_entropy(student_logits.float(), soft_targets.float())
    if teacher_logits is not None:
        kd = distillation_loss(student_logits, teacher_logits, temperature=temperature, reduction="batchmean")
        loss = loss + alpha_kd * kd
    return loss


class USIDistillationLoss(nn.Module):
    """Module form of :func:`usi_kd_loss`; called as ``loss(student_logits, soft_targets, teacher_logits)``.

    Args:
        alpha_kd: Weight of the KD term (the paper's 5).
        temperature: Softmax temperature of the KD term (the paper's 1).
        gt_weight: Weight of the ground-truth term.
        kd_only: Drop the ground-truth term.
    """

    def __init__(
        self, *, alpha_kd: float = 5.0, temperature: float = 1.0, gt_weight: float = 1.0, kd_only: bool = False
    ):
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        if alpha_kd < 0 or gt_weight < 0:
            raise ValueError(f"alpha_kd and gt_weight must be >= 0, got {alpha_kd} and {gt_weight}")
        self.alpha_kd = float(alpha_kd)
        self.temperature = float(temperature)
        self.gt_weight = float(gt_weight)
        self.kd_only = bool(kd_only)

    def forward(
        self,
        student_logits: torch.Tensor,
        soft_targets: torch.Tensor | None,
        teacher_logits: torch.Tensor | None = None,
    ) -> torch.Tensor:
        return usi_kd_loss(
            student_logits,
            soft_targets,
            teacher_logits,
            alpha_kd=self.alpha_kd,
            temperature=self.temperature,
            gt_weight=self.gt_weight,
            kd_only=self.kd_only,
        )

    def extra_repr(self) -> str:
        return (
            f"alpha_kd={self.alpha_kd}, temperature={self.temperature}, gt_weight={self.gt_weight}, "
            f"kd_only={self.kd_only}"
        )
