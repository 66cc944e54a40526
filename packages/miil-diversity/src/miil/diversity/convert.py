"""Start from a released self-supervised checkpoint: strict loading of DINO-style weights into a timm classifier.

Paper: "Diverse ImageNet Models Transfer Better" (arXiv 2204.09134 / WACV 2024) initialises supervised pretraining from
a self-supervised model. The paper's own checkpoints are not public, so the converter targets the self-supervised
weights a user can bring: the DINO releases (Caron et al., arXiv 2104.14294; ``dino_deitsmall16_pretrain.pth``,
``dino_resnet50_pretrain.pth``: backbone keys named as in timm / torchvision) and DINO's full training checkpoints
(``{"student": ..., "teacher": ...}`` with ``module.backbone.*`` and ``module.head.*`` keys; the teacher is used, as
DINO evaluates it, and its projection head is dropped), or timm's own DINO weights (``timm:vit_small_patch16_224.dino``,
downloaded when asked). Every backbone key must map; only the new classification layer keeps its initialisation.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path

import torch
import torch.nn as nn

from miil.core.backbones import create_backbone
from miil.core.errors import UserError
from miil.core.io import atomic_write_text, extract_state_dict, load_checkpoint, remap_state_dict, save_safetensors

from .filter_diversity import classifier_module

__all__ = ["classifier_keys", "convert_ssl_checkpoint", "convert_ssl_state_dict", "load_ssl_weights", "read_ssl_state"]

_RULES = [(r"(?:module\.)?backbone\.(.+)", r"\1"), (r"(?:module\.)?(.+)", r"\1")]
_DROP = (r"(?:module\.)?head\.(?:mlp|last_layer)\..*",)  # DINO's projection head


def _target(name: str) -> str:
    for pattern, repl in _RULES:
        match = re.fullmatch(pattern, name)
        if match:
            return match.expand(repl)
    return name


def classifier_keys(model: nn.Module) -> list[str]:
    """State-dict keys of the model's classification layer (left at initialisation by the converter).

    Args:
        model: The target classifier.
    """
    head = classifier_module(model)
    if head is None:
        return []
    prefix = next(name for name, module in model.named_modules() if module is head)
    return [f"{prefix}.{k}" for k in head.state_dict()]


def convert_ssl_state_dict(
    source: Mapping[str, torch.Tensor], model: nn.Module, *, drop: tuple[str, ...] = ()
) -> dict[str, torch.Tensor]:
    """Strictly rename a self-supervised checkpoint's backbone weights to ``model``'s keys (classifier excluded).

    Args:
        source: The checkpoint's state dict (``module.`` / ``backbone.`` prefixes allowed, DINO head keys dropped).
        model: The target classifier.
        drop: More regexes of source keys to discard on purpose.
    """
    head = set(classifier_keys(model))
    expected = {k: v for k, v in model.state_dict().items() if k not in head}
    # A classifier in the source (a supervised head, or timm's) is task-specific: the new task gets a fresh one.
    source = {k: v for k, v in source.items() if _target(k) not in head}
    return remap_state_dict(source, _RULES, expected=expected, drop=(*_DROP, *drop))


def read_ssl_state(source: str | os.PathLike | Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The state dict of a self-supervised checkpoint: a file (a DINO training checkpoint gives its ``teacher``), a
    ``"timm:<name.tag>"`` (timm's pretrained weights, downloads), or a state dict.

    Args:
        source: The checkpoint.
    """
    if isinstance(source, Mapping):
        return dict(source)
    if str(source).startswith("timm:"):
        return create_backbone(str(source)[5:], pretrained=True, num_classes=0).state_dict()
    obj = load_checkpoint(source)
    key = "teacher" if isinstance(obj, Mapping) and "teacher" in obj else None
    return extract_state_dict(obj, key=key)


def load_ssl_weights(model: nn.Module, source: str | os.PathLike | Mapping[str, torch.Tensor]) -> list[str]:
    """Load self-supervised backbone weights into ``model`` in place; returns the keys left at initialisation.

    Args:
        model: The target classifier (any number of classes).
        source: A checkpoint file (safetensors or a weights-only torch file), ``"timm:<name.tag>"`` for timm's
            pretrained weights (downloads), or a state dict.
    """
    converted = convert_ssl_state_dict(read_ssl_state(source), model)
    missing, unexpected = model.load_state_dict(converted, strict=False)
    head = set(classifier_keys(model))
    wrong = [k for k in missing if k not in head] + list(unexpected)
    if wrong:
        raise KeyError(
            f"self-supervised weights from {source if not isinstance(source, Mapping) else 'a state dict'} "
            f"do not fit {type(model).__name__}: {wrong}"
        )
    return sorted(missing)


def convert_ssl_checkpoint(source: str | os.PathLike, output: str | os.PathLike, *, model: str) -> Path:
    """Convert a DINO checkpoint (release or training file) into the backbone weights of timm ``model``.

    Every backbone key must map (DINO's projection head is dropped; the classifier, task specific, is not written).
    The result is a safetensors file with a JSON sidecar naming the model, for ``--init-checkpoint`` of ``train``
    (``--init dino``) and ``--weights`` of ``measure`` / ``transfer``.

    Args:
        source: The original checkpoint (``dino_resnet50_pretrain.pth``, ``dino_deitsmall16_pretrain.pth``, or a DINO
            training ``checkpoint.pth``).
        output: The ``.safetensors`` file to write.
        model: timm name of the architecture (``resnet50``, ``vit_small_patch16_224``, ...).

    Returns:
        The written file.
    """
    out = Path(output)
    if out.suffix != ".safetensors":
        raise UserError(f"convert writes safetensors: name the output file *.safetensors, not {out.name}")
    net = create_backbone(model)
    converted = convert_ssl_state_dict(read_ssl_state(source), net)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_safetensors(converted, out, metadata={"model": model, "source": Path(source).name})
    sidecar = {
        "config": {"model": model},
        "run_info": {"converted_from": os.fspath(source), "kind": "self-supervised backbone (no classifier)"},
    }
    atomic_write_text(out.with_suffix(".json"), json.dumps(sidecar, indent=2) + "\n")
    return out
