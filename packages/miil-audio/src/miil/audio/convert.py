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
| ``tf.cls_token``, ``tf.pos_embed`` | ``aggregator.cls_token``, ``aggregator.pos_embed`` |
| ``tf.transformer_enc.layers``, ``tf.transformer_enc.norm`` | ``aggregator.layers``, ``aggregator.norm`` |
| ``tf.fc`` | ``head`` |

The model size is read from the tensors (stem width, embedding width, feed-forward width, depth, down-sampling
factors from the blur lengths, classes, token count). The number of attention heads leaves no trace in the weights;
:func:`load_original_checkpoint` takes it, in this order, from its ``num_heads`` argument, from the ``args.yml`` the
original trainer writes beside its checkpoints (``n_head``), or from the published configs (8 heads at width 128, 16
at 256); otherwise it stops with a :class:`~miil.core.errors.UserError` that says what to pass. Every key must be
mapped and every expected key produced (``miil.core.io.remap_state_dict``); loading is never ``strict=False``. The
aggregator's key rules are miil-core's (:func:`miil.core.layers.original_aggregator_rules`), shared with STAM and
PETA.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

import torch

from miil.core.errors import UserError
from miil.core.io import extract_state_dict, load_checkpoint, remap_state_dict
from miil.core.layers import original_aggregator_rules

from .eat import EAT, EATConfig
from .layers.antialias import triangle_filter

__all__ = ["config_from_original", "convert_original_state_dict", "load_original_checkpoint", "original_num_heads"]

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
    *original_aggregator_rules("tf.", "aggregator."),
    (r"tf\.fc\.(weight|bias)", r"head.\1"),
]
_BLUR = re.compile(r"^(down|down2)\.(\d+)\.down\.4\.filt$")
_DEFAULT_HEADS = {128: 8, 256: 16}  # the published EAT-S and EAT-M
_ARGS_FILE = "args.yml"  # the original trainer's yaml dump of its argparse options, beside chkpnt.pt / best_model.pt
_ARGS_LINE = re.compile(r"^(n_head|emb_dim):[ \t]*(\d+)[ \t]*$", re.MULTILINE)


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
        raise UserError(
            f"the attention head count of this EAT checkpoint (width {embed}, not a published EAT size) cannot be "
            "read from its weights: pass the --n_head the original run was trained with, as num_heads=N "
            "(miil audio convert --num-heads N); the original trainer's default was 8"
        )
    if embed % heads:
        raise UserError(f"num_heads={heads} does not divide the checkpoint's width {embed}; pass the run's --n_head")
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


def original_num_heads(path: str | os.PathLike, *, embed_dim: int | None = None) -> int | None:
    """The attention head count of an original EAT run, read from the ``args.yml`` its trainer wrote beside the
    checkpoint (``n_head: N``); ``None`` when there is no such file or it names no head count.

    The file is a yaml dump of an ``argparse.Namespace`` (Python object tags): only its plain ``n_head`` and
    ``emb_dim`` lines are read, nothing is constructed from it.

    Args:
        path: The checkpoint (``best_model.pt`` / ``chkpnt.pt``) or the run folder.
        embed_dim: The checkpoint's width; an ``args.yml`` whose ``emb_dim`` differs belongs to another run and is
            refused.
    """
    folder = Path(path) if Path(path).is_dir() else Path(path).parent
    args_file = folder / _ARGS_FILE
    if not args_file.is_file():
        return None
    try:
        text = args_file.read_text(encoding="utf-8", errors="replace")
    except OSError as err:
        raise UserError(f"{args_file}: cannot read the original run's options ({err}); pass num_heads") from err
    values = {k: int(v) for k, v in _ARGS_LINE.findall(text)}
    if embed_dim is not None and values.get("emb_dim", embed_dim) != embed_dim:
        raise UserError(
            f"{args_file} is from another run (emb_dim {values['emb_dim']}, the checkpoint's width is {embed_dim}); "
            "pass num_heads (miil audio convert --num-heads N)"
        )
    return values.get("n_head")


def load_original_checkpoint(
    path: str | os.PathLike, *, num_heads: int | None = None, dynamic_length: bool = True
) -> EAT:
    """Build an :class:`EAT` from an original ``best_model.pt`` / ``chkpnt.pt`` (loaded without unpickling code).

    Args:
        path: The checkpoint.
        num_heads: Attention heads (default: the ``n_head`` of the run's ``args.yml`` beside the checkpoint, else the
            published configs; a :class:`~miil.core.errors.UserError` says what to pass when neither tells).
        dynamic_length: Accept other clip lengths.
    """
    obj = load_checkpoint(path)
    key = "model_dict" if isinstance(obj, Mapping) and "model_dict" in obj else None
    sd = extract_state_dict(obj, key=key)
    if num_heads is None:
        cls = sd.get("tf.cls_token")
        num_heads = original_num_heads(path, embed_dim=None if cls is None else int(cls.shape[-1]))
    try:
        cfg, classes, seq_len = config_from_original(sd, num_heads=num_heads)
    except UserError as err:
        raise UserError(f"{path}: {err}") from None
    model = EAT(num_classes=classes, seq_len=seq_len, config=cfg, dynamic_length=dynamic_length)
    model.load_state_dict(convert_original_state_dict(sd, model=model), strict=True)
    return model
