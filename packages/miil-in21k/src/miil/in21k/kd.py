"""Semantic knowledge distillation: per-level KD from a teacher, weighted by the teacher's confidence.

Paper: "ImageNet-21K Pretraining for the Masses", Ridnik et al. (arXiv 2104.10972), Sec. 3, semantic KD: the
student matches the teacher's probabilities level by level (each level its own softmax, as in the semantic softmax),
and each level's term is weighted per sample by the teacher's confidence at that level, so that levels where the
teacher is unsure (a fine-grained breed) count less than levels where it is sure (an animal).

Following the released ``calculate_KD_loss`` (``src_files/semantic/semantics.py``; never called by the released
training scripts, which is why :mod:`miil.in21k.train` wires it in):

* the distance is the squared error between the student's and the teacher's level probabilities;
* a sample's confidence at a level is the sum of the teacher's top ``ceil(n_l / 20)`` probabilities (top 5 %);
* the weighted errors are summed over classes, samples and levels (``reduction="sum"``). ``"batchmean"`` divides by
  the batch size, so the scale does not grow with the batch.

``distance="kl"`` swaps the squared error for ``KL(teacher || student)`` per sample (an option, not the original).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .hierarchy import SemanticHierarchy
from .tree import SemanticTree

__all__ = ["SemanticKDLoss", "semantic_kd_loss", "teacher_confidence"]

_REDUCTIONS = ("sum", "batchmean")
_DISTANCES = ("mse", "kl")


def teacher_confidence(teacher_probs: torch.Tensor, *, top_fraction: float = 0.05) -> torch.Tensor:
    """Per-sample confidence: the sum of the top ``ceil(n * top_fraction)`` of ``[B, n]`` ``teacher_probs``."""
    if not 0.0 < top_fraction <= 1.0:
        raise ValueError(f"top_fraction must be in (0, 1], got {top_fraction}")
    k = max(1, math.ceil(teacher_probs.shape[1] * top_fraction))
    return teacher_probs.topk(k, dim=1).values.sum(dim=1)


def semantic_kd_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    hierarchy: SemanticHierarchy,
    *,
    reduction: str = "sum",
    distance: str = "mse",
    top_fraction: float = 0.05,
) -> torch.Tensor:
    """Semantic KD between ``[B, C]`` student and teacher logits (the teacher side is detached).

    Args:
        student_logits: Student scores over the tree's classes.
        teacher_logits: Teacher scores over the same classes.
        hierarchy: The levels of the tree.
        reduction: ``"sum"`` (the original) or ``"batchmean"`` (sum / batch size).
        distance: ``"mse"`` (the original: squared error of probabilities) or ``"kl"``.
        top_fraction: Fraction of a level's classes whose teacher probabilities make its confidence (0.05).
    """
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    if distance not in _DISTANCES:
        raise ValueError(f"distance must be one of {_DISTANCES}, got {distance!r}")
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(
            f"student {tuple(student_logits.shape)} and teacher {tuple(teacher_logits.shape)} logits must match"
        )
    student_levels = hierarchy.split_logits(student_logits.float())
    teacher_levels = hierarchy.split_logits(teacher_logits.detach().float())
    total = student_logits.new_zeros((), dtype=torch.float32)
    for s, t in zip(student_levels, teacher_levels):
        p_t = F.softmax(t, dim=1)
        weight = teacher_confidence(p_t, top_fraction=top_fraction)
        if distance == "mse":
            per_sample = (F.softmax(s, dim=1) - p_t).pow(2).sum(dim=1)
        else:
            per_sample = F.kl_div(F.log_softmax(s, dim=1), F.log_softmax(t, dim=1), reduction="none", log_target=True)
            per_sample = per_sample.sum(dim=1)
        total = total + (per_sample * weight).sum()
    if reduction == "batchmean":
        total = total / max(student_logits.shape[0], 1)
    return total


class SemanticKDLoss(nn.Module):
    """Module form of :func:`semantic_kd_loss`.

    Args:
        hierarchy: A :class:`SemanticHierarchy`, or a tree to build one (original levels).
        reduction: ``"sum"`` (the original) or ``"batchmean"``.
        distance: ``"mse"`` (the original) or ``"kl"``.
        top_fraction: Fraction of a level's classes summed into the teacher's confidence (0.05).
    """

    def __init__(
        self,
        hierarchy: SemanticHierarchy | SemanticTree | str,
        *,
        reduction: str = "sum",
        distance: str = "mse",
        top_fraction: float = 0.05,
    ):
        super().__init__()
        if reduction not in _REDUCTIONS:
            raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
        if distance not in _DISTANCES:
            raise ValueError(f"distance must be one of {_DISTANCES}, got {distance!r}")
        self.hierarchy = hierarchy if isinstance(hierarchy, SemanticHierarchy) else SemanticHierarchy(hierarchy)
        self.reduction = reduction
        self.distance = distance
        self.top_fraction = float(top_fraction)

    def forward(self, student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
        return semantic_kd_loss(
            student_logits,
            teacher_logits,
            self.hierarchy,
            reduction=self.reduction,
            distance=self.distance,
            top_fraction=self.top_fraction,
        )

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}, distance={self.distance!r}, top_fraction={self.top_fraction}"
