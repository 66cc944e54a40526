"""Strict conversion of the original STAM checkpoints (Alibaba-MIIL/STAM release) into :class:`STAM` weights.

Paper: STAM (arXiv 2103.13915). The released files are ``torch.save({"model": state_dict, ...})`` of a ViT whose
keys match timm's (``patch_embed.proj``, ``cls_token``, ``pos_embed``, ``blocks.i.*``, ``norm``, ``head``) with the
temporal transformer under ``aggregate.*`` (``cls_token``, ``pos_embed``, ``transformer_enc.layers.j.*``,
``transformer_enc.norm``). The original loader used ``strict=False``, which hides key mismatches; here every key
must be mapped and every weight of the target produced, with matching shapes. A temporal position embedding made
for another clip length is interpolated to the target model's ``num_frames``.

:func:`convert_original_temporal` converts the original temporal aggregator (``TAggregate``) alone into a
:class:`~miil.stam.layers.TemporalTransformer`, e.g. to put the released temporal weights on another spatial model.
The aggregator's keys are those of miil-core's :class:`~miil.core.layers.ClsTransformer` (``layers.j.*``, ``norm``),
the original's without ``transformer_enc.`` (:func:`miil.core.layers.original_aggregator_rules`).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn as nn

from miil.core.io import extract_state_dict, remap_state_dict
from miil.core.layers import convert_original_aggregator, original_aggregator_rules

from ..layers import TemporalTransformer, resize_temporal_pos_embed

__all__ = ["convert_original_checkpoint", "convert_original_temporal", "to_original_layout"]

_TO_OURS = [
    *original_aggregator_rules("aggregate.", "temporal."),
    (r"head\.(weight|bias)", r"head.\1"),
    (r"(cls_token|pos_embed|patch_embed\.proj\..+|blocks\.\d+\..+|norm\.(?:weight|bias))", r"spatial.\1"),
]
_TO_ORIGINAL = [
    (r"temporal\.(layers\.\d+\..+|norm\.(?:weight|bias))", r"aggregate.transformer_enc.\1"),
    (r"temporal\.(cls_token|pos_embed)", r"aggregate.\1"),
    (r"head\.(weight|bias)", r"head.\1"),
    (r"spatial\.(.+)", r"\1"),
]


def _state_dict_of(checkpoint: Mapping) -> dict[str, torch.Tensor]:
    return _strip_module_prefix(extract_state_dict(checkpoint, key="model" if "model" in checkpoint else None))


def _strip_module_prefix(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    if state and all(k.startswith("module.") for k in state):
        return {k[len("module.") :]: v for k, v in state.items()}
    return dict(state)


def convert_original_checkpoint(checkpoint: Mapping, model: nn.Module) -> dict[str, torch.Tensor]:
    """Map an original STAM checkpoint onto ``model``'s keys, strictly.

    Args:
        checkpoint: The loaded file (``{"model": state_dict, ...}``) or the state dict itself.
        model: The target :class:`STAM` (its keys and shapes are what must be produced).

    Returns:
        A state dict that ``model.load_state_dict(..., strict=True)`` accepts.

    Raises:
        miil.core.io.KeyMappingError: Listing unmapped, missing or unexpected keys and shape mismatches.
    """
    source = _state_dict_of(checkpoint)
    expected = model.state_dict()
    pos = source.get("aggregate.pos_embed")
    target_pos = expected.get("temporal.pos_embed")
    if pos is not None and target_pos is not None and pos.ndim == 3 and pos.shape[1] != target_pos.shape[1]:
        source["aggregate.pos_embed"] = resize_temporal_pos_embed(pos, target_pos.shape[1] - 1)
    proj = source.get("patch_embed.proj.weight")
    target_proj = expected.get("spatial.patch_embed.proj.weight")
    if proj is not None and target_proj is not None and proj.ndim == 2 and target_proj.ndim == 4:
        # Early ViT checkpoints stored the patch embedding as a linear layer over flattened patches.
        source["patch_embed.proj.weight"] = proj.reshape(target_proj.shape)
    return remap_state_dict(source, _TO_OURS, expected=expected)


def to_original_layout(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Our :class:`STAM` state dict in the original release's key layout (for export and for tests).

    Args:
        state_dict: ``STAM.state_dict()`` of a transformer-aggregation model with a head.
    """
    return remap_state_dict(state_dict, _TO_ORIGINAL)


def convert_original_temporal(checkpoint: Mapping, module: TemporalTransformer) -> dict[str, torch.Tensor]:
    """Map the weights of the original temporal aggregator alone (``TAggregate``) onto ``module``, strictly.

    Every key must be mapped and every weight of ``module`` produced, with matching shapes; a position embedding
    made for another clip length is interpolated to ``module.num_frames``. To take the aggregator out of a full
    original checkpoint, keep its ``aggregate.*`` keys.

    Args:
        checkpoint: ``{"model": state_dict, ...}`` or the state dict: ``cls_token``, ``pos_embed``,
            ``transformer_enc.layers.j.*``, ``transformer_enc.norm.*``, bare or under ``aggregate.``, with or without
            DataParallel's ``module.`` prefix.
        module: The target :class:`~miil.stam.layers.TemporalTransformer`.

    Returns:
        A state dict that ``module.load_state_dict(..., strict=True)`` accepts.

    Raises:
        miil.core.io.KeyMappingError: Listing unmapped, missing or unexpected keys and shape mismatches.
    """
    if not isinstance(module, TemporalTransformer):
        raise TypeError(
            f"the original temporal aggregator converts into a TemporalTransformer, got {type(module).__name__}"
        )
    return convert_original_aggregator(_state_dict_of(checkpoint), module)
