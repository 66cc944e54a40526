"""Strict converter for the original USI / MIIL TResNet checkpoints (InplaceABN layout) into timm's TResNet.

Paper: USI (arXiv 2204.03475): its default KD teacher is TResNet-L-V2 (``tresnet_l_v2_83_9.pth``, IN-21K pretrained,
83.9% on IN-1K) and its TResNet students were saved from models built with InplaceABN. Those checkpoints name each
conv + norm pair ``conv1.0`` / ``conv1.1`` (``conv2.0.0`` / ``conv2.0.1`` when an anti-aliasing layer follows) and
store the InplaceABN weight, whose effective scale is ``|w| + eps``. timm's TResNet (after timm PR #1785) uses
``ConvNormAct`` (``conv`` / ``bn``) with plain batch norm, so the scale is converted to ``|w| + 1e-5``. Unlike timm's
lenient filter, every source key must map to exactly one key of the target model.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path

import torch
import torch.nn as nn

from miil.core.errors import UserError
from miil.core.io import (
    atomic_write_text,
    extract_state_dict,
    load_checkpoint,
    load_into,
    remap_state_dict,
    save_safetensors,
)

__all__ = [
    "INPLACE_ABN_EPS",
    "convert_checkpoint",
    "convert_inplace_abn_tresnet",
    "is_inplace_abn_tresnet",
    "load_weights",
]

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


def load_weights(
    model: nn.Module, source: str | os.PathLike | Mapping[str, torch.Tensor], *, key: str | None = None
) -> nn.Module:
    """Load weights into ``model`` strictly, converting the original TResNet layout when it is found.

    Reads safetensors or weights-only torch checkpoints (``miil.core.io.load_checkpoint``; pickled objects are
    refused), finds the state dict inside (``model``, ``state_dict``, ...; ``module.`` prefixes removed), and, for
    an InplaceABN TResNet checkpoint, applies :func:`convert_inplace_abn_tresnet`.

    Args:
        model: The module to load into.
        source: The weights file, or a state dict already read.
        key: Entry of the checkpoint that holds the state dict (default: guessed).
    """
    state = dict(source) if isinstance(source, Mapping) else extract_state_dict(load_checkpoint(source), key=key)
    if is_inplace_abn_tresnet(state):
        state = convert_inplace_abn_tresnet(state, model)
    load_into(model, state)
    return model


def convert_checkpoint(
    source: str | os.PathLike,
    output: str | os.PathLike,
    *,
    model: str,
    num_classes: int | None = None,
    img_size: int | None = None,
    crop_pct: float = 0.95,
) -> Path:
    """Convert an original USI / MIIL checkpoint into a timm-layout safetensors file with a JSON sidecar.

    The original files (``tresnet_l_v2_83_9.pth``, the USI students of ``MODEL_ZOO.md``) are weights-only torch
    files; TResNets among them are in the InplaceABN layout and are converted key by key. The sidecar
    (``OUTPUT`` with ``.json``) names the timm model, its classes and the evaluation crop, so that ``--weights OUTPUT``
    (``validate``, ``infer``) and ``--teacher-checkpoint OUTPUT`` need nothing else.

    Args:
        source: The original checkpoint.
        output: The ``.safetensors`` file to write.
        model: timm name of the architecture (``tresnet_v2_l`` for the USI teacher, ``tresnet_m``, ``resnet50``...).
        num_classes: Outputs of the classifier (default: read from the checkpoint's classifier weights).
        img_size: Input side stored in the sidecar (default: the model's timm configuration).
        crop_pct: Evaluation center-crop fraction stored in the sidecar (the paper's 0.95).

    Returns:
        The written file.
    """
    from miil.core.backbones import create_backbone

    from .weights import classifier_outputs

    out = Path(output)
    if out.suffix != ".safetensors":
        raise UserError(f"convert writes safetensors: name the output file *.safetensors, not {out.name}")
    state = extract_state_dict(load_checkpoint(source))
    classes = num_classes or classifier_outputs(state, model)
    if classes is None:
        raise UserError(f"{source} holds no classifier weights of {model}; pass --num-classes N")
    net = create_backbone(model, num_classes=classes)
    load_weights(net, state)
    size = img_size or int((getattr(net, "pretrained_cfg", None) or {}).get("input_size", (3, 224, 224))[-1])
    out.parent.mkdir(parents=True, exist_ok=True)
    save_safetensors(net.state_dict(), out, metadata={"model": model, "source": Path(source).name})
    sidecar = {
        "config": {"model": model, "num_classes": classes, "img_size": size, "crop_pct": crop_pct},
        "run_info": {"converted_from": os.fspath(source), "original_layout": is_inplace_abn_tresnet(state)},
    }
    atomic_write_text(out.with_suffix(".json"), json.dumps(sidecar, indent=2) + "\n")
    return out
