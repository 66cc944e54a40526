"""Semantic softmax loss: one label-smoothed softmax cross entropy per hierarchy level, balanced across levels.

Paper: "ImageNet-21K Pretraining for the Masses", Ridnik et al. (arXiv 2104.10972), Sec. 3, semantic softmax:

    L = sum_l lambda_l * L_l,   L_l = mean_b [ valid_bl * CE_ls(softmax(z_b[level l]), t_bl) ]

with label smoothing ``eps`` spread over the ``n_l`` classes of the level (``eps / n_l`` each), samples that have no
target at level ``l`` contributing 0 but still counting in the batch mean (as in the original), and
``lambda_l = min(20, C / #classes at depth >= l)``. The original (``semantic_loss.py``) built the targets with a
Python loop over the batch on the CPU; here they are one lookup in the precomputed ``[C, L]`` table of
:class:`SemanticHierarchy`.

The arithmetic is fused into one autograd function with a hand-written backward, so that the ``[B, C]`` logits are
read a few times instead of once per intermediate of a per-level graph:

* forward: each level's logits are gathered into a contiguous ``[B, n_l]`` block and go through one softmax kernel;
  the level's log-sum-exp is ``max_l z - log max_l p`` (the largest probability never underflows, so this is as exact
  as a log-softmax), and ``CE_ls = lse - (1 - eps) z_t - eps * mean_l z`` needs only row sums;
* backward: ``dL/dz = c_bl * (p - eps / n_l - (1 - eps) onehot(t_bl))`` with ``c_bl = lambda_l * valid_bl / B``,
  written level by level into one buffer that a single index gather puts back in class order (the classes that no
  level trains get 0).
"""

from __future__ import annotations

import torch
import torch.nn as nn
from torch.autograd.function import once_differentiable

from .hierarchy import SemanticHierarchy
from .tree import SemanticTree

__all__ = ["SemanticSoftmaxLoss", "semantic_softmax_loss"]


class _FusedSemanticSoftmax(torch.autograd.Function):
    """``[B, C]`` float logits, ``[B, L]`` level targets -> ``[L]`` weighted level losses (see the module doc)."""

    @staticmethod
    def forward(ctx, logits, level_targets, hierarchy, label_smoothing):
        tensors = hierarchy.tensors(logits.device)
        batch = logits.shape[0]
        # Level-major buffers (one allocation each): level l is a contiguous [B, n_l] block, as the softmax wants.
        gathered = logits.new_empty(batch * len(tensors.order))
        probs_flat = torch.empty_like(gathered)
        probs, stats = [], []
        start = 0
        for index in tensors.level_indices:
            size = index.shape[0]
            end = start + batch * size
            z = torch.index_select(logits, 1, index, out=gathered[start:end].view(batch, size))
            p = torch.softmax(z, dim=1, out=probs_flat[start:end].view(batch, size))
            stats.append(torch.stack([z.amax(dim=1), z.sum(dim=1), p.amax(dim=1)]))
            probs.append(p)
            start = end
        level_max, level_sum, top_prob = torch.stack(stats, dim=2)  # each [B, L]
        lse = level_max - top_prob.log()
        valid = level_targets >= 0
        flat_targets = level_targets.clamp(min=0) + tensors.level_offsets
        target_logit = logits.gather(1, tensors.order[flat_targets])
        sizes = tensors.level_sizes.to(logits.dtype)
        ce = lse - (1.0 - label_smoothing) * target_logit - label_smoothing * level_sum / sizes
        per_level = torch.where(valid, ce, 0.0).sum(dim=0) * tensors.level_weights / max(batch, 1)
        ctx.probs = probs
        ctx.hierarchy = hierarchy
        ctx.label_smoothing = label_smoothing
        ctx.save_for_backward(valid, flat_targets)
        ctx.mark_non_differentiable(level_targets)
        return per_level

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_per_level):
        valid, flat_targets = ctx.saved_tensors
        probs, eps = ctx.probs, ctx.label_smoothing
        tensors = ctx.hierarchy.tensors(grad_per_level.device)
        batch = valid.shape[0]
        coef = torch.where(valid, grad_per_level * tensors.level_weights / max(batch, 1), 0.0)
        smooth = coef * (-eps / tensors.level_sizes.to(coef.dtype))
        # Class-position order with one trailing zero column for the classes that no level trains.
        grad = coef.new_empty(batch, len(tensors.order) + 1)
        grad[:, -1] = 0.0
        start = 0
        for level, p in enumerate(probs):
            out = torch.mul(p, coef[:, level : level + 1], out=grad[:, start : start + p.shape[1]])
            out.add_(smooth[:, level : level + 1])
            start += p.shape[1]
        grad.scatter_add_(1, flat_targets, coef * -(1.0 - eps))
        return grad.index_select(1, tensors.inverse_order), None, None, None


def semantic_softmax_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    hierarchy: SemanticHierarchy,
    *,
    label_smoothing: float = 0.2,
    reduction: str = "sum",
) -> torch.Tensor:
    """The semantic softmax loss of a batch.

    Computed in float32 whatever the logits' dtype; the gradient flows back to ``logits``. Not twice differentiable.

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
    hierarchy._check_logits(logits)
    level_targets = hierarchy.semantic_targets(targets.to(logits.device))
    per_level = _FusedSemanticSoftmax.apply(logits.float(), level_targets, hierarchy, float(label_smoothing))
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
