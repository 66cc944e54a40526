"""Semantic softmax loss: one label-smoothed softmax cross entropy per hierarchy level, balanced across levels.

Paper: "ImageNet-21K Pretraining for the Masses", Ridnik et al. (arXiv 2104.10972), Sec. 3, semantic softmax:

    L = sum_l lambda_l * L_l,   L_l = mean_b [ valid_bl * CE_ls(softmax(z_b[level l]), t_bl) ]

with label smoothing ``eps`` spread over the ``n_l`` classes of the level (``eps / n_l`` each), samples that have no
target at level ``l`` contributing 0 but still counting in the batch mean (as in the original), and
``lambda_l = min(20, C / #classes at depth >= l)``. The original (``semantic_loss.py``) built the targets with a
Python loop over the batch on the CPU; here they are one lookup in the precomputed ``[C, L]`` table of
:class:`SemanticHierarchy`, and the level logits come from a single gather.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .hierarchy import SemanticHierarchy
from .tree import SemanticTree

__all__ = ["SemanticSoftmaxLoss", "semantic_softmax_loss"]


def semantic_softmax_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    hierarchy: SemanticHierarchy,
    *,
    label_smoothing: float = 0.2,
    reduction: str = "sum",
) -> torch.Tensor:
    """The semantic softmax loss of a batch.

    Args:
        logits: ``[B, C]`` scores over the tree's classes.
        targets: ``[B]`` class indices (negative values: sample ignored, still counted in the batch mean).
        hierarchy: The levels of the tree.
        label_smoothing: ``eps`` of each level's label smoothing (0.2 in the paper).
        reduction: ``"sum"`` over levels of the weighted level losses (the paper), or ``"none"`` for the ``[L]``
            weighted level losses.
    """
    if not 0.0 <= label_smoothing < 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
    if reduction not in ("sum", "none"):
        raise ValueError(f"reduction must be 'sum' or 'none', got {reduction!r}")
    if targets.shape[0] != logits.shape[0]:
        raise ValueError(f"logits {tuple(logits.shape)} and targets {tuple(targets.shape)} differ in batch size")
    batch = logits.shape[0]
    level_logits = hierarchy.split_logits(logits.float())
    level_targets = hierarchy.semantic_targets(targets.to(logits.device))
    losses = []
    for level, z in enumerate(level_logits):  # ~11 levels; every op covers the whole batch
        t = level_targets[:, level]
        log_p = F.log_softmax(z, dim=1)
        nll = -log_p.gather(1, t.clamp(min=0).unsqueeze(1)).squeeze(1)
        smooth = -log_p.mean(dim=1)  # = -sum_k (1 / n_l) log p_k
        ce = (1.0 - label_smoothing) * nll + label_smoothing * smooth
        losses.append(torch.where(t >= 0, ce, 0.0).sum() / max(batch, 1))
    per_level = torch.stack(losses) * hierarchy.tensors(logits.device).level_weights
    return per_level.sum() if reduction == "sum" else per_level


class SemanticSoftmaxLoss(nn.Module):
    """Module form of :func:`semantic_softmax_loss`.

    Args:
        hierarchy: A :class:`SemanticHierarchy`, or a tree (object, shipped variant name or file) to build one.
        label_smoothing: Label smoothing per level (0.2 in the paper).
        include_deepest: When building the hierarchy from a tree: also train the deepest level (the original does
            not). Ignored when a hierarchy is given.
        max_level_weight: When building the hierarchy from a tree: clamp of the level weights (20).
    """

    def __init__(
        self,
        hierarchy: SemanticHierarchy | SemanticTree | str,
        *,
        label_smoothing: float = 0.2,
        include_deepest: bool = False,
        max_level_weight: float | None = 20.0,
    ):
        super().__init__()
        if not isinstance(hierarchy, SemanticHierarchy):
            hierarchy = SemanticHierarchy(hierarchy, include_deepest=include_deepest, max_level_weight=max_level_weight)
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
        self.hierarchy = hierarchy
        self.label_smoothing = float(label_smoothing)

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return semantic_softmax_loss(logits, targets, self.hierarchy, label_smoothing=self.label_smoothing)

    def extra_repr(self) -> str:
        return f"{self.hierarchy!r}, label_smoothing={self.label_smoothing}"
