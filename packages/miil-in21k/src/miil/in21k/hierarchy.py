"""Hierarchy levels of the semantic softmax: which logits form each softmax, the targets, the level weights.

Paper: "ImageNet-21K Pretraining for the Masses", Ridnik et al. (arXiv 2104.10972), Sec. 3, semantic softmax and Fig. 2:
the ``C`` outputs are split by hierarchy level, each level gets its own softmax, and a label gives one target per
level (its ancestor at that depth, or none when the label sits above that depth). Each level's loss is weighted by
``lambda_i = min(20, C / #classes at depth >= i)`` to balance levels that fewer samples reach ("hierarchy balancing").

Behaviour of the original code (``src_files/semantic/semantics.py``) kept by default:

* a level is trained when it holds more than one class, for depths ``0 .. max_depth - 1``: the deepest level is
  never trained (``include_deepest=True`` also trains it; for the shipped fall11 / winter21 trees this changes
  nothing, since their deepest level holds a single class);
* the classes of a level are in ascending class-index order; label-smoothing and CE are per level.

Fixed: the original indexes the level weights and the target positions by depth but the logits by position in the
list of trained levels, which misaligns whenever a level in the middle is skipped; here every level carries its own
depth. The per-sample Python loop that built targets is replaced by a precomputed ``[C, L]`` table.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from .tree import SemanticTree, load_tree

__all__ = ["LevelTensors", "SemanticHierarchy"]


class LevelTensors(NamedTuple):
    """The hierarchy's index tensors on one device (see :class:`SemanticHierarchy`)."""

    order: torch.Tensor
    target_table: torch.Tensor
    level_weights: torch.Tensor
    level_indices: tuple[torch.Tensor, ...]
    level_offsets: torch.Tensor
    level_sizes: torch.Tensor
    inverse_order: torch.Tensor


