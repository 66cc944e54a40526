"""Backbones from timm, and their features as tokens.

Every head in miil (ML-Decoder, the STAM and album aggregators, ...) consumes a ``[B, N, C]`` token sequence,
so it works on any timm family: CNNs give ``NCHW`` maps (ResNet, TResNet, ConvNeXt, EfficientNet), Swin-like
models give ``NHWC`` maps, ViTs give ``[B, N, C]`` tokens already. The original MIIL code handled ResNet and
TResNet only.
"""

from __future__ import annotations

import os
from typing import Any

import timm
import torch
import torch.nn as nn

from .io import extract_state_dict, load_checkpoint, load_into

__all__ = [
    "TokenBackbone",
    "create_backbone",
    "feature_dim",
    "feature_format",
    "forward_tokens",
    "to_tokens",
]


def create_backbone(
    model: str | type[nn.Module] | nn.Module,
    *,
    pretrained: bool = False,
    checkpoint: str | os.PathLike | None = None,
    checkpoint_key: str | None = None,
    **kwargs: Any,
) -> nn.Module:
    """A timm model by name (or a model class / instance), optionally with weights.

    Args:
        model: timm model name (``"tresnet_m"``), a model class called with ``kwargs``, or an existing module.
        pretrained: Load timm's pretrained weights (these come from the Hugging Face hub; pass ``checkpoint``
            for a local file on machines without internet).
        checkpoint: Local weights file (safetensors, or a weights-only torch checkpoint), loaded strictly.
        checkpoint_key: Key of the state dict inside the checkpoint (default: guessed).
        kwargs: Passed to ``timm.create_model`` or the class (e.g. ``num_classes=0``, ``drop_path_rate``).
    """
    if isinstance(model, nn.Module):
        net = model
    elif isinstance(model, type):
        net = model(**kwargs)
    elif isinstance(model, str):
        if not timm.is_model(model.split(".")[0]):
            raise ValueError(f"unknown timm model {model!r}; see timm.list_models() for the names")
        net = timm.create_model(model, pretrained=pretrained, **kwargs)
    else:
        raise TypeError(f"model must be a timm name, a class or a module, got {type(model).__name__}")
    if checkpoint is not None:
        state = extract_state_dict(load_checkpoint(checkpoint), key=checkpoint_key)
        load_into(net, state)
    return net


def feature_dim(model: nn.Module) -> int:
    """Channel width of ``model.forward_features`` (timm's ``num_features``)."""
    for name in ("num_features", "embed_dim"):
        value = getattr(model, name, None)
        if isinstance(value, int) and value > 0:
            return value
    raise AttributeError(f"{type(model).__name__} has no num_features; pass the feature width explicitly")


def feature_format(model: nn.Module) -> str:
    """Layout of ``model.forward_features``: "NCHW", "NHWC" (Swin-like) or "NLC" (token sequences)."""
    fmt = getattr(model, "output_fmt", None)
    fmt = getattr(fmt, "value", fmt)  # timm's Format enum or a plain string
    if isinstance(fmt, str) and fmt.upper() in ("NCHW", "NHWC", "NLC"):
        return fmt.upper()
    return "NCHW"


def to_tokens(features: torch.Tensor, fmt: str = "NCHW") -> torch.Tensor:
    """Turn backbone features into ``[B, N, C]`` tokens.

    Args:
        features: ``[B, C, H, W]`` (NCHW), ``[B, H, W, C]`` (NHWC) or ``[B, N, C]`` tensors.
        fmt: Layout of 4-D inputs; ignored for 3-D inputs, which are already tokens.
    """
    if features.ndim == 3:
        return features
    if features.ndim != 4:
        raise ValueError(f"expected 3-D tokens or 4-D feature maps, got shape {tuple(features.shape)}")
    fmt = fmt.upper()
    if fmt == "NCHW":
        return features.flatten(2).transpose(1, 2)
    if fmt == "NHWC":
        return features.flatten(1, 2)
    raise ValueError(f"unknown feature layout {fmt!r}; expected NCHW or NHWC for 4-D features")


def forward_tokens(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``model.forward_features(x)`` as ``[B, N, C]`` tokens."""
    return to_tokens(model.forward_features(x), feature_format(model))


class TokenBackbone(nn.Module):
    """Wraps a timm model so that ``forward`` returns ``[B, N, C]`` tokens; ``num_features`` is C.

    Args:
        model: Anything :func:`create_backbone` accepts.
        kwargs: Passed to :func:`create_backbone`.
    """

    def __init__(self, model: str | type[nn.Module] | nn.Module, **kwargs: Any):
        super().__init__()
        self.model = create_backbone(model, **kwargs)
        self.num_features = feature_dim(self.model)
        self.fmt = feature_format(self.model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return to_tokens(self.model.forward_features(x), self.fmt)
