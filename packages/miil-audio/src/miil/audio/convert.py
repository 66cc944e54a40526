"""Strict conversion of checkpoints of the original EAT code (``SoundNetRaw``) into :class:`~miil.audio.EAT`.

Paper: Gazneli et al., 2022 (arXiv 2204.11479). The authors' trainer saved ``best_model.pt`` (the state dict) and
``chkpnt.pt`` (``{"model_dict": ..., "opt_dict": ..., "steps": ...}``), with a ``module.`` prefix when trained
with DataParallel. The original module names map onto ours one to one:

| original | ours |
|---|---|
| ``start.1`` (conv), ``start.2`` (BN) | ``stem.conv``, ``stem.bn`` |
| ``down.i`` / ``down2.i`` ``.down.1``, ``.down.2`` | ``down.i`` / ``dilated.i`` ``.conv.conv``, ``.conv.bn`` |
| ``... .down.4.filt`` (fixed blur, one copy per channel) | checked, then dropped (a non-persistent buffer) |
| ``... .block_t.1``, ``.block_t.2`` | ``... .temporal.conv``, ``.temporal.bn`` |
| ``... .block_f.0``, ``.block_f.1``, ``.shortcut`` | ``... .pointwise.conv``, ``.pointwise.bn``, ``.shortcut`` |
| ``project`` | ``project`` |
| ``tf.cls_token``, ``tf.pos_embed``, ``tf.transformer_enc`` | ``aggregator.cls_token``, ``.pos_embed``, ``.encoder`` |
| ``tf.fc`` | ``head`` |

The model size is read from the tensors (stem width, embedding width, feed-forward width, depth, down-sampling
factors from the blur lengths, classes, token count). The number of attention heads leaves no trace in the weights:
it defaults to the published configs (8 heads at width 128, 16 at 256) and can be given. Every key must be mapped
and every expected key produced (``miil.core.io.remap_state_dict``); loading is never ``strict=False``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

import torch

from miil.core.io import extract_state_dict, load_checkpoint, remap_state_dict

from .eat import EAT, EATConfig
from .layers.antialias import triangle_filter

__all__ = ["config_from_original", "convert_original_state_dict", "load_original_checkpoint"]

_GROUPS = (("down", "down"), ("down2", "dilated"))
_RULES = [
    (r"start\.1\.weight", r"stem.conv.weight"),
    (r"start\.2\.(.+)", r"stem.bn.\1"),
    *[
        rule
        for src, dst in _GROUPS
        for rule in (
            (rf"{src}\.(\d+)\.down\.1\.weight", rf"{dst}.\1.conv.conv.weight"),
            (rf"{src}\.(\d+)\.down\.2\.(.+)", rf"{dst}.\1.conv.bn.\2"),
            (rf"{src}\.(\d+)\.block_t\.1\.weight", rf"{dst}.\1.temporal.conv.weight"),
            (rf"{src}\.(\d+)\.block_t\.2\.(.+)", rf"{dst}.\1.temporal.bn.\2"),
            (rf"{src}\.(\d+)\.block_f\.0\.weight", rf"{dst}.\1.pointwise.conv.weight"),
            (rf"{src}\.(\d+)\.block_f\.1\.(.+)", rf"{dst}.\1.pointwise.bn.\2"),
            (rf"{src}\.(\d+)\.shortcut\.(weight|bias)", rf"{dst}.\1.shortcut.\2"),
        )
    ],
    (r"project\.(weight|bias)", r"project.\1"),
    (r"tf\.cls_token", r"aggregator.cls_token"),
    (r"tf\.pos_embed", r"aggregator.pos_embed"),
    (r"tf\.transformer_enc\.(.+)", r"aggregator.encoder.\1"),
    (r"tf\.fc\.(weight|bias)", r"head.\1"),
]
_BLUR = re.compile(r"^(down|down2)\.(\d+)\.down\.4\.filt$")
_DEFAULT_HEADS = {128: 8, 256: 16}


def _factors(sd: Mapping[str, torch.Tensor], group: str) -> tuple[int, ...]:
    found = []
    for key, value in sd.items():
        m = _BLUR.match(key)
        if m and m.group(1) == group:
            found.append((int(m.group(2)), (value.shape[-1] - 1) // 2))
    return tuple(f for _, f in sorted(found))


def config_from_original(
    state_dict: Mapping[str, torch.Tensor], *, num_heads: int | None = None
) -> tuple[EATConfig, int, int]:
    """Read the model size from an original state dict.

    Args:
        state_dict: The original's weights (no ``module.`` prefix).
        num_heads: Attention heads; default from the published configs by width.

    Returns:
        ``(config, num_classes, seq_len)``, ``seq_len`` being the token count times the total stride.
    """
    try:
        base = state_dict["start.1.weight"].shape[0]
        embed = state_dict["tf.cls_token"].shape[-1]
        tokens = state_dict["tf.pos_embed"].shape[1] - 1
        mlp = state_dict["tf.transformer_enc.layers.0.linear1.weight"].shape[0]
        classes = state_dict["tf.fc.weight"].shape[0]
    except KeyError as err:
        raise KeyError(f"not an original EAT (SoundNetRaw) state dict: missing {err}") from None
    depth = len({k.split(".")[3] for k in state_dict if k.startswith("tf.transformer_enc.layers.")})
    kernel = next(v.shape[-1] for k, v in state_dict.items() if k.endswith("block_t.1.weight"))
    heads = num_heads if num_heads is not None else _DEFAULT_HEADS.get(embed)
    if heads is None:
        raise ValueError(f"cannot tell the number of attention heads for width {embed}; pass num_heads")
    cfg = EATConfig(
        base_channels=base,
        embed_dim=embed,
        mlp_dim=mlp,
        depth=depth,
        num_heads=heads,
        ds_factors=_factors(state_dict, "down"),
        dilated_factors=_factors(state_dict, "down2"),
        kernel_size=kernel,
    )
    stride = 1
    for f in (*cfg.ds_factors, *cfg.dilated_factors):
        stride *= f
    return cfg, classes, tokens * stride


def convert_original_state_dict(state_dict: Mapping[str, torch.Tensor], *, model: EAT) -> dict[str, torch.Tensor]:
    """Map an original state dict onto ``model``'s keys, strictly (every key accounted for, shapes checked).

    Args:
        state_dict: The original's weights (a ``module.`` prefix is removed).
        model: The target model (its keys and shapes are the expected ones).
    """
    if state_dict and all(k.startswith("module.") for k in state_dict):
        state_dict = {k[len("module.") :]: v for k, v in state_dict.items()}
    for key, value in state_dict.items():
        if _BLUR.match(key):
            taps = triangle_filter(value.shape[-1]).to(value.dtype)
            if not torch.allclose(value.reshape(-1, value.shape[-1]), taps.expand(value.shape[0], -1), atol=1e-6):
                raise ValueError(f"{key} is not the fixed triangular blur filter; the checkpoint is not an EAT")
    return remap_state_dict(dict(state_dict), _RULES, expected=model, drop=(_BLUR.pattern,))


def load_original_checkpoint(
    path: str | os.PathLike, *, num_heads: int | None = None, dynamic_length: bool = True
) -> EAT:
    """Build an :class:`EAT` from an original ``best_model.pt`` / ``chkpnt.pt`` (loaded without unpickling code).

    Args:
        path: The checkpoint.
        num_heads: Attention heads (default: the published configs).
        dynamic_length: Accept other clip lengths.
    """
    obj = load_checkpoint(path)
    key = "model_dict" if isinstance(obj, Mapping) and "model_dict" in obj else None
    sd = extract_state_dict(obj, key=key)
    cfg, classes, seq_len = config_from_original(sd, num_heads=num_heads)
    model = EAT(num_classes=classes, seq_len=seq_len, config=cfg, dynamic_length=dynamic_length)
    model.load_state_dict(convert_original_state_dict(sd, model=model), strict=True)
    return model
