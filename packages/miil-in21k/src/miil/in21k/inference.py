"""Hierarchical inference: at each level, the top class when its level-softmax probability exceeds a threshold.

Paper: "ImageNet-21K Pretraining for the Masses", Ridnik et al. (arXiv 2104.10972), semantic inference as in the
original ``visualize_detector.py``: a semantic-softmax model is read level by level, each level's softmax giving its
top class, kept when its probability is above 0.5 (the Samoyed photo gives ``animal, domestic_animal, dog, spitz,
Samoyed``). Levels are read independently, as in the original.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .hierarchy import SemanticHierarchy

__all__ = ["HierarchicalPrediction", "hierarchical_predict"]


@dataclass
class HierarchicalPrediction:
    """Top class per level for a batch.

    Attributes:
        classes: ``[B, L]`` class indices of each level's top class, -1 where its probability is not above the
            threshold.
        probs: ``[B, L]`` the top probability of each level.
        depths: Depth of each level.
    """

    classes: torch.Tensor
    probs: torch.Tensor
    depths: list[int]

    def labels(self, index: int) -> list[tuple[int, float]]:
        """``(class index, probability)`` of sample ``index``'s confident levels, from the top level down."""
        row_c, row_p = self.classes[index].tolist(), self.probs[index].tolist()
        return [(c, p) for c, p in zip(row_c, row_p) if c >= 0]


@torch.no_grad()
def hierarchical_predict(
    logits: torch.Tensor, hierarchy: SemanticHierarchy, *, threshold: float = 0.5
) -> HierarchicalPrediction:
    """Per-level top classes of ``[B, C]`` logits (see the module docstring).

    Args:
        logits: Scores of a semantic-softmax model.
        hierarchy: The levels of its tree.
        threshold: Keep a level's top class when its probability is above this (0.5 in the original).
    """
    if not 0.0 <= threshold < 1.0:
        raise ValueError(f"threshold must be in [0, 1), got {threshold}")
    tops, positions = [], []
    for z in hierarchy.split_logits(logits.float()):
        p, pos = F.softmax(z, dim=1).max(dim=1)
        tops.append(p)
        positions.append(pos)
    probs = torch.stack(tops, dim=1)
    classes = torch.stack([hierarchy.level_classes(level, pos) for level, pos in enumerate(positions)], dim=1)
    classes = torch.where(probs > threshold, classes, -1)
    return HierarchicalPrediction(classes=classes.cpu(), probs=probs.cpu(), depths=list(hierarchy.depths))
