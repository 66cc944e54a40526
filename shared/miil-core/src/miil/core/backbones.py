"""Backbones from timm, and their features in the three forms the heads of miil consume.

Every package reads a timm backbone through this module, in one of three forms (``FEATURE_FORMS``):

* ``"pooled"``: ``[B, C]``, the features timm's classifier sees, ``forward_head(forward_features(x),
  pre_logits=True)`` (album image embeddings, STAM frame embeddings, CSL and diversity features);
* ``"map"``: the same features without the global pooling, in the model's own layout (``NCHW`` for CNNs, ``NHWC``
  for Swin-like models, ``[B, N, C]`` for ViTs); the model is prepared with ``reset_classifier(0, global_pool="")``,
  so per-position head layers (ConvNeXt's head norm, MobileNetV3's ``conv_head``) still run;
* ``"tokens"``: the map as a ``[B, N, C]`` sequence (ML-Decoder).

The width ``C`` is timm's ``head_hidden_size`` where the model has one, else ``num_features``. The two differ for
models whose head has a hidden layer: MobileNetV3 / V4 and GhostNet run a 1x1 ``conv_head`` after pooling
(``mobilenetv3_small_050``: 288 body channels, 1024 pre-logits features), so ``num_features`` alone is wrong for
them. :func:`backbone_features` checks every output against the width the caller built its layers for and names the
model when they disagree. The original MIIL code handled ResNet and TResNet only.

:func:`forward_tokens` and :class:`TokenBackbone` give the body's ``forward_features`` as tokens, without any head
layer (width ``num_features``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import timm
import torch
import torch.nn as nn

from .errors import UserError
from .io import extract_state_dict, load_checkpoint, load_into

__all__ = [
    "FEATURE_FORMS",
    "TokenBackbone",
    "backbone_features",
    "create_backbone",
    "feature_dim",
    "feature_format",
    "feature_width",
    "forward_tokens",
    "prepare_backbone",
    "to_tokens",
]

FEATURE_FORMS = ("pooled", "map", "tokens")


def _download_errors() -> tuple[type[BaseException], ...]:
    # Connection, timeout, URL and missing-file errors all derive from OSError; the hub's own errors mostly do too.
    errors: list[type[BaseException]] = [OSError]
    try:
        from huggingface_hub import errors as hub_errors
    except ImportError:  # timm works without the hub for weights hosted elsewhere
        return tuple(errors)
    for name in ("EntryNotFoundError", "HfHubHTTPError", "LocalEntryNotFoundError"):
        cls = getattr(hub_errors, name, None)
        if isinstance(cls, type) and issubclass(cls, BaseException):
            errors.append(cls)
    return tuple(errors)


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

    Raises:
        UserError: ``pretrained`` weights could not be downloaded (no internet, no cached copy).
    """
    if isinstance(model, nn.Module):
        net = model
    elif isinstance(model, type):
        net = model(**kwargs)
    elif isinstance(model, str):
        if not timm.is_model(model.split(".")[0]):
            raise ValueError(f"unknown timm model {model!r}; see timm.list_models() for the names")
        if pretrained:
            try:
                net = timm.create_model(model, pretrained=True, **kwargs)
            except _download_errors() as err:
                raise UserError(
                    f"the pretrained weights for {model} could not be downloaded ({type(err).__name__}: {err}); "
                    "without internet pass --pretrained false (pretrained=False) to start from random weights, or "
                    "--init-checkpoint FILE to load local weights"
                ) from err
        else:
            net = timm.create_model(model, pretrained=False, **kwargs)
    else:
        raise TypeError(f"model must be a timm name, a class or a module, got {type(model).__name__}")
    if checkpoint is not None:
        state = extract_state_dict(load_checkpoint(checkpoint), key=checkpoint_key)
        load_into(net, state)
    return net


def _model_name(model: nn.Module) -> str:
    cfg = getattr(model, "pretrained_cfg", None)
    arch = cfg.get("architecture") if isinstance(cfg, Mapping) else None
    return f"{arch} ({type(model).__name__})" if arch else type(model).__name__


def _check_form(form: str) -> None:
    if form not in FEATURE_FORMS:
        raise ValueError(f"feature form must be one of {FEATURE_FORMS}, got {form!r}")


def _has_timm_head(model: nn.Module) -> bool:
    return callable(getattr(model, "forward_head", None)) and callable(getattr(model, "forward_features", None))


def feature_dim(model: nn.Module) -> int:
    """Channel width of ``model.forward_features`` (timm's ``num_features``), the body before any head layer."""
    for name in ("num_features", "embed_dim"):
        value = getattr(model, name, None)
        if isinstance(value, int) and value > 0:
            return value
    raise AttributeError(f"{type(model).__name__} has no num_features; pass the feature width explicitly")


