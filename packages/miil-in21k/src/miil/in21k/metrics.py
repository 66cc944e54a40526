"""Semantic accuracy: top-1 accuracy pooled over the hierarchy levels, the paper's ImageNet-21K-P metric.

Paper: "ImageNet-21K Pretraining for the Masses", Ridnik et al. (arXiv 2104.10972), Sec. 3, semantic accuracy: at
each level the prediction is the arg-max of that level's logits, compared with the label's ancestor at that level;
the accuracies are pooled over levels weighted by how many samples have a target there,
``sum_l correct_l / sum_l valid_l`` (the original ``AccuracySemanticSoftmaxMet``). The meter also reports each
level's own accuracy and gathers its counts over DDP ranks.
"""

from __future__ import annotations

import torch

from miil.core.distributed import all_reduce_sum

from .hierarchy import SemanticHierarchy

__all__ = ["SemanticAccuracyMeter", "semantic_accuracy", "semantic_level_counts"]


@torch.no_grad()
def semantic_level_counts(
    logits: torch.Tensor, targets: torch.Tensor, hierarchy: SemanticHierarchy
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per level: ``(correct [L], valid [L])`` counts of a batch (float64, on the logits' device).

    Args:
        logits: ``[B, C]`` scores.
        targets: ``[B]`` class indices (negative: ignored).
        hierarchy: The levels.
    """
    level_targets = hierarchy.semantic_targets(targets.to(logits.device))
    correct, valid = [], []
    for level, z in enumerate(hierarchy.split_logits(logits)):
        t = level_targets[:, level]
        ok = t >= 0
        valid.append(ok.sum())
        correct.append(((z.argmax(dim=1) == t) & ok).sum())
    return torch.stack(correct).double(), torch.stack(valid).double()


def semantic_accuracy(logits: torch.Tensor, targets: torch.Tensor, hierarchy: SemanticHierarchy) -> float:
    """Semantic top-1 accuracy of a batch, in percent (NaN when no sample has any target)."""
    correct, valid = semantic_level_counts(logits, targets, hierarchy)
    total = float(valid.sum())
    return 100.0 * float(correct.sum()) / total if total > 0 else float("nan")


class SemanticAccuracyMeter:
    """Dataset-level semantic accuracy for :class:`miil.core.train.Trainer` (``reset / update / compute``).

    ``compute()`` returns ``semantic_top1`` (percent, the keep-best metric), the flat ``top1`` (arg-max over all
    classes equals the label, the single-label metric) and ``level{d}_top1`` for each trained depth ``d``; counts are
    summed over DDP ranks, so call it on every rank.

    Args:
        hierarchy: The levels of the tree.
    """

    def __init__(self, hierarchy: SemanticHierarchy):
        self.hierarchy = hierarchy
        self.reset()

    def reset(self) -> None:
        self.correct = torch.zeros(self.hierarchy.num_levels, dtype=torch.float64)
        self.valid = torch.zeros(self.hierarchy.num_levels, dtype=torch.float64)
        self.flat = torch.zeros(2, dtype=torch.float64)  # correct, counted

    def update(self, outputs: torch.Tensor, targets: torch.Tensor) -> None:
        correct, valid = semantic_level_counts(outputs, targets, self.hierarchy)
        self.correct += correct.cpu()
        self.valid += valid.cpu()
        keep = targets.to(outputs.device) >= 0
        hits = (outputs.argmax(dim=1) == targets.to(outputs.device)) & keep
        self.flat += torch.tensor([float(hits.sum()), float(keep.sum())], dtype=torch.float64)

    def compute(self) -> dict[str, float]:
        levels = self.hierarchy.num_levels
        totals = all_reduce_sum(torch.cat([self.correct, self.valid, self.flat]))
        correct, valid, flat = totals[:levels], totals[levels : 2 * levels], totals[2 * levels :]
        n = float(valid.sum())
        out = {"semantic_top1": 100.0 * float(correct.sum()) / n if n > 0 else float("nan")}
        out["top1"] = 100.0 * float(flat[0]) / float(flat[1]) if float(flat[1]) > 0 else float("nan")
        for depth, c, v in zip(self.hierarchy.depths, correct.tolist(), valid.tolist()):
            out[f"level{depth}_top1"] = 100.0 * c / v if v > 0 else float("nan")
        return out
