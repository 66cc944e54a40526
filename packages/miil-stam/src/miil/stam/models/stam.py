"""STAM: a spatial ViT on every frame, a temporal transformer over the frames' CLS features, a linear head.

Paper: "An Image is Worth 16x16 Words, What is a Video Worth?", Sharir, Noy and Zelnik-Manor, 2021
(arXiv 2103.13915), section 3. The spatial model is ViT-B/16 (any timm model works here: its pooled pre-logits
features are the frame embedding, the CLS token after the final LayerNorm for ViTs). The ``T`` frames of a clip go
through it as one batch of ``B * T`` images, read through miil-core's backbone adapter as pooled features (the width
is checked against what the model returns, ``head_hidden_size`` for MobileNetV3); the temporal transformer
(:class:`TemporalTransformer`) aggregates them and ``head`` classifies the clip. ``aggregation="mean"`` swaps the
temporal transformer for frame averaging, the baseline of the paper.

Presets ``stam_8/16/32/64`` are the paper's Kinetics-400 table rows: ``T`` frames sampled at ``T / 10`` fps, i.e.
always the first 10 s of a video. The original ViT used PyTorch's LayerNorm epsilon (1e-5), not timm's 1e-6;
``spatial_norm_eps`` sets it so converted original weights give the original outputs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn as nn

from miil.core.backbones import backbone_features, create_backbone, feature_width, prepare_backbone

from ..layers import FrameAverage, TemporalTransformer

__all__ = ["STAM", "STAM_PRESETS", "create_stam", "preset_frame_rate"]

_AGGREGATIONS = ("transformer", "mean")

# Table rows of the paper: frames per clip and the sampling rate that spans the first 10 s of a video.
STAM_PRESETS: dict[str, dict[str, Any]] = {
    "stam_8": {"num_frames": 8, "frame_rate": 0.8},
    "stam_16": {"num_frames": 16, "frame_rate": 1.6},
    "stam_32": {"num_frames": 32, "frame_rate": 3.2},
    "stam_64": {"num_frames": 64, "frame_rate": 6.4},
}


def preset_frame_rate(name: str) -> float:
    """Sampling rate (frames per second) of a preset, ``T / 10``: the original covers the first 10 s."""
    return float(STAM_PRESETS[_preset_key(name)]["frame_rate"])


def _preset_key(name: str) -> str:
    key = name.lower().replace("-", "_")
    if key not in STAM_PRESETS:
        raise ValueError(f"unknown STAM preset {name!r}; known: {', '.join(STAM_PRESETS)}")
    return key


class STAM(nn.Module):
    """Space-time attention model for video classification.

    Args:
        spatial: The per-frame model: a timm name, class or module (its classifier is removed).
        num_classes: Number of video classes (0 for no head: ``forward`` returns clip embeddings).
        num_frames: Clip length ``T`` the temporal position embedding is made for.
        aggregation: ``"transformer"`` (STAM) or ``"mean"`` (frame averaging, the baseline).
        temporal_depth: Temporal encoder layers.
        temporal_heads: Temporal attention heads.
        temporal_mlp_dim: Feed-forward width of the temporal layers.
        temporal_dropout: Dropout inside the temporal layers.
        temporal_activation: ``"relu"`` (original) or ``"gelu"``.
        norm_first: Pre-norm temporal layers instead of the original post-norm.
        temporal_pos_std: Initial standard deviation of the temporal position embedding (original 0.02).
        spatial_norm_eps: Epsilon set on every LayerNorm of the spatial model (the original ViT used 1e-5);
            ``None`` keeps timm's.
        spatial_pretrained: Load timm's pretrained weights for the spatial model (downloads from the hub).
        spatial_checkpoint: Local weights for the spatial model (e.g. ImageNet-21K ViT), loaded strictly.
        spatial_kwargs: Extra ``timm.create_model`` arguments (``img_size``, ``patch_size``, ``embed_dim`` ...).
    """

    def __init__(
        self,
        *,
        spatial: str | type[nn.Module] | nn.Module = "vit_base_patch16_224",
        num_classes: int = 400,
        num_frames: int = 16,
        aggregation: str = "transformer",
        temporal_depth: int = 6,
        temporal_heads: int = 8,
        temporal_mlp_dim: int = 2048,
        temporal_dropout: float = 0.1,
        temporal_activation: str = "relu",
        norm_first: bool = False,
        temporal_pos_std: float = 0.02,
        spatial_norm_eps: float | None = 1e-5,
        spatial_pretrained: bool = False,
        spatial_checkpoint: str | os.PathLike | None = None,
        spatial_kwargs: Mapping[str, Any] | None = None,
    ):
        super().__init__()
        if aggregation not in _AGGREGATIONS:
            raise ValueError(f"aggregation must be one of {_AGGREGATIONS}, got {aggregation!r}")
        kwargs = dict(spatial_kwargs or {})
        if isinstance(spatial, str | type):
            kwargs.setdefault("num_classes", 0)
        self.spatial = prepare_backbone(create_backbone(spatial, pretrained=spatial_pretrained, **kwargs), "pooled")
        if spatial_norm_eps is not None:
            for module in self.spatial.modules():
                if isinstance(module, nn.LayerNorm):
                    module.eps = float(spatial_norm_eps)
        if spatial_checkpoint is not None:
            # After removing the classifier, so that ImageNet weights with a head are refused loudly, not mixed in.
            self.spatial = create_backbone(self.spatial, checkpoint=spatial_checkpoint)
        self.embed_dim = feature_width(self.spatial, "pooled")
        self.num_frames = num_frames
        self.num_classes = num_classes
        self.aggregation = aggregation
        if aggregation == "transformer":
            self.temporal: nn.Module = TemporalTransformer(
                num_frames=num_frames,
                embed_dim=self.embed_dim,
                depth=temporal_depth,
                num_heads=temporal_heads,
                mlp_dim=temporal_mlp_dim,
                dropout=temporal_dropout,
                activation=temporal_activation,
                norm_first=norm_first,
                pos_embed_std=temporal_pos_std,
            )
        else:
            self.temporal = FrameAverage(embed_dim=self.embed_dim)
        self.head = nn.Linear(self.embed_dim, num_classes) if num_classes > 0 else nn.Identity()
        if isinstance(self.head, nn.Linear):
            nn.init.trunc_normal_(self.head.weight, std=0.02, a=-0.04, b=0.04)
            nn.init.zeros_(self.head.bias)

    @torch.jit.ignore
    def no_weight_decay(self) -> set[str]:
        names = set()
        spatial_nwd = getattr(self.spatial, "no_weight_decay", None)
        if callable(spatial_nwd):
            names |= {f"spatial.{n}" for n in spatial_nwd()}
        temporal_nwd = getattr(self.temporal, "no_weight_decay", None)
        if callable(temporal_nwd):
            names |= {f"temporal.{n}" for n in temporal_nwd()}
        return names

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute the spatial model's activations in the backward pass (timm models), to fit longer clips."""
        if hasattr(self.spatial, "set_grad_checkpointing"):
            self.spatial.set_grad_checkpointing(enable)

    def forward_frames(self, video: torch.Tensor) -> torch.Tensor:
        """Per-frame embeddings.

        Args:
            video: ``[B, T, C, H, W]`` clips.

        Returns:
            ``[B, T, D]``.
        """
        if video.ndim != 5:
            raise ValueError(f"expected a [B, T, C, H, W] video batch, got shape {tuple(video.shape)}")
        b, t = video.shape[:2]
        frames = video.flatten(0, 1)
        feats = backbone_features(self.spatial, frames, "pooled", width=self.embed_dim)
        return feats.reshape(b, t, -1)

    def forward_features(self, video: torch.Tensor) -> torch.Tensor:
        """Clip embeddings ``[B, D]`` (temporal CLS, or the frame mean for the baseline)."""
        return self.temporal(self.forward_frames(video))

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        """Class logits ``[B, num_classes]`` of ``[B, T, C, H, W]`` clips with values as the weights expect."""
        return self.head(self.forward_features(video))


def create_stam(model: str | type[nn.Module] = "stam_16", **kwargs: Any) -> nn.Module:
    """A STAM model by preset name (``stam_8/16/32/64``, ``"STAM-16"`` also works) or class.

    Args:
        model: Preset name (sets ``num_frames``) or a model class called with ``kwargs``.
        kwargs: :class:`STAM` arguments; they override the preset's.
    """
    if isinstance(model, type):
        return model(**kwargs)
    if not isinstance(model, str):
        raise TypeError(f"model must be a preset name or a class, got {type(model).__name__}")
    preset = {k: v for k, v in STAM_PRESETS[_preset_key(model)].items() if k != "frame_rate"}
    return STAM(**{**preset, **kwargs})
