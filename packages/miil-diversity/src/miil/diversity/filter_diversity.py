"""Filter diversity: how different the filters of a layer are from each other.

Paper: "Diverse ImageNet Models Transfer Better" (Nayman, Golbert, Noy, Zelnik-Manor; WACV 2024, arXiv 2204.09134).
The WACV version states that a high diversity of the *filters* learnt by the model promotes transferability jointly
with ImageNet accuracy. The paper's exact formula could not be retrieved for this package (see the README); the
measure here is our choice: every filter (one output unit of a convolution or linear layer) is flattened to a
vector, and a layer's diversity is ``1 - mean_{i != j} |cos(w_i, w_j)|``. Identical (or sign-flipped) filters give 0,
mutually orthogonal filters give 1. The model's diversity is the mean over its layers.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn as nn

__all__ = ["classifier_module", "filter_diversity", "filter_layers", "model_filter_diversity"]


def filter_diversity(weight: torch.Tensor, *, eps: float = 1e-12) -> float:
    """``1 - mean |cos|`` over all pairs of distinct filters of one layer; in [0, 1], higher is more diverse.

    Args:
        weight: Layer weight ``[out, ...]``; each of the ``out`` slices is one filter. All-zero filters carry no
            direction and are left out.
        eps: Norm below which a filter counts as all-zero.
    """
    if weight.ndim < 2:
        raise ValueError(f"filter diversity needs a weight of shape [filters, ...], got {tuple(weight.shape)}")
    w = weight.detach().reshape(weight.shape[0], -1).double()
    norms = w.norm(dim=1)
    w = w[norms > eps] / norms[norms > eps, None]
    n = w.shape[0]
    if n < 2:
        raise ValueError(f"filter diversity needs at least 2 non-zero filters, got {n} (weight {tuple(weight.shape)})")
    cos = (w @ w.T).abs()
    off_diagonal = cos.sum() - cos.diagonal().sum()
    return float(1.0 - off_diagonal / (n * (n - 1)))


def classifier_module(model: nn.Module) -> nn.Module | None:
    """The model's classification layer (timm's ``get_classifier()``, or a linear ``head`` / ``fc`` / ``classifier``).

    Args:
        model: Any classifier.
    """
    getter = getattr(model, "get_classifier", None)
    if callable(getter):
        head = getter()
        if isinstance(head, nn.Module) and not isinstance(head, nn.Identity):
            return head
        return None
    for name in ("head", "fc", "classifier"):
        head = getattr(model, name, None)
        if isinstance(head, nn.Linear):
            return head
    return None


def filter_layers(
    model: nn.Module,
    *,
    types: tuple[type[nn.Module], ...] = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear),
    include_classifier: bool = False,
    min_filters: int = 2,
) -> Iterable[tuple[str, torch.Tensor]]:
    """``(name, weight)`` of every layer whose filters are measured.

    Args:
        model: The model.
        types: Layer types whose ``weight`` holds filters.
        include_classifier: Also measure the classification layer (task-specific, so off by default).
        min_filters: Skip layers with fewer output units.
    """
    head = None if include_classifier else classifier_module(model)
    for name, module in model.named_modules():
        if module is head or not isinstance(module, types):
            continue
        weight = getattr(module, "weight", None)
        if isinstance(weight, torch.Tensor) and weight.ndim >= 2 and weight.shape[0] >= min_filters:
            yield name, weight


def model_filter_diversity(
    model: nn.Module,
    *,
    types: tuple[type[nn.Module], ...] = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear),
    include_classifier: bool = False,
) -> tuple[float, dict[str, float]]:
    """``(overall, per_layer)``: the mean filter diversity over the model's layers, and each layer's value.

    Args:
        model: The model.
        types: Layer types whose filters are measured.
        include_classifier: Also measure the classification layer.
    """
    per_layer = {
        name: filter_diversity(w)
        for name, w in filter_layers(model, types=types, include_classifier=include_classifier)
    }
    if not per_layer:
        raise ValueError(f"{type(model).__name__} has no layer of types {[t.__name__ for t in types]} to measure")
    return sum(per_layer.values()) / len(per_layer), per_layer