def feature_width(model: nn.Module, form: str = "pooled") -> int:
    """Width ``C`` of the ``form`` features of ``model`` as its attributes state it.

    timm models: ``head_hidden_size`` (the pre-logits width), else ``num_features``; other modules:
    ``num_features`` / ``embed_dim``. :func:`backbone_features` checks it against the real output.

    Args:
        model: The backbone.
        form: One of :data:`FEATURE_FORMS` (the width is the same for the three; the argument is checked).
    """
    _check_form(form)
    if _has_timm_head(model):
        hidden = getattr(model, "head_hidden_size", None)
        if isinstance(hidden, int) and hidden > 0:
            return hidden
    return feature_dim(model)


def prepare_backbone(model: nn.Module, form: str = "pooled") -> nn.Module:
    """Remove the classifier of a timm model, in place, so that it gives ``form`` features; returns the model.

    ``"pooled"`` keeps the global pooling (``reset_classifier(0)``); ``"map"`` and ``"tokens"`` drop it
    (``reset_classifier(0, global_pool="")``) and set a pre-classifier dropout to zero, which would otherwise act on
    every position of the map. A module without ``reset_classifier`` is returned unchanged: it is expected to give
    the form itself.

    Args:
        model: The backbone.
        form: One of :data:`FEATURE_FORMS`.
    """
    _check_form(form)
    reset = getattr(model, "reset_classifier", None)
    if not callable(reset):
        return model
    if form == "pooled":
        reset(0)
        return model
    try:
        reset(0, global_pool="")
    except (TypeError, AssertionError, ValueError) as err:
        raise ValueError(
            f"{_model_name(model)} cannot drop its global pooling (reset_classifier(0, global_pool='') failed: "
            f"{err}); use its pooled features, or its forward_features output"
        ) from err
    if isinstance(getattr(model, "drop_rate", None), float):
        model.drop_rate = 0.0
    if isinstance(getattr(model, "head_drop", None), nn.Dropout):
        model.head_drop = nn.Identity()
    return model


def _width_error(model: nn.Module, form: str, out: torch.Tensor, got: int, expected: int) -> ValueError:
    hidden, body = getattr(model, "head_hidden_size", None), getattr(model, "num_features", None)
    return ValueError(
        f"backbone {_model_name(model)} returned {form} features of shape {tuple(out.shape)} (width {got}), but "
        f"{expected} was expected (head_hidden_size={hidden}, num_features={body}); give the width explicitly "
        f"(e.g. num_features={got}) where the model is built"
    )


def backbone_features(
    model: nn.Module,
    x: torch.Tensor,
    form: str = "pooled",
    *,
    width: int | None = None,
    fmt: str | None = None,
    num_prefix_tokens: int = 0,
) -> torch.Tensor:
    """The ``form`` features of ``model`` for input ``x``, checked against the expected width.

    timm models (``forward_head``): ``forward_head(forward_features(x), pre_logits=True)``, pooled or not as
    :func:`prepare_backbone` left the model. Other modules: ``model(x)``; for ``"pooled"`` their maps / tokens are
    averaged over the positions.

    Args:
        model: The backbone (prepared for ``form`` with :func:`prepare_backbone`).
        x: Input batch.
        form: One of :data:`FEATURE_FORMS`.
        width: Expected width ``C`` (default: :func:`feature_width`).
        fmt: Layout of 4-D outputs, ``"NCHW"`` or ``"NHWC"`` (default: :func:`feature_format`).
        num_prefix_tokens: Leading tokens (ViT class / register tokens) to remove, ``"tokens"`` form only.

    Returns:
        ``[B, C]`` (pooled), the map in its layout (map) or ``[B, N, C]`` (tokens).
    """
    _check_form(form)
    out = model.forward_head(model.forward_features(x), pre_logits=True) if _has_timm_head(model) else model(x)
    layout = (fmt or feature_format(model)).upper()
    if form == "pooled":
        if out.ndim == 4:
            out = out.mean(dim=(1, 2) if layout == "NHWC" else (2, 3))
        elif out.ndim == 3:
            out = out.mean(dim=1)
        if out.ndim != 2:
            raise ValueError(f"backbone {_model_name(model)} returned {tuple(out.shape)}; expected [B, C] features")
        got = out.shape[1]
    else:
        if out.ndim not in (3, 4):
            raise ValueError(
                f"backbone {_model_name(model)} returned {tuple(out.shape)}, not a map; prepare it with "
                f"prepare_backbone(model, {form!r}) so that it keeps its positions"
            )
        if form == "tokens":
            out = to_tokens(out, layout)
            if num_prefix_tokens:
                out = out[:, num_prefix_tokens:]
        got = out.shape[1] if out.ndim == 4 and layout == "NCHW" else out.shape[-1]
    expected = feature_width(model, form) if width is None else int(width)
    if got != expected:
        raise _width_error(model, form, out, got, expected)
    return out


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
    """``model.forward_features(x)`` (the body, no head layers) as ``[B, N, C]`` tokens."""
    return to_tokens(model.forward_features(x), feature_format(model))


class TokenBackbone(nn.Module):
    """Wraps a timm model so that ``forward`` returns its body's ``[B, N, C]`` tokens; ``num_features`` is C.

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
