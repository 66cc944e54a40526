"""Per-class and overall precision / recall / F1 for multi-label classification (CP, CR, CF1, OP, OR, OF1).

Source: the MS-COCO multi-label protocol of "Multi-Label Image Recognition with Graph Convolutional Networks"
(ML-GCN, Chen et al., CVPR 2019, arXiv 1904.03582), also reported by ASL (arXiv 2009.14119). Predictions are either
thresholded scores or the top-k labels of each image.
"""

from __future__ import annotations

from typing import Any

import torch

from .average_precision import _as_tensor

__all__ = ["multilabel_prf"]


def _safe_div(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    return torch.where(den > 0, num / den.clamp(min=1e-300), torch.zeros_like(num))


def _f1(p: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    return _safe_div(2 * p * r, p + r)


def multilabel_prf(
    scores: Any,
    targets: Any,
    *,
    threshold: float | None = None,
    top_k: int | None = None,
) -> dict[str, float]:
    """Precision, recall and F1, per class (averaged over classes) and overall (from summed counts), in percent.

    ``CP``/``CR`` average the per-class precision/recall over all classes and ``CF1 = 2 * CP * CR / (CP + CR)``;
    ``OP``/``OR``/``OF1`` use the true-positive, predicted and positive counts summed over classes. A class without
    predictions has precision 0, a class without positives has recall 0 (no NaN).

    Args:
        scores: ``[N, C]`` scores (probabilities when a ``threshold`` is used).
        targets: ``[N, C]`` with 1 (positive), 0 (negative) or -1 (not annotated, ignored).
        threshold: Scores ``>= threshold`` are predicted positive.
        top_k: The ``top_k`` highest scores of each sample are predicted positive.

    Returns:
        Dict with keys ``CP``, ``CR``, ``CF1``, ``OP``, ``OR``, ``OF1``.
    """
    if (threshold is None) == (top_k is None):
        raise ValueError("exactly one of threshold or top_k must be given")
    s, y = _as_tensor(scores), _as_tensor(targets)
    if s.shape != y.shape or s.ndim != 2:
        raise ValueError(f"expected scores and targets of equal shape [N, C], got {tuple(s.shape)}, {tuple(y.shape)}")
    if threshold is not None:
        pred = s >= threshold
    else:
        if top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {top_k}")
        idx = s.topk(min(int(top_k), s.shape[1]), dim=1).indices
        pred = torch.zeros_like(s, dtype=torch.bool).scatter_(1, idx, True)

    annotated = y >= 0
    pos = y > 0
    pred = pred & annotated
    tp = (pred & pos).sum(dim=0).to(torch.float64)
    n_pred = pred.sum(dim=0).to(torch.float64)
    n_pos = pos.sum(dim=0).to(torch.float64)

    cp = _safe_div(tp, n_pred).mean() if tp.numel() else tp.new_zeros(())
    cr = _safe_div(tp, n_pos).mean() if tp.numel() else tp.new_zeros(())
    op = _safe_div(tp.sum(), n_pred.sum())
    or_ = _safe_div(tp.sum(), n_pos.sum())
    out = {"CP": cp, "CR": cr, "CF1": _f1(cp, cr), "OP": op, "OR": or_, "OF1": _f1(op, or_)}
    return {k: 100.0 * float(v) for k, v in out.items()}
