"""The pretrained model that ``measure`` and ``transfer`` compare: a run, a weights file, or timm's weights.

Paper: "Diverse ImageNet Models Transfer Better" (arXiv 2204.09134 / WACV 2024) compares pretrained models (supervised,
self-supervised, and self-supervised then supervised) by their diversity and their transfer results. Such a model
comes from ``--weights``: a ``miil diversity train`` run (its supervised stage), a ``miil usi train`` run, a weights
file with a classifier (loaded strictly), or a backbone-only self-supervised file (a DINO release, or the output of
``miil diversity convert``: every backbone key must map, the classifier stays at its initialisation); or from timm's
pretrained weights (``--pretrained``, downloads).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch.nn as nn

from miil.core.backbones import create_backbone
from miil.core.cli_args import parse_model_kwargs
from miil.core.errors import UserError
from miil.usi import classifier_outputs, load_weights, model_mean_std, read_weights

from .convert import load_ssl_weights

__all__ = ["PretrainedModel", "load_pretrained", "run_weights"]


def run_weights(path: str | os.PathLike) -> Path:
    """``--weights PATH`` with a ``miil diversity train`` run folder standing for its ``supervised/`` stage.

    Args:
        path: A run folder, a stage folder or a weights file.
    """
    p = Path(path)
    if p.is_dir() and not (p / "best.safetensors").is_file() and (p / "supervised" / "best.safetensors").is_file():
        return p / "supervised"
    return p


@dataclass
class PretrainedModel:
    """A pretrained model and what is known about it.

    Args:
        model: The network.
        name: timm model name.
        mean: Input normalisation mean (the run's, else the model's timm configuration).
        std: Input normalisation std.
        source_top1: The source (ImageNet) top-1 stored with the weights, when known.
        info: Where the weights came from.
    """

    model: nn.Module
    name: str
    mean: tuple[float, ...]
    std: tuple[float, ...]
    source_top1: float | None = None
    info: dict[str, Any] = field(default_factory=dict)


def load_pretrained(
    *,
    weights: str | os.PathLike | None = None,
    model: str | None = None,
    pretrained: bool = False,
    num_classes: int | None = None,
    model_kwargs: str | dict[str, Any] | None = None,
) -> PretrainedModel:
    """Build the pretrained model from ``--weights`` or from timm.

    Args:
        weights: A run folder (``miil diversity train``'s, or a stage of it), or a weights file (with a classifier,
            or backbone-only self-supervised weights).
        model: timm model name (default: the one the weights' sidecar names).
        pretrained: Without ``weights``: timm's pretrained weights of ``model`` (downloads).
        num_classes: Classifier outputs (default: the sidecar's, else the weights', else timm's default).
        model_kwargs: Extra ``timm.create_model`` arguments (JSON text or dict), over the sidecar's.

    Raises:
        UserError: No weights and no ``pretrained``, or weights that name no model when ``model`` is not given.
    """
    extra = parse_model_kwargs(model_kwargs)
    if weights is None:
        if model is None or not pretrained:
            raise UserError(
                "no pretrained model: pass --weights PATH (a run folder or a weights file), or --model NAME with "
                "--pretrained for timm's weights"
            )
        kwargs = {**extra, **({"num_classes": num_classes} if num_classes else {})}
        net = create_backbone(model, pretrained=True, **kwargs)
        mean, std = model_mean_std(net)
        return PretrainedModel(net, model, mean, std, info={"weights": "timm pretrained"})
    found = read_weights(run_weights(weights))
    cfg, info = found.config, found.run_info
    name = model or cfg.get("model")
    if not name:
        raise UserError(f"the weights {found.file} do not say which model they are for; pass --model NAME")
    kwargs = {**parse_model_kwargs(cfg.get("model_kwargs")), **extra}
    in_weights = classifier_outputs(found.state, name)
    outputs = num_classes or cfg.get("num_classes") or in_weights
    if outputs:
        kwargs["num_classes"] = int(outputs)
    net = create_backbone(name, **kwargs)
    if in_weights is not None:
        load_weights(net, found.state)  # a whole classifier: every key, strictly
        kind = "classifier"
    else:
        load_ssl_weights(net, found.state)  # a backbone: every backbone key, the classifier left at init
        kind = "backbone"
    own_mean, own_std = model_mean_std(net)
    metrics = found.meta.get("metrics") or {}
    return PretrainedModel(
        net,
        name,
        tuple(info.get("student_mean") or own_mean),
        tuple(info.get("student_std") or own_std),
        source_top1=metrics.get("top1"),
        info={"weights": os.fspath(found.file), "loaded": kind},
    )
