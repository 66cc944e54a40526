"""Strict converters from the original ML-Decoder checkpoints and from timm's ``MLDecoder`` into miil's layout.

Paper: "ML-Decoder: Scalable and Versatile Classification Head", Ridnik et al., 2021 (arXiv 2111.12933); reference
code https://github.com/Alibaba-MIIL/ML_Decoder (``src_files/ml_decoder/ml_decoder.py``) and timm's port
(``timm/layers/ml_decoder.py``).

Two source layouts are recognised, for a bare head or a whole model whose head sits under a prefix (``head.`` for
TResNet, ``fc.`` for ResNet, ``classifier.`` for EfficientNet in timm's port):

* original: everything inside the head is stored under ``decoder.`` (``decoder.embed_standart``,
  ``decoder.query_embed``, ``decoder.duplicate_pooling``, ``decoder.layers.0.*``); zero-shot heads add
  ``wordvec_proj`` and a ``[D, 1]`` ``decoder.duplicate_pooling``;
* timm: ``embed_standart``, ``query_embed``, ``duplicate_pooling`` at the top of the head, ``decoder.layers.0.*``.

Every source key must be mapped and every key of the target produced (``miil.core.io.remap_state_dict``), so a
conversion either gives identical logits or fails with the list of keys that do not line up. Backbone keys of a whole
model go through the timm family's own ``checkpoint_filter_fn`` when it has one (e.g. TResNet's InplaceABN ->
BatchNorm conversion) and are then checked against the timm backbone just as strictly; the one thing filled in is a
BatchNorm ``num_batches_tracked`` counter that InplaceABN before 1.1 does not keep (set to 0; it changes no output).
The key layouts the original code builds are committed in ``tests/original_keys/`` and tested.
"""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Mapping

import torch
import torch.nn as nn

from miil.core.io import extract_state_dict, fill_missing_bn_counters, load_checkpoint, remap_state_dict

from .factory import MLDecoderClassifier
from .ml_decoder import MLDecoder
from .zero_shot import ZeroShotMLDecoder

__all__ = ["convert_state_dict", "detect_layout", "head_config", "load_converted"]

LAYOUTS = ("auto", "original", "timm")

# Inside-the-head names, after the original's extra "decoder." level has been removed.
_LAYER_RULES = [
    (r"decoder\.layers\.0\.multihead_attn\.(in_proj_weight|in_proj_bias)", r"layer.attn.\1"),
    (r"decoder\.layers\.0\.multihead_attn\.out_proj\.(weight|bias)", r"layer.attn.out_proj.\1"),
    (r"decoder\.layers\.0\.linear([12])\.(weight|bias)", r"layer.fc\1.\2"),
    (r"decoder\.layers\.0\.(norm[123])\.(weight|bias)", r"layer.\1.\2"),
    (r"embed_standart\.(weight|bias)", r"proj.\1"),
]
_GROUP_RULES = [
    (r"query_embed\.weight", "query_embed"),
    (r"duplicate_pooling", "group_fc.weight"),
    (r"duplicate_pooling_bias", "group_fc.bias"),
]
_ZERO_SHOT_RULES = [
    (r"wordvec_proj\.(weight|bias)", r"word_proj.\1"),
    (r"duplicate_pooling", "weight"),
    (r"duplicate_pooling_bias", "bias"),
]
_ORIGINAL_LIFTED = ("embed_standart.", "query_embed.", "duplicate_pooling")


def detect_layout(state_dict: Mapping[str, torch.Tensor]) -> tuple[str, str]:
    """Find the ML-Decoder head in a state dict.

    Args:
        state_dict: A bare head's or a whole model's state dict.

    Returns:
        ``(layout, prefix)``: "original" or "timm", and the key prefix of the head ("" for a bare head).
    """
    found = set()
    for key in state_dict:
        m = re.fullmatch(r"(.*?)(decoder\.)?embed_standart\.weight", key)
        if m:
            found.add(("original" if m.group(2) else "timm", m.group(1)))
    if len(found) != 1:
        what = "no" if not found else f"{len(found)}"
        raise ValueError(
            f"found {what} ML-Decoder heads in the state dict (looked for '[prefix.][decoder.]embed_standart.weight'); "
            f"{len(state_dict)} keys, e.g. {list(state_dict)[:8]}"
        )
    return found.pop()


def _head_rules(head: nn.Module) -> list[tuple[str, str]]:
    if isinstance(head, ZeroShotMLDecoder):
        return _LAYER_RULES + _ZERO_SHOT_RULES
    if isinstance(head, MLDecoder):
        return _LAYER_RULES + _GROUP_RULES
    raise TypeError(f"target head must be an MLDecoder or ZeroShotMLDecoder, got {type(head).__name__}")


def _lift_original(key: str) -> str:
    # The original stores embed_standart, query_embed and duplicate_pooling* under "decoder."; timm does not.
    if key.startswith("decoder.") and key[len("decoder.") :].startswith(_ORIGINAL_LIFTED):
        return key[len("decoder.") :]
    return key


