"""Load the original CSL / ASL TResNet checkpoints into :class:`~miil.csl.model.MultiLabelClassifier`, strictly.

Paper: "Multi-label Classification with Partial Annotations using Class-aware Selective Loss" (arXiv 2110.10955);
the released models (e.g. ASL's ``Open_ImagesV6_TRresNet_L_448.pth``, used by CSL for OpenImages) are TResNets
built on InplaceABN, saved as ``{"model": state_dict, "num_classes": C, "idx_to_class": {i: name}}`` or as a bare
state dict. Their keys are ``body.*`` (InplaceABN layout), ``head.fc.weight`` / ``.bias`` for a linear head or
``head.fc.embedding_generator.0.*`` and ``head.fc.FC.*`` for the OpenImages bottleneck head.

The backbone keys and the InplaceABN weights (``|w| + eps``) are converted by timm's own
``timm.models.tresnet.checkpoint_filter_fn`` (timm's TResNet weights come from the same originals); the head keys are
renamed here; BatchNorm's ``num_batches_tracked`` counters, which InplaceABN before 1.1 does not have, are set to 0
(:func:`miil.core.io.fill_missing_bn_counters`; checkpoints made with InplaceABN >= 1.1 keep theirs). Every key must
be mapped and every model key filled, or :class:`miil.core.io.KeyMappingError` lists what is wrong. The key layouts
the original code builds are committed in ``tests/original_keys/`` and tested.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn as nn
from timm.models.tresnet import checkpoint_filter_fn

from miil.core.errors import UserError
from miil.core.io import extract_state_dict, fill_missing_bn_counters, load_file, load_into, remap_state_dict

from .model import MultiLabelClassifier, create_csl_model

__all__ = ["convert_original_checkpoint", "load_original_checkpoint"]

_HEAD_RULES = [
    (r"head\.fc\.embedding_generator\.0\.(weight|bias)", r"head.embedding.\1"),
    (r"head\.fc\.FC\.(weight|bias)", r"head.fc.\1"),
    (r"head\.fc\.(weight|bias)", r"head.\1"),
    (r"(body\..*)", r"backbone.\1"),
]


def _state_dict(obj: Any) -> dict[str, torch.Tensor]:
    if isinstance(obj, Mapping) and "model" in obj and isinstance(obj["model"], Mapping):
        return dict(obj["model"])
    return extract_state_dict(obj)


def convert_original_checkpoint(obj: Any, model: MultiLabelClassifier) -> dict[str, torch.Tensor]:
    """Convert an original TResNet checkpoint (loaded dict or state dict) to ``model``'s keys.

    Args:
        obj: ``{"model": state_dict, ...}`` or a state dict with the reference's keys.
        model: The target :class:`MultiLabelClassifier` on a timm TResNet backbone.

    Returns:
        A state dict that ``model.load_state_dict(..., strict=True)`` accepts.
    """
    source = _state_dict(obj)
    # Anti-aliasing filters are fixed, not learned; timm rebuilds them (non-persistent buffers).
    body = {k: v for k, v in source.items() if k.startswith("body.") and not k.endswith(".filt")}
    # InplaceABN before 1.1 (v1.0.12, pinned by the originals) keeps no num_batches_tracked; from 1.1 on it does.
    converted = fill_missing_bn_counters(checkpoint_filter_fn(body, model.backbone), model.backbone)
    converted.update({k: v for k, v in source.items() if not k.startswith("body.")})
    return remap_state_dict(converted, _HEAD_RULES, expected=model)


def load_original_checkpoint(
    path: str | os.PathLike, *, model: str | nn.Module = "tresnet_l", **kwargs: Any
) -> tuple[MultiLabelClassifier, list[str] | None]:
    """Build the matching model and load an original checkpoint into it.

    The number of classes and whether the head is a bottleneck are read from the checkpoint.

    Args:
        path: The ``.pth`` file (opened with :func:`miil.core.io.load_file`: no pickled code runs).
        model: timm TResNet variant the checkpoint was trained with (``tresnet_m``, ``tresnet_l``, ...), or a TResNet
            module returning pooled features.
        kwargs: Passed to :func:`create_csl_model`.

    Returns:
        ``(model, class names)``; the names come from ``idx_to_class`` when the file has it, else None.
    """
    obj = load_file(path, what="checkpoint")
    source = _state_dict(obj)
    if "head.fc.FC.weight" in source:
        num_classes, bottleneck = source["head.fc.FC.weight"].shape
    elif "head.fc.weight" in source:
        num_classes, bottleneck = source["head.fc.weight"].shape[0], None
    else:
        raise UserError(
            f"{path}: no 'head.fc.weight' or 'head.fc.FC.weight' key; is this a CSL/ASL TResNet checkpoint?"
        )
    net = create_csl_model(model, num_classes=int(num_classes), bottleneck_features=bottleneck, **kwargs)
    load_into(net, convert_original_checkpoint(obj, net))
    classes = None
    if isinstance(obj, Mapping) and isinstance(obj.get("idx_to_class"), Mapping):
        idx = obj["idx_to_class"]
        classes = [str(idx[i]).strip("'\"") for i in sorted(idx, key=int)]
        if len(classes) != num_classes:
            raise UserError(f"{path}: idx_to_class has {len(classes)} names for {num_classes} outputs")
    return net, classes
