"""Penultimate features of any classifier: the input of its classification layer.

Paper: "Diverse ImageNet Models Transfer Better" (arXiv 2204.09134): feature diversity is measured on, and linear
probes are trained on, the representation a pretrained classifier hands to its classification layer. For timm models
that is miil-core's pooled backbone form (``forward_head(..., pre_logits=True)``, width ``head_hidden_size``).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from miil.core.backbones import backbone_features

from .filter_diversity import classifier_module

__all__ = ["logits_and_features", "penultimate_features", "replace_classifier"]


def logits_and_features(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(logits, features)`` from one forward pass; features are the ``[B, D]`` input of the classifier.

    Args:
        model: A timm model (``forward_head(..., pre_logits=True)``), or any classifier with a linear ``head`` /
            ``fc`` / ``classifier`` (its input is caught by a hook). Without a classifier both are the output.
        x: Input batch.
    """
    head = classifier_module(model)
    if hasattr(model, "forward_head") and hasattr(model, "forward_features"):
        width = head.in_features if isinstance(head, nn.Linear) else None
        feats = backbone_features(model, x, "pooled", width=width)
        return (head(feats) if head is not None else feats), feats
    if head is None:
        out = model(x)
        return out, out
    caught: list[torch.Tensor] = []
    handle = head.register_forward_pre_hook(lambda _m, inputs: caught.append(inputs[0]))
    try:
        out = model(x)
    finally:
        handle.remove()
    return out, caught[0]


def penultimate_features(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``[B, D]`` features entering the classifier (see :func:`logits_and_features`).

    Args:
        model: The classifier.
        x: Input batch.
    """
    return logits_and_features(model, x)[1]


def replace_classifier(model: nn.Module, num_classes: int) -> nn.Module:
    """Give ``model`` a fresh linear classifier with ``num_classes`` outputs (in place; returns the model).

    Args:
        model: A timm model (``reset_classifier``) or a classifier with a linear ``head`` / ``fc`` / ``classifier``.
        num_classes: Outputs of the new classifier.
    """
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    if hasattr(model, "reset_classifier"):
        model.reset_classifier(num_classes)
        return model
    for name in ("head", "fc", "classifier"):
        old = getattr(model, name, None)
        if isinstance(old, nn.Linear):
            setattr(model, name, nn.Linear(old.in_features, num_classes).to(old.weight.device))
            return model
    raise ValueError(f"{type(model).__name__} has no reset_classifier() nor a linear head / fc / classifier to replace")
