"""Strict converter for the original USI / MIIL TResNet checkpoints (InplaceABN layout) into timm's TResNet.

Paper: USI (arXiv 2204.03475): its default KD teacher is TResNet-L-V2 (``tresnet_l_v2_83_9.pth``, IN-21K pretrained,
83.9% on IN-1K) and its TResNet students were saved from models built with InplaceABN. Those checkpoints name each
conv + norm pair ``conv1.0`` / ``conv1.1`` (``conv2.0.0`` / ``conv2.0.1`` when an anti-aliasing layer follows) and
store the InplaceABN weight, whose effective scale is ``|w| + eps``. timm's TResNet (after timm PR #1785) uses
``ConvNormAct`` (``conv`` / ``bn``) with plain batch norm, so the scale is converted to ``|w| + 1e-5``. Unlike timm's
lenient filter, every source key must map to exactly one key of the target model.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

import torch
import torch.nn as nn

from miil.core.io import extract_state_dict, load_checkpoint, load_into, remap_state_dict

__all__ = ["INPLACE_ABN_EPS", "convert_inplace_abn_tresnet", "is_inplace_abn_tresnet", "load_weights"]

INPLACE_ABN_EPS = 1e-5

_RULES = [
    (r"(.*\.conv\d+)\.0\.0\.weight", r"\1.conv.weight"),
    (r"(.*\.conv\d+)\.0\.1\.(weight|bias|running_mean|running_var)", r"\1.bn.\2"),
    (r"(.*\.conv\d+)\.0\.weight", r"\1.conv.weight"),
    (r"(.*\.conv\d+)\.1\.(weight|bias|running_mean|running_var)", r"\1.bn.\2"),
    (r"(.*\.downsample\.\d+)\.0\.weight", r"\1.conv.weight"),
    (r"(.*\.downsample\.\d+)\.1\.(weight|bias|running_mean|running_var)", r"\1.bn.\2"),
    (r"(.*\.se\.fc\d\.(?:weight|bias))", r"\1"),
    (r"(head\.fc\.(?:weight|bias))", r"\1"),
]
# Anti-aliasing filters are fixed buffers rebuilt by the model; IABN layers have no batch counter.
_DROP = [r".*\.filt", r".*num_batches_tracked"]


def is_inplace_abn_tresnet(state_dict: Mapping[str, torch.Tensor]) -> bool:
    """True when a state dict has the original (InplaceABN) TResNet layout (``body.conv1.0.weight``)."""
    return "body.conv1.0.weight" in state_dict and "body.conv1.conv.weight" not in state_dict


def convert_inplace_abn_tresnet(
    state_dict: Mapping[str, torch.Tensor], model: nn.Module, *, eps: float = INPLACE_ABN_EPS
) -> dict[str, torch.Tensor]:
    """Convert an original TResNet state dict to the key layout and batch-norm scales of ``model`` (timm TResNet).

    Args:
        state_dict: The original weights (``body.conv1.0.weight``, ``body.layer1.0.conv2.0.0.weight``, ...).
        model: The timm TResNet to load into (its state dict fixes the expected keys and shapes).
        eps: InplaceABN's epsilon, added to ``|weight|`` to get the batch-norm scale.

    Returns:
        A state dict that ``model.load_state_dict(..., strict=True)`` accepts.

    Raises:
        miil.core.io.KeyMappingError: A key is unmapped, missing, unexpected or has the wrong shape.
    """
    target = model.state_dict()
    counters = [k for k in target if k.endswith("num_batches_tracked")]
    expected = {k: v for k, v in target.items() if k not in set(counters)}
    out = remap_state_dict(state_dict, _RULES, expected=expected, drop=_DROP)
    for key in list(out):
        if re.fullmatch(r".*\.bn\.weight", key):
            out[key] = out[key].abs() + eps
    for key in counters:
        out[key] = torch.zeros_like(target[key])
    return out


def load_weights(model: nn.Module, path: str | os.PathLike, *, key: str | None = None) -> nn.Module:
    """Load a weights file into ``model`` strictly, converting the original TResNet layout when it is found.

    Reads safetensors or weights-only torch checkpoints (``miil.core.io.load_checkpoint``; pickled objects are
    refused), finds the state dict inside (``model``, ``state_dict``, ...; ``module.`` prefixes removed), and, for
    an InplaceABN TResNet checkpoint, applies :func:`convert_inplace_abn_tresnet`.

    Args:
        model: The module to load into.
        path: The weights file.
        key: Entry of the checkpoint that holds the state dict (default: guessed).
    """
    state = extract_state_dict(load_checkpoint(path), key=key)
    if is_inplace_abn_tresnet(state):
        state = convert_inplace_abn_tresnet(state, model)
    load_into(model, state)
    return model
