"""Per-class average precision and mean average precision (mAP) for multi-label classification.

AP is the non-interpolated average precision of scikit-learn's ``average_precision_score``
(https://scikit-learn.org/stable/modules/generated/sklearn.metrics.average_precision_score.html): with the distinct
scores as thresholds, ``AP = sum_k (R_k - R_{k-1}) * P_k``, where equal scores form a single threshold. This is the
metric reported by the ASL (arXiv 2009.14119), ML-Decoder (arXiv 2111.12933) and CSL / partial-label
(arXiv 2112.10941) papers; targets of -1 mark unannotated labels, which are ignored.
"""

from __future__ import annotations

import math
from typing import Any

import torch

__all__ = ["average_precision", "mean_average_precision"]


def _as_tensor(x: Any, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Detached CPU tensor of ``dtype`` from a tensor, numpy array or nested sequence."""
    if isinstance(x, torch.Tensor):
        x = x.detach()
    return torch.as_tensor(x).to(device="cpu", dtype=dtype)


def _scores_targets_2d(scores: Any, targets: Any) -> tuple[torch.Tensor, torch.Tensor, bool]:
    s, y = _as_tensor(scores), _as_tensor(targets)
    if s.shape != y.shape:
        raise ValueError(f"scores {tuple(s.shape)} and targets {tuple(y.shape)} must have equal shapes")
    if s.ndim not in (1, 2):
        raise ValueError(f"expected [N] or [N, C] inputs, got {tuple(s.shape)}")
    one_dim = s.ndim == 1
    if one_dim:
        s, y = s[:, None], y[:, None]
    return s, y, one_dim


def average_precision(scores: Any, targets: Any) -> torch.Tensor:
    """Non-interpolated, tie-aware average precision per class (equal to sklearn's ``average_precision_score``).

    Args:
        scores: ``[N, C]`` (or ``[N]``) scores; higher means more confident.
        targets: Same shape, 1 (positive), 0 (negative) or -1 (not annotated, ignored).

    Returns:
        Float64 ``[C]`` tensor (a 0-dim tensor for 1-D inputs); NaN for classes without positives.
    """
    s, y, one_dim = _scores_targets_2d(scores, targets)
    n, c = s.shape
    if n == 0:
        ap = torch.full((c,), math.nan, dtype=torch.float64)
        return ap[0] if one_dim else ap

    s_sorted, order = torch.sort(s, dim=0, descending=True)
    y_sorted = torch.gather(y, 0, order)
    tp = torch.cumsum((y_sorted > 0).to(torch.float64), dim=0)
    fp = torch.cumsum((y_sorted == 0).to(torch.float64), dim=0)

    # The last row of each group of equal scores is a threshold; unannotated rows add to neither TP nor FP.
    is_end = torch.ones_like(s_sorted, dtype=torch.bool)
    is_end[:-1] = s_sorted[:-1] != s_sorted[1:]

    # TP at the previous threshold: TP is non-decreasing, so a running max of TP-at-thresholds shifted by one row.
    tp_at_end = torch.where(is_end, tp, torch.zeros_like(tp))
    tp_prev = torch.cat([torch.zeros_like(tp[:1]), torch.cummax(tp_at_end, dim=0).values[:-1]])
    delta_tp = torch.where(is_end, tp - tp_prev, torch.zeros_like(tp))

    predicted = tp + fp
    precision = torch.where(predicted > 0, tp / predicted.clamp(min=1), torch.zeros_like(tp))
    n_pos = tp[-1]
    ap = (delta_tp * precision).sum(dim=0) / n_pos
    ap = torch.where(n_pos > 0, ap, torch.full_like(ap, math.nan))
    return ap[0] if one_dim else ap


def mean_average_precision(
    scores: Any,
    targets: Any,
    *,
    skip_empty: bool = True,
    require_negatives: bool = False,
) -> float:
    """Mean of the per-class average precisions, in [0, 1].

    Args:
        scores: ``[N, C]`` (or ``[N]``) scores.
        targets: Same shape, 1 (positive), 0 (negative) or -1 (not annotated, ignored).
        skip_empty: Average only over classes with at least one positive; when False, classes without positives
            count as AP 0 (the behaviour of the original ASL validation code).
        require_negatives: Also skip classes without any annotated negative (the partial-label mAP of CSL).

    Returns:
        The mAP, or NaN when no class qualifies.
    """
    s, y, _ = _scores_targets_2d(scores, targets)
    ap = average_precision(s, y)
    has_pos = (y > 0).any(dim=0)
    keep = has_pos if skip_empty else torch.ones_like(has_pos)
    if require_negatives:
        keep = keep & (y == 0).any(dim=0)
    if not bool(keep.any()):
        return math.nan
    ap = torch.where(has_pos, ap, torch.zeros_like(ap))
    return float(ap[keep].mean())
