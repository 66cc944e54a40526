"""Per-image embeddings from any timm backbone (or any module), for the album models.

Paper: PETA (arXiv 2109.12499), section 3: every image of the album goes through a CNN (TResNet-M, ImageNet-21K
pretrained in the paper) and its globally pooled features are the image embedding. Here any timm model works: its
classifier is removed and miil-core's backbone adapter gives its pooled pre-logits features (``forward_head(...,
pre_logits=True)``), whose width is timm's ``head_hidden_size`` (MobileNetV3 / V4 and GhostNet: the ``conv_head``
width, not ``num_features``) and is checked against every output. Inputs are images in [0, 1]; the model's own
mean/std from its timm config are applied inside (TResNet's are 0/1, as in the original).
"""

from __future__ import annotations

import os
from typing import Any

import torch
import torch.nn as nn

from miil.core.backbones import backbone_features, create_backbone, feature_width, prepare_backbone

__all__ = ["ImageEncoder"]


class ImageEncoder(nn.Module):
    """One embedding ``[N, D]`` per image ``[N, C, H, W]``.

    Args:
        backbone: timm model name (``"tresnet_m"``), a model class, or a module. A module without a timm
            ``forward_head`` must return ``[N, D]`` embeddings (or ``[N, D, H, W]`` maps, which are averaged).
        num_features: Embedding width ``D``; read from the model (timm's ``head_hidden_size``, else
            ``num_features``) when not given.
        pretrained: Load timm's pretrained weights (downloads from the Hugging Face hub).
        checkpoint: Local weights for the backbone (loaded strictly, before the classifier is removed).
        normalize: Apply the timm model's mean/std to the [0, 1] inputs.
        kwargs: timm / class keyword arguments (e.g. ``drop_path_rate``).
    """

    def __init__(
        self,
        backbone: str | type[nn.Module] | nn.Module = "tresnet_m",
        *,
        num_features: int | None = None,
        pretrained: bool = False,
        checkpoint: str | os.PathLike | None = None,
        normalize: bool = True,
        **kwargs: Any,
    ):
        super().__init__()
        self.model = create_backbone(backbone, pretrained=pretrained, checkpoint=checkpoint, **kwargs)
        prepare_backbone(self.model, "pooled")
        self.num_features = int(num_features) if num_features is not None else feature_width(self.model, "pooled")
        cfg = getattr(self.model, "pretrained_cfg", None) or {}
        mean, std = cfg.get("mean"), cfg.get("std")
        self.normalize = bool(normalize and mean is not None and std is not None)
        if self.normalize and all(m == 0 for m in mean) and all(s == 1 for s in std):
            self.normalize = False  # TResNet: the original feeds [0, 1] images unchanged
        if self.normalize:
            self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
            self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Embed ``[N, C, H, W]`` images in [0, 1] into ``[N, D]``."""
        if images.ndim != 4:
            raise ValueError(f"expected images [N, C, H, W], got {tuple(images.shape)}")
        if self.normalize:
            images = (images - self.mean.to(images.dtype)) / self.std.to(images.dtype)
        return backbone_features(self.model, images, "pooled", width=self.num_features)
