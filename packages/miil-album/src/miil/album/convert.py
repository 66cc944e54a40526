"""Strict conversion of the original PETA checkpoints (``peta_32.pth``) into :class:`miil.album.PETA` weights.

Paper: PETA (arXiv 2109.12499); original code github.com/Alibaba-MIIL/PETA. The released file holds
``{"model": state_dict, "idx_to_class": {index: event}, ...}`` for the original ``fTResNet``: the TResNet-M body
(``body.*``, InPlaceABN layers), ``head.fc``, and ``aggregate.*`` (``cls_token``, ``pos_embed`` and the
``transformer_enc`` layers of ``nn.TransformerEncoderLayer``). The mapping:

* ``body.*`` -> ``backbone.model.body.*`` through timm's own TResNet filter
  (``timm.models.tresnet.checkpoint_filter_fn``: ``conv1.0`` -> ``conv1.conv``, ``.1`` -> ``.bn``, and InPlaceABN
  weights ``w`` -> ``|w| + 1e-5``, the scale InPlaceABN applies);
* ``head.fc.*`` -> ``head.*``; ``aggregate.transformer_enc.layers.i.*`` -> ``aggregator.layers.i.*``;
  ``aggregate.transformer_enc.norm.*`` -> ``aggregator.norm.*``; ``aggregate.cls_token`` / ``pos_embed`` ->
  ``aggregator.*``. The original always stores ``pos_embed``, also when it was trained with ``transformers_pos=0``:
  for a model without a position embedding it is dropped on purpose.
* InPlaceABN keeps no ``num_batches_tracked`` counter; those BatchNorm buffers are taken from the model (they do not
  change outputs). Every other key must map one to one, with matching shapes (:func:`miil.core.io.remap_state_dict`).

:func:`convert_peta_aggregator_state_dict` converts the original album aggregator (``TAggregate``) alone into an
:class:`~miil.album.AlbumTransformer`, e.g. to put the released aggregator on another backbone of the same width.
The aggregator's key rules are miil-core's (:func:`miil.core.layers.original_aggregator_rules`), shared with STAM.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import torch
import torch.nn as nn
from timm.models.tresnet import checkpoint_filter_fn as tresnet_filter

from miil.core.io import extract_state_dict, fill_missing_bn_counters, load_checkpoint, remap_state_dict
from miil.core.layers import convert_original_aggregator, original_aggregator_rules

from .aggregator import AlbumTransformer
from .models import PETA

__all__ = [
    "convert_peta_aggregator_state_dict",
    "convert_peta_state_dict",
    "load_peta_aggregator_checkpoint",
    "load_peta_checkpoint",
    "peta_classes",
]

_RULES = [(r"head\.fc\.(weight|bias)", r"head.\1"), *original_aggregator_rules("aggregate.", "aggregator.")]


def _check_target(model: nn.Module) -> None:
    if not isinstance(model, PETA):
        raise TypeError(f"the original PETA checkpoints convert into miil.album.PETA, got {type(model).__name__}")
    backbone = type(model.backbone.model).__name__
    if backbone != "TResNet":
        raise TypeError(
            f"the original PETA checkpoints hold a TResNet backbone; build PETA with a timm tresnet (got {backbone})"
        )


def convert_peta_state_dict(state_dict: Mapping[str, torch.Tensor], model: PETA) -> dict[str, torch.Tensor]:
    """Convert an original PETA state dict for ``model`` (a :class:`PETA` with a timm TResNet backbone).

    Args:
        state_dict: The original ``state["model"]`` (a ``module.`` prefix is removed by the loader).
        model: The target model; its keys and shapes are the expected ones.

    Returns:
        A state dict that ``model.load_state_dict(..., strict=True)`` accepts.

    Raises:
        KeyMappingError: Listing unmapped, missing or unexpected keys and shape mismatches.
    """
    _check_target(model)
    body = {k: v for k, v in state_dict.items() if k.startswith("body.")}
    rest = {k: v for k, v in state_dict.items() if not k.startswith("body.")}
    converted = {f"backbone.model.{k}": v for k, v in tresnet_filter(body, model.backbone.model).items()}
    drop = [] if model.aggregator.pos_embed is not None else [r"aggregate\.pos_embed"]
    converted.update(remap_state_dict(rest, _RULES, drop=drop))
    own = model.state_dict()
    return remap_state_dict(fill_missing_bn_counters(converted, own), [(r"(.*)", r"\1")], expected=own)


def peta_classes(checkpoint: Mapping) -> list[str] | None:
    """Event names from an original checkpoint's ``idx_to_class`` (ordered by index), if it has one."""
    mapping = checkpoint.get("idx_to_class") if isinstance(checkpoint, Mapping) else None
    if not isinstance(mapping, Mapping) or not mapping:
        return None
    try:
        ordered = sorted(mapping.items(), key=lambda kv: int(kv[0]))
    except (TypeError, ValueError):
        raise ValueError(f"idx_to_class of the checkpoint has non-integer indices: {list(mapping)[:5]}") from None
    return [str(name) for _, name in ordered]


