"""Single-label top-k accuracy, in percent, as reported for ImageNet (same convention as ``timm.utils.accuracy``)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from .average_precision import _as_tensor

__all__ = ["topk_accuracy"]


def topk_accuracy(logits: Any, targets: Any, topk: Sequence[int] = (1,)) -> list[float]:
    """Percentage of samples whose target class is among the ``k`` highest scores, for each ``k`` in ``topk``.

    Args:
        logits: ``[N, C]`` scores.
        targets: ``[N]`` class indices; -1 marks samples that are ignored.
        topk: The values of ``k``; a ``k`` of at least ``C`` gives 100.

    Returns:
        One accuracy in [0, 100] per ``k`` (NaN when no sample is left).
    """
    x = _as_tensor(logits)
    t = _as_tensor(targets, torch.long)
    if x.ndim != 2 or t.ndim != 1 or t.shape[0] != x.shape[0]:
        raise ValueError(f"expected logits [N, C] and targets [N], got {tuple(x.shape)}, {tuple(t.shape)}")
    if any(int(k) < 1 for k in topk):
        raise ValueError(f"every k must be >= 1, got {tuple(topk)}")
    keep = t >= 0
    x, t = x[keep], t[keep]
    n, c = x.shape
    if n == 0:
        return [math.nan for _ in topk]
    maxk = min(max(int(k) for k in topk), c)
    pred = x.topk(maxk, dim=1).indices
    correct = (pred == t[:, None]).cumsum(dim=1).clamp(max=1)  # [N, maxk]: hit within the first j + 1 predictions
    return [float(correct[:, min(int(k), c) - 1].to(torch.float64).sum() * 100.0 / n) for k in topk]
