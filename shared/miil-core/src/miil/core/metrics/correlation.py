"""Spearman rank correlation with average ranks for ties (matches ``scipy.stats.spearmanr``).

Source: C. Spearman, "The proof and measurement of association between two things", 1904; used e.g. to compare
rankings of models / training configurations.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from .average_precision import _as_tensor

__all__ = ["spearman"]


def _average_ranks(x: torch.Tensor) -> torch.Tensor:
    """1-based ranks of a 1-D tensor; tied values get the mean of the ranks they span."""
    sorted_x, order = torch.sort(x, stable=True)
    new_group = torch.ones_like(sorted_x, dtype=torch.bool)
    new_group[1:] = sorted_x[1:] != sorted_x[:-1]
    group = torch.cumsum(new_group.long(), dim=0) - 1
    counts = torch.bincount(group).to(torch.float64)
    starts = torch.cumsum(counts, dim=0) - counts  # 0-based first position of each group
    group_rank = starts + (counts + 1) / 2
    ranks = torch.empty_like(x, dtype=torch.float64)
    ranks[order] = group_rank[group]
    return ranks


def spearman(a: Any, b: Any) -> float:
    """Spearman's rank correlation coefficient of two 1-D sequences.

    Args:
        a: First sequence of values.
        b: Second sequence, same length as ``a`` (at least 2).

    Returns:
        The coefficient in [-1, 1]; NaN when an input is constant or contains NaN.
    """
    x, y = _as_tensor(a), _as_tensor(b)
    if x.ndim != 1 or y.ndim != 1 or x.shape[0] != y.shape[0] or x.shape[0] < 2:
        raise ValueError(f"expected two 1-D inputs of equal length >= 2, got {tuple(x.shape)} and {tuple(y.shape)}")
    if bool(torch.isnan(x).any() or torch.isnan(y).any()):
        return math.nan
    rx, ry = _average_ranks(x), _average_ranks(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    den = torch.sqrt((rx * rx).sum() * (ry * ry).sum())
    if float(den) == 0.0:
        return math.nan
    return float(((rx * ry).sum() / den).clamp(-1.0, 1.0))