def load_peta_checkpoint(path: str | os.PathLike | Mapping, model: PETA) -> list[str] | None:
    """Load an original PETA checkpoint file into ``model`` strictly; return its event names (if stored).

    The file is read without unpickling arbitrary objects (:func:`miil.core.io.load_checkpoint`); a file that
    pickles other Python objects is refused with instructions to convert it in a trusted environment.

    Args:
        path: ``peta_32.pth`` or a state dict saved from it (``.pth`` / ``.safetensors``), or the loaded checkpoint.
        model: A :class:`PETA` with a timm TResNet-M backbone, ``num_classes`` and ``pos_embed`` as the checkpoint.
    """
    raw = path if isinstance(path, Mapping) else load_checkpoint(path)
    state = extract_state_dict(raw)
    model.load_state_dict(convert_peta_state_dict(state, model), strict=True)
    return peta_classes(raw)


def convert_peta_aggregator_state_dict(
    state_dict: Mapping[str, torch.Tensor], module: AlbumTransformer
) -> dict[str, torch.Tensor]:
    """Convert the weights of the original album aggregator alone (``TAggregate``) for ``module``, strictly.

    Every key must be mapped and every weight of ``module`` produced, with matching shapes. The original stores
    ``pos_embed`` also when it was trained without one (``transformers_pos=0``): for a module without a position
    embedding it is dropped on purpose. To take the aggregator out of a full original checkpoint, keep its
    ``aggregate.*`` keys.

    Args:
        state_dict: ``cls_token``, ``pos_embed``, ``transformer_enc.layers.i.*``, ``transformer_enc.norm.*``, bare or
            under ``aggregate.``, with or without DataParallel's ``module.`` prefix.
        module: The target :class:`~miil.album.AlbumTransformer` (width, depth and ``max_images`` as the original).

    Returns:
        A state dict that ``module.load_state_dict(..., strict=True)`` accepts.

    Raises:
        KeyMappingError: Listing unmapped, missing or unexpected keys and shape mismatches.
    """
    if not isinstance(module, AlbumTransformer):
        raise TypeError(f"the original album aggregator converts into an AlbumTransformer, got {type(module).__name__}")
    return convert_original_aggregator(state_dict, module, drop_unused_pos_embed=True)


def load_peta_aggregator_checkpoint(path: str | os.PathLike | Mapping, module: AlbumTransformer) -> None:
    """Load a file holding the original album aggregator alone into ``module`` strictly (no arbitrary unpickling).

    Args:
        path: A ``.pth`` / ``.safetensors`` file of the aggregator's state dict (optionally under ``"model"``), or the
            loaded mapping.
        module: The target :class:`~miil.album.AlbumTransformer`.
    """
    raw = path if isinstance(path, Mapping) else load_checkpoint(path)
    state = extract_state_dict(raw)
    module.load_state_dict(convert_peta_aggregator_state_dict(state, module), strict=True)
