"""ML-Decoder on any timm backbone: ``add_ml_decoder_head`` and ``create_model``.

Paper: "ML-Decoder: Scalable and Versatile Classification Head", Ridnik et al., 2021 (arXiv 2111.12933), abstract
("a drop-in replacement for various classification heads").

The reference ``add_ml_decoder_head`` edits ResNet (``global_pool`` + ``fc``) and TResNet (``head``) models in place
and exits the process for anything else. Here the backbone is read through miil-core's backbone adapter in its
``"tokens"`` form: timm's own API removes the classifier and the pooling (``reset_classifier(0, global_pool="")``,
which keeps the head layers that work per position, such as ConvNeXt's norm or MobileNetV3's ``conv_head``), the
unpooled pre-logits features become ``[B, L, C]`` tokens (NCHW CNNs, NHWC Swin-like models, ViT token sequences), and
the head consumes the tokens; ``C`` is timm's ``head_hidden_size`` and is checked against every output. ResNet,
TResNet, ConvNeXt, EfficientNet, RegNet, MobileNetV3 / V4, GhostNet, ViT, Swin and the other timm families work the
same way.
"""

from __future__ import annotations

import os
from typing import Any

import torch
import torch.nn as nn

from miil.core.backbones import backbone_features, create_backbone, feature_format, feature_width, prepare_backbone

from .ml_decoder import MLDecoder
from .zero_shot import ZeroShotMLDecoder

__all__ = ["HEADS", "MLDecoderClassifier", "add_ml_decoder_head", "create_model"]

HEADS = ("ml_decoder", "zero_shot", "linear")


def _unpooled(model: nn.Module) -> nn.Module:
    """Remove the classifier and the pooling, so that the model gives its unpooled pre-logits features."""
    if not hasattr(model, "reset_classifier"):
        raise TypeError(
            f"{type(model).__name__} is not a timm model (it has no reset_classifier); build the backbone with "
            "timm.create_model or wrap its features yourself and use MLDecoder directly"
        )
    # Also sets the backbone's pre-classifier dropout to zero: ML-Decoder has its own.
    return prepare_backbone(model, "tokens")