class SemanticHierarchy:
    """The levels of a semantic tree, as index tensors.

    Attributes:
        depths: The depth trained by each level (``[L]`` Python ints).
        level_indices: For each level, the class indices of its softmax (ascending).
        level_sizes: Classes per level.
        order: ``cat(level_indices)``: a permutation of the trained classes, level after level.
        level_offsets: ``[L]`` long: where each level starts in ``order``.
        inverse_order: ``[C]`` long: the position of each class in ``order``; ``len(order)`` for the classes that
            no level trains (so a ``[B, len(order) + 1]`` tensor whose last column is zero maps back to ``[B, C]``).
        target_table: ``[C, L]`` long: for class ``c`` and level ``l``, the position within level ``l`` of the
            ancestor of ``c`` at depth ``depths[l]`` (``c`` itself at its own depth), or -1.
        level_weights: ``[L]`` float: ``min(max_level_weight, C / #classes with depth >= depths[l])``.

    Args:
        tree: A :class:`SemanticTree`, a shipped variant name (``"fall11"``) or a tree file.
        include_deepest: Also train the deepest level (the original leaves it out).
        max_level_weight: Clamp of the level weights (20 in the paper); ``None`` disables it.
    """

    def __init__(
        self,
        tree: SemanticTree | str,
        *,
        include_deepest: bool = False,
        max_level_weight: float | None = 20.0,
    ):
        self.tree = load_tree(tree)
        self.include_deepest = bool(include_deepest)
        self.max_level_weight = max_level_weight
        num_classes = len(self.tree)
        depth = torch.tensor(self.tree.depths, dtype=torch.long)
        max_depth = int(depth.max())
        hist = torch.bincount(depth, minlength=max_depth + 1)
        last = max_depth + 1 if include_deepest else max_depth
        self.depths = [d for d in range(last) if int(hist[d]) > 1]
        if not self.depths:
            raise ValueError(
                f"the tree has no level with more than one class below its deepest level ({hist.tolist()} classes per "
                "depth); nothing to train with a semantic softmax (try include_deepest=True)"
            )
        self.num_classes = num_classes
        self.level_indices = [torch.nonzero(depth == d).flatten() for d in self.depths]
        self.level_sizes = [len(ix) for ix in self.level_indices]
        self.order = torch.cat(self.level_indices)
        self.level_offsets = torch.tensor([0, *self.level_sizes[:-1]], dtype=torch.long).cumsum(0)
        self.inverse_order = torch.full((num_classes,), len(self.order), dtype=torch.long)
        self.inverse_order[self.order] = torch.arange(len(self.order))

        position = torch.full((num_classes,), -1, dtype=torch.long)
        for ix in self.level_indices:
            position[ix] = torch.arange(len(ix))
        # chain[c, d] = the ancestor of c at depth d (c itself at its own depth), -1 below c's depth.
        chain = torch.full((num_classes, max_depth + 1), -1, dtype=torch.long)
        for c, ancestors in enumerate(self.tree.class_tree_list):
            for k, a in enumerate(ancestors):
                chain[c, len(ancestors) - 1 - k] = a
        at_depth = chain[:, self.depths]  # [C, L]
        self.target_table = torch.where(at_depth >= 0, position[at_depth.clamp(min=0)], -1)

        at_or_below = torch.flip(torch.cumsum(torch.flip(hist, [0]), 0), [0]).to(torch.float64)
        weights = num_classes / at_or_below[self.depths]
        if max_level_weight is not None:
            weights = weights.clamp(max=float(max_level_weight))
        self.level_weights = weights.to(torch.float32)
        self._device_cache: dict[torch.device, LevelTensors] = {}

    @property
    def num_levels(self) -> int:
        return len(self.depths)

    def __repr__(self) -> str:
        return (
            f"SemanticHierarchy(classes={self.num_classes}, depths={self.depths}, sizes={self.level_sizes}, "
            f"include_deepest={self.include_deepest})"
        )

    def tensors(self, device: torch.device | str) -> LevelTensors:
        """The index tensors on ``device`` (copied once per device)."""
        device = torch.device(device)
        if device not in self._device_cache:
            self._device_cache[device] = LevelTensors(
                order=self.order.to(device),
                target_table=self.target_table.to(device),
                level_weights=self.level_weights.to(device),
                level_indices=tuple(ix.to(device) for ix in self.level_indices),
                level_offsets=self.level_offsets.to(device),
                level_sizes=torch.tensor(self.level_sizes, dtype=torch.long, device=device),
                inverse_order=self.inverse_order.to(device),
            )
        return self._device_cache[device]

    def _check_logits(self, logits: torch.Tensor) -> None:
        if logits.ndim != 2 or logits.shape[1] != self.num_classes:
            raise ValueError(
                f"expected logits [B, {self.num_classes}] for this tree, got {tuple(logits.shape)}; "
                "the model's number of classes must equal the tree's"
            )

    def split_logits(self, logits: torch.Tensor) -> list[torch.Tensor]:
        """``[B, C]`` logits -> one ``[B, n_l]`` tensor per level (one gather, then views)."""
        self._check_logits(logits)
        order = self.tensors(logits.device).order
        return list(logits.index_select(1, order).split(self.level_sizes, dim=1))

    def semantic_targets(self, targets: torch.Tensor) -> torch.Tensor:
        """``[B]`` class indices -> ``[B, L]`` positions within each level (-1: no target at that level).

        Negative targets (ignored samples) give -1 at every level.
        """
        if targets.ndim != 1:
            raise ValueError(f"semantic targets need class indices [B], got shape {tuple(targets.shape)}")
        targets = targets.long()
        if targets.numel() and int(targets.max()) >= self.num_classes:
            raise ValueError(f"target class {int(targets.max())} is outside 0..{self.num_classes - 1}")
        table = self.tensors(targets.device).target_table
        out = table[targets.clamp(min=0)]
        return torch.where(targets[:, None] >= 0, out, -1)

    def level_classes(self, level: int, positions: torch.Tensor) -> torch.Tensor:
        """Class indices of ``positions`` within level ``level`` (-1 stays -1)."""
        ix = self.level_indices[level].to(positions.device)
        return torch.where(positions >= 0, ix[positions.clamp(min=0)], -1)
