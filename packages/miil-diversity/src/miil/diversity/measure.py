"""Diversity of any model over a dataset: filter diversity, feature effective rank and feature correlation, per layer
and overall, streamed over batches.

Paper: "Diverse ImageNet Models Transfer Better" (arXiv 2204.09134 / WACV 2024), the diversity measure next to which
ImageNet accuracy is plotted against transfer results. Metrics are pluggable: a *weight* metric maps one layer's
weight to a number (:func:`register_weight_metric`), a *feature* metric maps the feature covariance of one layer over
the dataset to a number (:func:`register_feature_metric`). Features of the chosen layers are caught by forward hooks,
pooled to one vector per image, and only their moments are kept (``materialize=True`` keeps every feature instead,
the slower, memory-hungry way the benchmark compares against). Under torchrun each rank measures its share of the
dataset and the moments are summed over ranks.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, Dataset

from miil.core import distributed as du
from miil.core.data import Skipped, SkippingCollate
from miil.core.evaluate import ShardSampler, gather_skipped

from .feature_stats import FeatureMoments, effective_rank_from_covariance, mean_feature_correlation, pool_features
from .filter_diversity import classifier_module, filter_diversity, filter_layers

__all__ = [
    "FEATURE_METRICS",
    "PENULTIMATE",
    "WEIGHT_METRICS",
    "DiversityReport",
    "FeatureCollector",
    "feature_metrics",
    "measure_diversity",
    "register_feature_metric",
    "register_weight_metric",
    "weight_metrics",
]

PENULTIMATE = "penultimate"


def _normalized_effective_rank(cov: torch.Tensor) -> float:
    return effective_rank_from_covariance(cov) / cov.shape[0]


WEIGHT_METRICS: dict[str, Callable[[torch.Tensor], float]] = {"filter_diversity": filter_diversity}
FEATURE_METRICS: dict[str, Callable[[torch.Tensor], float]] = {
    "effective_rank": effective_rank_from_covariance,
    "normalized_effective_rank": _normalized_effective_rank,
    "feature_correlation": mean_feature_correlation,
}


def register_weight_metric(name: str, fn: Callable[[torch.Tensor], float]) -> None:
    """Add a metric of one layer's weight ``[filters, ...] -> float`` (averaged over layers for the overall value).

    Args:
        name: Key in the reports.
        fn: The metric.
    """
    WEIGHT_METRICS[name] = fn


def register_feature_metric(name: str, fn: Callable[[torch.Tensor], float]) -> None:
    """Add a metric of one layer's ``[D, D]`` feature covariance over the dataset.

    Args:
        name: Key in the reports.
        fn: The metric.
    """
    FEATURE_METRICS[name] = fn


def weight_metrics(model: nn.Module, names: Sequence[str] | None = None) -> tuple[dict[str, float], dict]:
    """``(overall, per_layer)`` of the weight metrics; overall is the mean over layers.

    Args:
        model: The model.
        names: Metric names (default: all registered).
    """
    names = list(WEIGHT_METRICS if names is None else names)
    per_layer: dict[str, dict[str, float]] = {}
    for layer, weight in filter_layers(model):
        per_layer[layer] = {n: float(WEIGHT_METRICS[n](weight)) for n in names}
    overall = {n: sum(v[n] for v in per_layer.values()) / max(len(per_layer), 1) for n in names}
    return overall, per_layer


def feature_metrics(cov: torch.Tensor, names: Sequence[str] | None = None) -> dict[str, float]:
    """The feature metrics of one layer's covariance.

    Args:
        cov: ``[D, D]`` covariance.
        names: Metric names (default: all registered).
    """
    return {n: float(FEATURE_METRICS[n](cov)) for n in (FEATURE_METRICS if names is None else names)}


def _check_names(names: Sequence[str] | None, registry: dict, kind: str) -> None:
    unknown = [n for n in names or () if n not in registry]
    if unknown:
        raise KeyError(f"unknown {kind} metric(s) {unknown}; registered: {sorted(registry)}")


class FeatureCollector:
    """Forward hooks that pool chosen layers' outputs (and the classifier's input) to ``[B, D]`` per batch.

    Args:
        model: The model.
        layers: Names of modules (``model.named_modules()``) whose outputs are measured; ``"penultimate"`` is the input
            of the classification layer (the model's output when it has none).
        materialize: Keep every pooled feature instead of only its moments.
    """

    def __init__(self, model: nn.Module, layers: Sequence[str], *, materialize: bool = False):
        modules = dict(model.named_modules())
        unknown = [n for n in layers if n != PENULTIMATE and n not in modules]
        if unknown:
            sample = ", ".join(list(modules)[1:12])
            raise KeyError(f"no module named {unknown} in {type(model).__name__}; modules include: {sample} ...")
        self.layers = list(layers)
        self.materialize = materialize
        self.moments = {n: FeatureMoments() for n in self.layers}
        self.stored: dict[str, list[torch.Tensor]] = {n: [] for n in self.layers}
        self._handles = []
        head = classifier_module(model)
        for name in self.layers:
            if name == PENULTIMATE:
                if head is not None:
                    self._handles.append(head.register_forward_pre_hook(self._pre_hook(name)))
                else:
                    self._handles.append(model.register_forward_hook(self._hook(name)))
            else:
                self._handles.append(modules[name].register_forward_hook(self._hook(name)))

    def _add(self, name: str, tensor: Any) -> None:
        if isinstance(tensor, list | tuple):
            tensor = tensor[0]
        if not isinstance(tensor, torch.Tensor):
            raise TypeError(f"layer {name!r} returned {type(tensor).__name__}, not a tensor; pick another layer")
        pooled = pool_features(tensor.detach().float())
        if self.materialize:
            self.stored[name].append(pooled.cpu())
        else:
            self.moments[name].update(pooled)

    def _hook(self, name: str):
        def hook(_module, _inputs, output):
            self._add(name, output)

        return hook

    def _pre_hook(self, name: str):
        def hook(_module, inputs):
            self._add(name, inputs[0])

        return hook

    def reset(self) -> None:
        for m in self.moments.values():
            m.reset()
        for v in self.stored.values():
            v.clear()

    def covariances(self) -> dict[str, torch.Tensor]:
        """Each layer's feature covariance over everything seen, on all ranks (collective under DDP)."""
        out = {}
        for name in self.layers:
            if self.materialize:
                local = torch.cat(self.stored[name]) if self.stored[name] else torch.zeros(0)
                feats = du.all_gather_cat(local).double()
                if feats.shape[0] < 2:
                    raise RuntimeError(f"layer {name!r}: a covariance needs at least 2 samples, got {feats.shape[0]}")
                out[name] = torch.cov(feats.T).reshape(feats.shape[1], feats.shape[1])
            else:
                out[name] = self.moments[name].all_reduce().covariance()
        return out

    def remove(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()


@dataclass
class DiversityReport:
    """What :func:`measure_diversity` measured.

    Args:
        overall: Model-level values: the weight metrics averaged over layers, the feature metrics of the penultimate
            features (or of the last measured layer).
        per_layer: ``{layer: {metric: value}}`` for weight layers and measured feature layers.
        images: Number of images the features came from.
        skipped: The inputs that could not be read (each file once, over all ranks), not among ``images``.
    """

    overall: dict[str, float]
    per_layer: dict[str, dict[str, float]] = field(default_factory=dict)
    images: int = 0
    skipped: list[Skipped] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        clean = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in self.overall.items()}
        return {
            "overall": clean,
            "per_layer": self.per_layer,
            "images": self.images,
            "skipped_count": len(self.skipped),
            "skipped": [s.as_dict() for s in self.skipped],
        }


def _default_layers(model: nn.Module) -> list[str]:
    layers = []
    info = getattr(model, "feature_info", None)
    names = [d.get("module") for d in info] if isinstance(info, list) else []
    modules = dict(model.named_modules())
    layers += [n for n in names if n and n in modules]
    return [*layers, PENULTIMATE]


@torch.no_grad()
def measure_diversity(
    model: nn.Module,
    data: Dataset | DataLoader,
    *,
    layers: Sequence[str] | None = None,
    weights: Sequence[str] | None = None,
    features: Sequence[str] | None = None,
    batch_size: int = 64,
    max_batches: int | None = None,
    device: str | torch.device | None = None,
    materialize: bool = False,
    progress: bool = False,
) -> DiversityReport:
    """Measure a model's diversity over a dataset of ``(image, ...)`` samples.

    Args:
        model: Any classifier (timm or not); put in eval mode for the pass and restored afterwards.
        data: A dataset (sharded over DDP ranks here) or a ready loader.
        layers: Modules whose pooled outputs are measured (default: timm's ``feature_info`` stages, plus
            ``"penultimate"``, the classifier's input).
        weights: Weight metrics (default: all registered; ``[]`` for none).
        features: Feature metrics (default: all registered; ``[]`` for none).
        batch_size: Loader batch size when ``data`` is a dataset.
        max_batches: Stop after this many batches.
        device: Where to run (default: the model's device).
        materialize: Keep all features and compute at the end (reference path; memory grows with the dataset).
        progress: Show a tqdm bar.
    """
    _check_names(weights, WEIGHT_METRICS, "weight")
    _check_names(features, FEATURE_METRICS, "feature")
    layers = list(layers) if layers else _default_layers(model)
    feature_names = list(FEATURE_METRICS if features is None else features)
    weight_names = list(WEIGHT_METRICS if weights is None else weights)
    if device is None:
        param = next(model.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
    device = torch.device(device)
    if isinstance(data, DataLoader):
        loader = data
    else:
        loader = DataLoader(data, batch_size=batch_size, sampler=ShardSampler(len(data)), collate_fn=SkippingCollate())
    overall: dict[str, float] = {}
    per_layer: dict[str, dict[str, float]] = {}
    if weight_names:
        w_overall, w_layers = weight_metrics(model, weight_names)
        overall.update(w_overall)
        per_layer.update(w_layers)
    images = 0
    skipped: list[Skipped] = []
    if feature_names:
        was_training = model.training
        model.eval()
        collector = FeatureCollector(model, layers, materialize=materialize)
        try:
            from tqdm.auto import tqdm

            bar = tqdm(loader, desc="diversity", disable=not progress or not du.is_main_process(), leave=False)
            for i, batch in enumerate(bar):
                if max_batches is not None and i >= max_batches:
                    break
                if isinstance(loader.collate_fn, SkippingCollate):
                    batch, bad = batch
                    skipped += bad
                if batch is None:
                    continue
                x = batch[0] if isinstance(batch, list | tuple) else batch
                model(x.to(device, non_blocking=True))
                images += x.shape[0]
            covs = collector.covariances()
        finally:
            collector.remove()
            model.train(was_training)
        images = int(du.all_reduce_sum(torch.tensor([float(images)], dtype=torch.float64))[0].item())
        skipped = gather_skipped(skipped)
        for name, cov in covs.items():
            per_layer.setdefault(name, {}).update(feature_metrics(cov, feature_names))
        top = PENULTIMATE if PENULTIMATE in covs else layers[-1]
        overall.update({k: per_layer[top][k] for k in feature_names})
    return DiversityReport(overall=overall, per_layer=per_layer, images=images, skipped=skipped)