class MLDecoderClassifier(nn.Module):
    """A timm backbone without pooling, followed by an ML-Decoder (or zero-shot ML-Decoder) head on its tokens.

    Args:
        backbone: A timm model prepared for tokens (``num_classes=0, global_pool=""``, see ``add_ml_decoder_head``).
        head: The head; called on ``[B, L, C]`` tokens (its ``in_features`` is checked against every output).
        feature_format: Layout of the backbone's 4-D output, "NCHW" or "NHWC".
        num_prefix_tokens: Leading tokens (ViT class / register tokens) removed before the head.
    """

    def __init__(
        self, backbone: nn.Module, head: nn.Module, *, feature_format: str = "NCHW", num_prefix_tokens: int = 0
    ):
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.feature_format = feature_format
        self.num_prefix_tokens = int(num_prefix_tokens)

    @property
    def num_classes(self) -> int:
        return int(self.head.num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Backbone features as ``[B, L, C]`` tokens (prefix tokens removed)."""
        return backbone_features(
            self.backbone,
            x,
            "tokens",
            width=getattr(self.head, "in_features", None),
            fmt=self.feature_format,
            num_prefix_tokens=self.num_prefix_tokens,
        )

    def forward(self, x: torch.Tensor, **head_kwargs: Any) -> torch.Tensor:
        """Logits ``[B, N]``; keyword arguments go to the head (e.g. ``word_vectors`` of a zero-shot head)."""
        return self.head(self.forward_features(x), **head_kwargs)

    @torch.jit.ignore
    def no_weight_decay(self) -> set[str]:
        """The backbone's own no-decay parameters (ViT position embeddings, ...), for timm's optimizer factory."""
        inner = getattr(self.backbone, "no_weight_decay", None)
        names = inner() if callable(inner) else ()
        return {f"backbone.{n}" for n in names}


def add_ml_decoder_head(
    model: nn.Module,
    num_classes: int | None = None,
    *,
    zero_shot: bool = False,
    drop_prefix_tokens: bool = True,
    **head_kwargs: Any,
) -> MLDecoderClassifier:
    """Replace a timm model's pooling and classifier with an ML-Decoder head.

    Args:
        model: A timm model (any family). Its classifier is removed in place.
        num_classes: Number of classes; default: the model's ``num_classes``. Ignored for zero-shot heads, whose
            classes are their word vectors.
        zero_shot: Build a :class:`ZeroShotMLDecoder` (word-vector queries) instead of an :class:`MLDecoder`.
        drop_prefix_tokens: Remove ViT class / register tokens before the head, which then attends to patch
            tokens only.
        head_kwargs: Passed to the head (``num_groups``, ``embed_dim``, ``num_heads``, ``ffn_dim``, ``dropout``,
            ``learnable_queries``; ``word_dim``, ``word_vectors`` for zero-shot heads).

    Returns:
        The backbone and the head as one :class:`MLDecoderClassifier`.
    """
    if num_classes is None and not zero_shot:
        num_classes = int(getattr(model, "num_classes", 0) or 0)
        if num_classes < 1:
            raise ValueError(f"{type(model).__name__} has no classes; pass num_classes")
    backbone = _unpooled(model)
    in_features = feature_width(backbone, "tokens")
    fmt = feature_format(backbone)
    prefix = int(getattr(backbone, "num_prefix_tokens", 0) or 0) if drop_prefix_tokens else 0
    if zero_shot:
        head: nn.Module = ZeroShotMLDecoder(in_features=in_features, input_format=fmt, **head_kwargs)
    else:
        head = MLDecoder(num_classes, in_features=in_features, input_format=fmt, **head_kwargs)
    return MLDecoderClassifier(backbone, head, feature_format=fmt, num_prefix_tokens=prefix)


def create_model(
    name: str | type[nn.Module] | nn.Module,
    num_classes: int | None = None,
    *,
    head: str = "ml_decoder",
    pretrained: bool = False,
    checkpoint: str | os.PathLike | None = None,
    model_kwargs: dict[str, Any] | None = None,
    drop_prefix_tokens: bool = True,
    **head_kwargs: Any,
) -> nn.Module:
    """A timm model with an ML-Decoder head (or the usual GAP + linear head, as a baseline).

    Args:
        name: timm model name (or class / module), e.g. "tresnet_l", "resnet50", "convnext_tiny",
            "vit_base_patch16_224", "swin_tiny_patch4_window7_224".
        num_classes: Number of classes (not used by zero-shot heads).
        head: "ml_decoder", "zero_shot" (word-vector queries) or "linear" (timm's own global pooling + linear head).
        pretrained: Load timm's pretrained backbone weights (downloads from the Hugging Face hub).
        checkpoint: Local backbone weights (timm layout, with its classifier) loaded strictly before the head is
            replaced.
        model_kwargs: Extra keyword arguments for ``timm.create_model`` (e.g. ``drop_path_rate``, or tiny sizes).
        drop_prefix_tokens: Remove ViT class / register tokens before an ML-Decoder head.
        head_kwargs: Passed to the head (see :func:`add_ml_decoder_head`).
    """
    if head not in HEADS:
        raise ValueError(f"head must be one of {HEADS}, got {head!r}")
    kwargs = dict(model_kwargs or {})
    if head == "linear":
        if head_kwargs:
            raise TypeError(f"the linear head takes no head options, got {sorted(head_kwargs)}")
        if num_classes is None:
            raise ValueError("the linear head needs num_classes")
        return create_backbone(name, pretrained=pretrained, checkpoint=checkpoint, num_classes=num_classes, **kwargs)
    if head == "ml_decoder" and (num_classes is None or num_classes < 1):
        raise ValueError(f"an ML-Decoder head needs num_classes >= 1, got {num_classes}")
    backbone = create_backbone(name, pretrained=pretrained, checkpoint=checkpoint, **kwargs)
    return add_ml_decoder_head(
        backbone,
        None if head == "zero_shot" else num_classes,
        zero_shot=head == "zero_shot",
        drop_prefix_tokens=drop_prefix_tokens,
        **head_kwargs,
    )
