"""``miil in21k validate`` and ``infer`` on miil-core's evaluation loop: semantic accuracy and hierarchical labels.

Paper: "ImageNet-21K Pretraining for the Masses", Ridnik et al. (arXiv 2104.10972): a semantic-softmax model is
scored by semantic accuracy (every trained level of the WordNet tree, weighted by its valid samples) and read level by
level at inference (the top class of each level above 0.5, the original ``visualize_detector.py``); a fine-tuned model
by top-1 / top-5. Both verbs run through :func:`miil.core.evaluate.evaluate` (progress bar, shards over torchrun
ranks, unreadable inputs skipped and reported) in the precision the run validated in, so ``validate`` gives a run's
best weights exactly the metric that selected them.

Weights (``--weights``): a run folder of ``miil in21k train`` (``best.safetensors``, ``best.json``, ``tree.json.gz``);
a ``.safetensors`` with its ``.json`` sidecar (``best.json``, or what ``miil in21k convert`` writes); a checkpoint in
a run's ``checkpoints/`` (its ``config.json``); or any other weights file (a released ``*_miil_21k.pth``) with
``--model``, mapped strictly. ``--model`` with ``--pretrained`` takes timm's weights instead.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from timm.data import resolve_data_config
from torch.utils.data import Dataset

from miil.core.backbones import create_backbone
from miil.core.data import ImageFolderDataset, Skipped, UnreadablePolicy
from miil.core.errors import UserError
from miil.core.evaluate import EvalReport, PredictionMeter, evaluate
from miil.core.io import load_checkpoint, load_into
from miil.core.metrics import AccuracyMeter

from .data import TreeImageFolder, in21k_eval_transform
from .hierarchy import SemanticHierarchy
from .inference import hierarchical_predict
from .metrics import SemanticAccuracyMeter
from .models import convert_original_checkpoint
from .train import TREE_FILE
from .tree import SemanticTree, load_tree

__all__ = ["ImageFiles", "TrainedModel", "load_trained_model", "predict_images", "validate_model"]


@dataclass
class TrainedModel:
    """A model ready for evaluation, with what is needed to feed it and read its outputs.

    Args:
        model: The network (evaluation mode).
        tree: Its class tree (semantic-softmax models), or ``None`` for a fine-tuned classifier.
        classes: Class names of a fine-tuned classifier.
        mean: Input normalisation mean.
        std: Input normalisation std.
        img_size: Squish size.
        precision: The precision the run validated in (``None`` when unknown: fp32).
        batch_size: The run's validation batch size (``None`` when unknown).
        include_deepest: The run trained the deepest level.
        source: The weights, as given.
    """

    model: nn.Module
    tree: SemanticTree | None
    classes: list[str] | None
    mean: list[float]
    std: list[float]
    img_size: int
    precision: str | None = None
    batch_size: int | None = None
    include_deepest: bool = False
    source: str = ""


def _sidecar(weights: Path) -> tuple[Path, dict[str, Any] | None]:
    """``(weights file, its sidecar or None)`` for a ``--weights`` path."""
    if weights.is_dir():
        file, meta = weights / "best.safetensors", weights / "best.json"
        if not file.is_file() or not meta.is_file():
            raise UserError(f"--weights {weights} is not a finished run: best.safetensors / best.json are missing")
        return file, _read_json(meta)
    if not weights.is_file():
        raise UserError(f"--weights {weights} does not exist")
    for meta in (weights.with_suffix(".json"), weights.parent.parent / "config.json"):
        if meta.is_file() and (meta.parent == weights.parent or weights.parent.name == "checkpoints"):
            return weights, _read_json(meta)
    return weights, None


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UserError(f"sidecar {path} is not readable JSON ({type(err).__name__}: {err})") from None


def _run_tree(folder: Path, run_info: dict[str, Any], tree: str | None) -> SemanticTree:
    if tree is not None:
        return load_tree(tree)
    if (folder / TREE_FILE).is_file():
        return load_tree(folder / TREE_FILE)
    return load_tree(run_info.get("tree") or "fall11")


def load_trained_model(
    weights: str | os.PathLike | None = None,
    *,
    model: str | None = None,
    pretrained: bool = False,
    tree: str | None = None,
    model_kwargs: dict[str, Any] | None = None,
    device: torch.device | str = "cpu",
) -> TrainedModel:
    """A model for ``validate`` / ``infer``: from ``--weights`` (see the module docstring) or timm's pretrained weights.

    Args:
        weights: Run folder or weights file.
        model: timm model name, for weights without a sidecar or with ``pretrained``.
        pretrained: Use timm's weights of ``model`` (e.g. ``tresnet_m.miil_in21k``; hub download).
        tree: Tree of the model's classes (default: the run's, or fall11).
        model_kwargs: Extra ``timm.create_model`` arguments (default: the run's).
        device: Where the model goes.
    """
    if weights is None:
        if model is None or not pretrained:
            raise UserError("pass --weights (a run folder or a weights file), or --model NAME with --pretrained")
        tree_obj = load_tree(tree or "fall11")
        net = create_backbone(model, pretrained=True, num_classes=len(tree_obj), **(model_kwargs or {}))
        return _bare(net, tree_obj, str(model), device)
    file, meta = _sidecar(Path(weights))
    if meta is None:
        if model is None:
            raise UserError(
                f"--weights {weights} has no sidecar (.json) naming its model: pass --model NAME (and --tree if its "
                "classes are not fall11's)"
            )
        tree_obj = load_tree(tree or "fall11")
        net = create_backbone(model, num_classes=len(tree_obj), **(model_kwargs or {}))
        net.load_state_dict(convert_original_checkpoint(file, net), strict=True)
        return _bare(net, tree_obj, str(weights), device)
    config, run_info = meta.get("config", {}), meta.get("run_info", {})
    if "model" not in config or "num_classes" not in run_info:
        raise UserError(f"the sidecar of {file} names no model or class count; is it a `miil in21k` run?")
    kwargs = model_kwargs if model_kwargs is not None else run_info.get("model_kwargs") or {}
    net = create_backbone(config["model"], num_classes=int(run_info["num_classes"]), **kwargs)
    load_into(net, load_checkpoint(file))
    task_tree = None if run_info.get("task") == "transfer" else _run_tree(file.parent, run_info, tree)
    if task_tree is not None and len(task_tree) != int(run_info["num_classes"]):
        raise UserError(f"--tree has {len(task_tree)} classes, the model {run_info['num_classes']}: pick its tree")
    batch = config.get("eval_batch_size") or (2 * config["batch_size"] if config.get("batch_size") else None)
    return TrainedModel(
        net.to(device).eval(),
        task_tree,
        run_info.get("classes") if task_tree is None else None,
        list(run_info.get("mean", (0.0, 0.0, 0.0))),
        list(run_info.get("std", (1.0, 1.0, 1.0))),
        int(config.get("img_size", 224)),
        meta.get("eval_precision"),
        batch,
        bool(config.get("include_deepest", False)),
        str(weights),
    )


def _bare(net: nn.Module, tree: SemanticTree, source: str, device: torch.device | str) -> TrainedModel:
    cfg = resolve_data_config({}, model=net)
    return TrainedModel(
        net.to(device).eval(),
        tree,
        None,
        list(cfg["mean"]),
        list(cfg["std"]),
        int(cfg["input_size"][-1]),
        source=source,
    )


def _transform(trained: TrainedModel, img_size: int | None) -> Callable:
    # The training engine's evaluation transform (squish, [0, 1], the run's mean / std).
    return in21k_eval_transform(img_size or trained.img_size, mean=trained.mean, std=trained.std)


def validate_model(
    trained: TrainedModel,
    val_dir: str | os.PathLike,
    *,
    device: torch.device,
    precision: str,
    batch_size: int,
    img_size: int | None = None,
    include_deepest: bool | None = None,
    num_workers: int = 0,
    progress: bool = True,
    strict: bool = False,
) -> EvalReport:
    """Semantic accuracy (and flat / per-level top-1) of a tree model, or top-1 / top-5 of a classifier.

    Args:
        trained: From :func:`load_trained_model`.
        val_dir: Folder of class folders.
        device: Where the model runs.
        precision: "fp32", "bf16" or "fp16".
        batch_size: Images per batch.
        img_size: Squish size (default: the run's).
        include_deepest: Score the deepest level too (default: as the run trained).
        num_workers: Loader processes.
        progress: Progress bar on rank 0.
        strict: Stop at the first unreadable image.
    """
    transform = _transform(trained, img_size)
    if trained.tree is not None:
        dataset: Dataset = TreeImageFolder(val_dir, trained.tree, transform=transform, strict=strict)
        deepest = trained.include_deepest if include_deepest is None else include_deepest
        meter: Any = SemanticAccuracyMeter(SemanticHierarchy(trained.tree, include_deepest=deepest))
    else:
        dataset = ImageFolderDataset(val_dir, classes=trained.classes, transform=transform, strict=strict)
        meter = AccuracyMeter(topk=(1, 5))
    return evaluate(
        trained.model,
        dataset,
        meter=meter,
        device=device,
        precision=precision,
        batch_size=batch_size,
        num_workers=num_workers,
        progress=progress,
    )


class ImageFiles(Dataset):
    """Image files given one by one (``infer`` inputs): ``(image, index)``, or a :class:`Skipped` record.

    Args:
        paths: The files.
        transform: PIL -> tensor.
        strict: Raise on the first unreadable file instead of skipping it.
    """

    def __init__(self, paths: Sequence[str | os.PathLike], transform: Callable, *, strict: bool = False):
        self.paths = [str(p) for p in paths]
        self.transform = transform
        self.policy = UnreadablePolicy(strict=strict)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int] | Skipped:
        img = self.policy.load_image(self.paths[index])
        if img is None:
            return self.policy.skipped_sample(self.paths[index])
        return self.transform(img), index


def predict_images(
    trained: TrainedModel,
    paths: Sequence[str | os.PathLike],
    *,
    device: torch.device,
    precision: str,
    batch_size: int = 32,
    img_size: int | None = None,
    threshold: float = 0.5,
    top_k: int = 5,
    num_workers: int = 0,
    progress: bool = True,
    strict: bool = False,
) -> tuple[list[dict[str, Any]], EvalReport]:
    """Hierarchical labels (tree models) or the top-k classes of image files; unreadable files are skipped.

    Returns:
        ``(one row per readable image: {"image", "labels"}, the evaluation report)``.
    """
    dataset = ImageFiles(paths, _transform(trained, img_size), strict=strict)
    meter = PredictionMeter()
    report = evaluate(
        trained.model,
        dataset,
        meter=meter,
        device=device,
        precision=precision,
        batch_size=batch_size,
        num_workers=num_workers,
        progress=progress,
        desc="infer",
    )
    logits, indices = meter.predictions()
    rows: list[dict[str, Any]] = []
    if len(indices) == 0:
        return rows, report
    tree = trained.tree
    if tree is not None:
        pred = hierarchical_predict(logits, SemanticHierarchy(tree), threshold=threshold)
        for row, index in enumerate(indices.tolist()):
            labels = [
                {"wnid": tree.class_list[c], "name": tree.names[c], "level": tree.depths[c], "prob": round(p, 4)}
                for c, p in pred.labels(row)
            ]
            rows.append({"image": dataset.paths[index], "labels": labels})
        return rows, report
    probs = F.softmax(logits, dim=1)
    top = probs.topk(min(top_k, probs.shape[1]), dim=1)
    names = trained.classes or [str(c) for c in range(probs.shape[1])]
    for row, index in enumerate(indices.tolist()):
        labels = [
            {"class": names[c], "prob": round(p, 4)}
            for c, p in zip(top.indices[row].tolist(), top.values[row].tolist())
        ]
        rows.append({"image": dataset.paths[index], "labels": labels})
    return rows, report