def _convert_head(source: Mapping[str, torch.Tensor], head: nn.Module, layout: str) -> dict[str, torch.Tensor]:
    if layout == "original":
        lifted = {_lift_original(k): v for k, v in source.items()}
        if len(lifted) != len(source):
            raise ValueError("the source holds the same head tensor at two levels (with and without 'decoder.')")
        source = lifted
    elif any(k.startswith("decoder.") and not k.startswith("decoder.layers.") for k in source):
        bad = [k for k in source if k.startswith("decoder.") and not k.startswith("decoder.layers.")]
        raise ValueError(f"keys {bad[:8]} look like the original layout, but layout='timm' was requested")
    out = remap_state_dict(source, _head_rules(head), expected=head)
    return {k: v.clone() for k, v in out.items()}


def _backbone_filter(backbone: nn.Module):
    module = importlib.import_module(type(backbone).__module__)
    fn = getattr(module, "checkpoint_filter_fn", None)
    return fn if callable(fn) and module.__name__.startswith("timm.models") else None


def convert_state_dict(
    state_dict: Mapping[str, torch.Tensor],
    model: nn.Module,
    *,
    layout: str = "auto",
    filter_backbone: bool = True,
) -> dict[str, torch.Tensor]:
    """Convert an original or timm ML-Decoder state dict into ``model``'s layout, strictly.

    Args:
        state_dict: The source weights: a bare head, or a whole model with the head under a prefix.
        model: The target: an :class:`MLDecoder` / :class:`ZeroShotMLDecoder` head, or an
            :class:`MLDecoderClassifier` (backbone + head).
        layout: "original", "timm" or "auto" (detected from the keys).
        filter_backbone: Pass backbone keys through the timm family's ``checkpoint_filter_fn`` (original TResNet
            checkpoints need it) before the strict check.

    Returns:
        A state dict that ``model.load_state_dict(..., strict=True)`` accepts.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    found, prefix = detect_layout(state_dict)
    if layout != "auto" and layout != found:
        raise ValueError(f"the state dict is in the {found} layout, but layout={layout!r} was requested")
    head_src = {k[len(prefix) :]: v for k, v in state_dict.items() if k.startswith(prefix)}
    rest = {k: v for k, v in state_dict.items() if not k.startswith(prefix)}
    if isinstance(model, MLDecoderClassifier):
        head = _convert_head(head_src, model.head, found)
        if filter_backbone and rest:
            fn = _backbone_filter(model.backbone)
            if fn is not None:
                rest = dict(fn(rest, model.backbone))
        # InplaceABN before 1.1 (v1.0.12, which the original TResNet code pins) keeps no num_batches_tracked.
        backbone = remap_state_dict(
            fill_missing_bn_counters(rest, model.backbone), [(r"(.*)", r"\1")], expected=model.backbone
        )
        return {**{f"backbone.{k}": v for k, v in backbone.items()}, **{f"head.{k}": v for k, v in head.items()}}
    if rest:
        raise ValueError(
            f"the target is a bare head, but the state dict also holds {len(rest)} non-head keys "
            f"(e.g. {list(rest)[:5]}); convert into an MLDecoderClassifier instead"
        )
    return _convert_head(head_src, model, found)


def load_converted(
    model: nn.Module,
    path: str | os.PathLike,
    *,
    key: str | None = None,
    layout: str = "auto",
    filter_backbone: bool = True,
) -> nn.Module:
    """Load an original or timm ML-Decoder checkpoint file into ``model`` (strict; never unpickles objects).

    Args:
        model: Target head or :class:`MLDecoderClassifier`.
        path: Checkpoint file (``.pth`` with tensors only, or ``.safetensors``).
        key: Entry of the checkpoint that holds the state dict (default: found automatically).
        layout: "original", "timm" or "auto".
        filter_backbone: See :func:`convert_state_dict`.
    """
    state = extract_state_dict(load_checkpoint(path), key=key)
    model.load_state_dict(convert_state_dict(state, model, layout=layout, filter_backbone=filter_backbone))
    return model


def head_config(state_dict: Mapping[str, torch.Tensor]) -> dict[str, int | bool]:
    """Head hyper-parameters read off an original or timm state dict (the number of heads cannot be read; it is 8
    in every published model).

    Returns:
        ``zero_shot``, ``num_classes`` (0 for zero-shot heads), ``num_groups``, ``embed_dim``, ``ffn_dim``,
        ``in_features`` and, for zero-shot heads, ``word_dim``.
    """
    layout, prefix = detect_layout(state_dict)
    inner = prefix + ("decoder." if layout == "original" else "")
    proj = state_dict[f"{inner}embed_standart.weight"]
    ffn = state_dict.get(f"{prefix}decoder.layers.0.linear1.weight")
    pooling = state_dict.get(f"{inner}duplicate_pooling")
    if ffn is None or pooling is None:
        raise ValueError("the state dict lacks decoder.layers.0.linear1.weight or duplicate_pooling")
    config: dict[str, int | bool] = {
        "embed_dim": int(proj.shape[0]),
        "in_features": int(proj.shape[1]),
        "ffn_dim": int(ffn.shape[0]),
    }
    if pooling.ndim == 2:
        wordvec = state_dict.get(f"{prefix}wordvec_proj.weight")
        config.update(zero_shot=True, num_classes=0, num_groups=0)
        config["word_dim"] = int(wordvec.shape[1]) if wordvec is not None else int(proj.shape[0])
    else:
        bias = state_dict[f"{inner}duplicate_pooling_bias"]
        config.update(zero_shot=False, num_classes=int(bias.shape[0]), num_groups=int(pooling.shape[0]))
    return config
