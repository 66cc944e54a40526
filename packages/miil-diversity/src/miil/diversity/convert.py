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

import os
import re
from collections.abc import Mapping

import torch
import torch.nn as nn

from miil.core.backbones import create_backbone
from miil.core.io import extract_state_dict, load_checkpoint, remap_state_dict

from .filter_diversity import classifier_module

__all__ = ["classifier_keys", "convert_ssl_state_dict", "load_ssl_weights"]

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


def load_ssl_weights(model: nn.Module, source: str | os.PathLike | Mapping[str, torch.Tensor]) -> list[str]:
    """Load self-supervised backbone weights into ``model`` in place; returns the keys left at initialisation.

    Args:
        model: The target classifier (any number of classes).
        source: A checkpoint file (safetensors or a weights-only torch file), ``"timm:<name.tag>"`` for timm's
            pretrained weights (downloads), or a state dict.
    """
    if isinstance(source, Mapping):
        state = dict(source)
    elif str(source).startswith("timm:"):
        state = create_backbone(str(source)[5:], pretrained=True, num_classes=0).state_dict()
    else:
        obj = load_checkpoint(source)
        key = "teacher" if isinstance(obj, Mapping) and "teacher" in obj else None
        state = extract_state_dict(obj, key=key)
    converted = convert_ssl_state_dict(state, model)
    missing, unexpected = model.load_state_dict(converted, strict=False)
    head = set(classifier_keys(model))
    wrong = [k for k in missing if k not in head] + list(unexpected)
    if wrong:
        raise KeyError(
            f"self-supervised weights from {source if not isinstance(source, Mapping) else 'a state dict'} "
            f"do not fit {type(model).__name__}: {wrong}"
        )
    return sorted(missing)
