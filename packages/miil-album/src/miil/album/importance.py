"""Image importance from the album transformer's attention: CLS attention per layer and head, and rollout.

Paper: PETA (arXiv 2109.12499), section 5 (image importance): the attention of the CLS token over the album's
images ranks the images, and the ranking correlates with the human importance scores of ML-CUFED (Spearman rank
correlation). The original code keeps the last layer's attention averaged over heads; here every layer and head is
available, and attention rollout (Abnar & Zuidema, "Quantifying Attention Flow in Transformers", ACL 2020, arXiv
2005.00928) follows the attention through all layers, with the residual connection counted as an identity path.

Every importance vector here covers the real images only: padded slots get 0 and the scores of an album sum to 1
(the CLS token's attention to itself is left out and the rest renormalised, which keeps the ranking).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch

from miil.core.metrics import spearman

__all__ = ["attention_rollout", "cls_attention", "image_importance", "importance_spearman"]


def _check_attention(attention: torch.Tensor) -> tuple[int, int, int, int]:
    if attention.ndim != 5 or attention.shape[-1] != attention.shape[-2]:
        raise ValueError(f"expected attention [B, layers, heads, K+1, K+1], got {tuple(attention.shape)}")
    b, layers, heads, n, _ = attention.shape
    return b, layers, heads, n - 1


def _album_mask(mask: torch.Tensor | None, b: int, k: int, device: torch.device) -> torch.Tensor:
    if mask is None:
        return torch.ones(b, k, dtype=torch.bool, device=device)
    if mask.shape != (b, k) or mask.dtype != torch.bool:
        raise ValueError(f"mask must be a bool tensor of shape {(b, k)}, got {mask.dtype} {tuple(mask.shape)}")
    return mask.to(device)


def _renormalise(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Zero padded slots and divide by the sum over the real images (last dim)."""
    while mask.ndim < scores.ndim:
        mask = mask.unsqueeze(1)
    scores = scores.float() * mask
    return scores / scores.sum(dim=-1, keepdim=True).clamp_min(torch.finfo(scores.dtype).tiny)


def cls_attention(attention: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """The CLS token's attention over the images, for every layer and head.

    Args:
        attention: ``[B, layers, heads, K+1, K+1]`` from ``PETA(..., return_attention=True)``.
        mask: ``[B, K]`` bool, ``True`` for real images.

    Returns:
        ``[B, layers, heads, K]``, each row summing to 1 over the real images.
    """
    b, _, _, k = _check_attention(attention)
    return _renormalise(attention[..., 0, 1:], _album_mask(mask, b, k, attention.device))


def _select(scores: torch.Tensor, which: str | int, dim: int, what: str) -> torch.Tensor:
    if which == "mean":
        return scores.mean(dim=dim)
    if which == "last":
        return scores.select(dim, -1)
    if isinstance(which, int) and not isinstance(which, bool):
        size = scores.shape[dim]
        if not -size <= which < size:
            raise ValueError(f"{what} index {which} out of range for {size} {what}s")
        return scores.select(dim, which)
    raise ValueError(f"{what} must be 'mean', 'last' or an index, got {which!r}")


def image_importance(
    attention: torch.Tensor, mask: torch.Tensor | None = None, *, layer: str | int = "last", head: str | int = "mean"
) -> torch.Tensor:
    """Importance of every image of an album from the CLS attention of one layer (or all) and one head (or all).

    The defaults (last layer, heads averaged) are the original's.

    Args:
        attention: ``[B, layers, heads, K+1, K+1]``.
        mask: ``[B, K]`` bool, ``True`` for real images.
        layer: "last", "mean" (over layers) or a layer index.
        head: "mean" (over heads) or a head index.

    Returns:
        ``[B, K]`` importance, summing to 1 over each album's real images, 0 in padded slots.
    """
    b, _, _, k = _check_attention(attention)
    mask = _album_mask(mask, b, k, attention.device)
    if head == "last":
        raise ValueError("head must be 'mean' or an index, got 'last'")
    # Average the raw CLS rows first (the original averages the heads' attention maps), then leave the CLS column
    # out and renormalise: per-head renormalisation would weigh heads differently.
    scores = _select(_select(attention[..., 0, 1:].float(), head, 2, "head"), layer, 1, "layer")
    return _renormalise(scores, mask)


def attention_rollout(
    attention: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    head: str | int = "mean",
    residual: bool = True,
) -> torch.Tensor:
    """Attention rollout from the CLS output back to the input images.

    With ``A_l`` the (head-averaged) attention of layer ``l`` and ``I`` the identity, each layer contributes
    ``R_l = (A_l + I) / 2`` (rows renormalised) when ``residual`` is on, and the rollout is ``R_L ... R_2 R_1``; the
    importance is its CLS row over the images.

    Args:
        attention: ``[B, layers, heads, K+1, K+1]``.
        mask: ``[B, K]`` bool, ``True`` for real images.
        head: "mean" over heads, or a head index.
        residual: Add the identity for the residual connections.

    Returns:
        ``[B, K]`` importance, summing to 1 over each album's real images, 0 in padded slots.
    """
    b, layers, _, k = _check_attention(attention)
    mask = _album_mask(mask, b, k, attention.device)
    if head == "last":
        raise ValueError("head must be 'mean' or an index, got 'last'")
    per_layer = _select(attention.double(), head, 2, "head")  # [B, layers, K+1, K+1]
    eye = torch.eye(k + 1, dtype=per_layer.dtype, device=per_layer.device)
    rollout = eye.expand(b, -1, -1)
    for index in range(layers):
        a = per_layer[:, index]
        if residual:
            a = 0.5 * a + 0.5 * eye
            a = a / a.sum(dim=-1, keepdim=True)
        rollout = a @ rollout
    return _renormalise(rollout[:, 0, 1:], mask)


def importance_spearman(predicted: Mapping[str, float], human: Mapping[str, float]) -> float:
    """Spearman rank correlation between predicted and human importance over the images both score.

    Args:
        predicted: Image name -> predicted importance (e.g. from :func:`image_importance`).
        human: Image name -> human importance score (ML-CUFED's ``image_importance.json``, read with
            :func:`miil.album.data.load_importance_scores`).

    Returns:
        The coefficient in [-1, 1], or NaN when fewer than 2 images are shared or a side is constant.
    """
    common = [name for name in predicted if name in human]
    if len(common) < 2:
        return math.nan
    return spearman([float(predicted[n]) for n in common], [float(human[n]) for n in common])


def mean_ignoring_nan(values: Sequence[float]) -> float:
    """Mean of the finite values (NaN when there are none), for averaging per-album correlations."""
    finite = [v for v in values if not math.isnan(v)]
    return sum(finite) / len(finite) if finite else math.nan
