"""PETA and its baseline: event recognition for photo albums.

Paper: "PETA: Photo Albums Event Recognition using Transformers Attention", Glaser et al., 2021 (arXiv 2109.12499).

* :class:`PETA` (section 3): backbone per image -> image embeddings -> :class:`AlbumTransformer` -> CLS -> linear
  multi-label head (sigmoid). The original's defaults: TResNet-M, 6 layers, 8 heads, width = backbone features,
  feed-forward 2048, post-norm, final LayerNorm.
* :class:`MeanOfPredictions`: the original's ``use_transformer=0`` baseline, the mean of the per-image predictions
  (softmax outputs in the original).

Both take a padded batch of albums ``[B, K, C, H, W]`` with a ``[B, K]`` mask (``True`` = real image). Padded slots
never reach the backbone, so they cost nothing and cannot change a result (also not through BatchNorm statistics in
training); the original instead duplicated images up to 32 per album.
"""

from __future__ import annotations

import os
from typing import Any

import torch
import torch.nn as nn

from .aggregator import AlbumTransformer, check_album_mask
from .image_encoder import ImageEncoder

__all__ = ["MeanOfPredictions", "PETA", "embed_album_images"]


def embed_album_images(encoder: nn.Module, images: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Run ``encoder`` on the real images of a padded album batch and scatter the embeddings back.

    Args:
        encoder: Maps ``[N, C, H, W]`` to ``[N, D]``.
        images: ``[B, K, C, H, W]`` padded albums.
        mask: ``[B, K]`` bool, ``True`` for real images (``None``: all real).

    Returns:
        ``[B, K, D]`` embeddings, zeros in padded slots.
    """
    if images.ndim != 5:
        raise ValueError(f"expected albums [B, K, C, H, W], got {tuple(images.shape)}")
    b, k = images.shape[:2]
    mask = check_album_mask(mask, b, k, images.device)
    if bool(mask.all()):
        return encoder(images.flatten(0, 1)).view(b, k, -1)
    emb = encoder(images[mask])
    out = emb.new_zeros(b, k, emb.shape[-1])
    out[mask] = emb
    return out


def _make_encoder(
    backbone: str | type[nn.Module] | nn.Module,
    num_features: int | None,
    pretrained: bool,
    checkpoint: str | os.PathLike | None,
    backbone_kwargs: dict[str, Any] | None,
) -> ImageEncoder:
    if isinstance(backbone, ImageEncoder):
        return backbone
    return ImageEncoder(
        backbone, num_features=num_features, pretrained=pretrained, checkpoint=checkpoint, **(backbone_kwargs or {})
    )


class PETA(nn.Module):
    """Photo-album event recognition with a transformer over the album's images.

    Args:
        backbone: timm model name, class or module for the per-image embeddings (see :class:`ImageEncoder`).
        num_classes: Number of events (23 for ML-CUFED and CUFED, 14 for PEC).
        depth: Transformer layers.
        num_heads: Attention heads.
        ffn_dim: Feed-forward width of the transformer layers.
        dropout: Dropout inside the transformer.
        activation: "relu" (original) or "gelu".
        norm_first: Pre-norm transformer layers (the original is post-norm).
        pos_embed: Learnable position embedding over the image order (off: order-invariant).
        max_images: Longest album the position embedding covers.
        num_features: Embedding width when the backbone module does not report one.
        pretrained: Load timm's pretrained backbone weights (downloads).
        checkpoint: Local backbone weights.
        backbone_kwargs: Extra timm keyword arguments for the backbone.
    """

    def __init__(
        self,
        backbone: str | type[nn.Module] | nn.Module = "tresnet_m",
        *,
        num_classes: int = 23,
        depth: int = 6,
        num_heads: int = 8,
        ffn_dim: int = 2048,
        dropout: float = 0.1,
        activation: str = "relu",
        norm_first: bool = False,
        pos_embed: bool = False,
        max_images: int = 32,
        num_features: int | None = None,
        pretrained: bool = False,
        checkpoint: str | os.PathLike | None = None,
        backbone_kwargs: dict[str, Any] | None = None,
    ):
        super().__init__()
        self.backbone = _make_encoder(backbone, num_features, pretrained, checkpoint, backbone_kwargs)
        dim = self.backbone.num_features
        self.aggregator = AlbumTransformer(
            dim,
            depth=depth,
            num_heads=num_heads,
            ffn_dim=ffn_dim,
            dropout=dropout,
            activation=activation,
            norm_first=norm_first,
            pos_embed=pos_embed,
            max_images=max_images,
        )
        self.head = nn.Linear(dim, num_classes)
        nn.init.normal_(self.head.weight, std=0.01)  # TResNet's head initialisation in the original
        nn.init.zeros_(self.head.bias)
        self.num_classes = num_classes

    def embed_images(self, images: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``[B, K, D]`` image embeddings of a padded album batch (zeros in padded slots)."""
        return embed_album_images(self.backbone, images, mask)

    def forward_embeddings(
        self, embeddings: torch.Tensor, mask: torch.Tensor | None = None, *, return_attention: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Event logits from precomputed image embeddings ``[B, K, D]`` (see :meth:`forward`)."""
        if return_attention:
            album, attention = self.aggregator(embeddings, mask, return_attention=True)
            return self.head(album), attention
        return self.head(self.aggregator(embeddings, mask))

    def forward(
        self, images: torch.Tensor, mask: torch.Tensor | None = None, *, return_attention: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Event logits of a batch of albums.

        Args:
            images: ``[B, K, C, H, W]`` albums in [0, 1], padded to a common ``K``.
            mask: ``[B, K]`` bool, ``True`` for real images (default: all real).
            return_attention: Also return the attention of every layer and head, ``[B, depth, heads, K+1, K+1]``
                (see :mod:`miil.album.importance` to turn it into image importance).

        Returns:
            ``[B, num_classes]`` logits, or ``(logits, attention)``.
        """
        mask = check_album_mask(mask, images.shape[0], images.shape[1], images.device) if images.ndim == 5 else mask
        return self.forward_embeddings(self.embed_images(images, mask), mask, return_attention=return_attention)


_SCORES = ("softmax", "sigmoid", "logits")


class MeanOfPredictions(nn.Module):
    """Baseline: classify every image alone and average the predictions over the album.

    The output is returned as log-odds of the averaged probability, so that it plugs into the same sigmoid losses
    (ASL) and metrics as PETA's logits; the ranking of events is exactly that of the averaged probabilities.

    Args:
        backbone: timm model name, class or module for the per-image embeddings.
        num_classes: Number of events.
        score: What is averaged: "softmax" probabilities (the original), "sigmoid" probabilities, or raw
            "logits" (returned as they are).
        eps: Probabilities are clamped to ``[eps, 1 - eps]`` before the log-odds.
        num_features: Embedding width when the backbone module does not report one.
        pretrained: Load timm's pretrained backbone weights (downloads).
        checkpoint: Local backbone weights.
        backbone_kwargs: Extra timm keyword arguments for the backbone.
    """

    def __init__(
        self,
        backbone: str | type[nn.Module] | nn.Module = "tresnet_m",
        *,
        num_classes: int = 23,
        score: str = "softmax",
        eps: float = 1e-6,
        num_features: int | None = None,
        pretrained: bool = False,
        checkpoint: str | os.PathLike | None = None,
        backbone_kwargs: dict[str, Any] | None = None,
    ):
        super().__init__()
        if score not in _SCORES:
            raise ValueError(f"score must be one of {_SCORES}, got {score!r}")
        self.backbone = _make_encoder(backbone, num_features, pretrained, checkpoint, backbone_kwargs)
        self.head = nn.Linear(self.backbone.num_features, num_classes)
        nn.init.normal_(self.head.weight, std=0.01)
        nn.init.zeros_(self.head.bias)
        self.num_classes = num_classes
        self.score = score
        self.eps = eps

    def image_logits(self, images: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``[B, K, num_classes]`` per-image logits (zeros in padded slots)."""
        return self.head(embed_album_images(self.backbone, images, mask))

    def forward(self, images: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Album scores ``[B, num_classes]`` from ``[B, K, C, H, W]`` albums and a ``[B, K]`` mask."""
        b, k = images.shape[:2]
        mask = check_album_mask(mask, b, k, images.device)
        logits = self.image_logits(images, mask).float()
        if self.score == "softmax":
            per_image = logits.softmax(dim=-1)
        elif self.score == "sigmoid":
            per_image = logits.sigmoid()
        else:
            per_image = logits
        weights = mask.to(per_image.dtype).unsqueeze(-1)
        mean = (per_image * weights).sum(dim=1) / weights.sum(dim=1)
        if self.score == "logits":
            return mean
        return torch.logit(mean.clamp(self.eps, 1 - self.eps))
