"""Glue between a STAM recipe and the core engine: model, clip pipeline, datasets, training, evaluation, loading.

Paper: STAM (arXiv 2103.13915). Training uses :class:`miil.core.train.Trainer` (cross-entropy, optionally with
knowledge distillation from a teacher STAM as in the paper's improved results; DDP under torchrun). Evaluation
reports top-1 / top-5 over every video of the set and how many could not be read, so a number is never silently
computed on a subset (the original loader dropped ~40% of Kinetics-400 validation, STAM issue #7). Multi-view
evaluation averages the softmax of the views.

Run directories and converted checkpoints carry a JSON sidecar with the recipe (``config``) and, in ``run_info``,
the model arguments and the class names, so ``validate`` and ``infer`` rebuild the exact model and clip pipeline.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, Sampler
from torch.utils.data._utils.collate import default_collate

from miil.core import distributed as du
from miil.core.io import load_checkpoint, load_into
from miil.core.losses import distillation_loss
from miil.core.metrics import AccuracyMeter
from miil.core.train import Trainer, TrainResult, load_run_weights

from .data import KineticsDataset, UCF101Dataset, VideoCSVDataset, VideoDataset, VideoFolderDataset
from .models import STAM, convert_original_checkpoint
from .recipes import STAMRecipe
from .video import ClipSampling, VideoTransform

__all__ = [
    "DATA_FORMATS",
    "NORMALIZATIONS",
    "DataSource",
    "build_dataset",
    "build_model",
    "clip_sampling",
    "distillation_step",
    "evaluate_videos",
    "frame_transform",
    "load_trained",
    "model_config",
    "multiview_eval_fn",
    "recipe_from_dict",
    "train",
]

DATA_FORMATS = ("folder", "kinetics", "ucf101", "csv")
NORMALIZATIONS: dict[str, tuple[tuple[float, ...], tuple[float, ...]] | None] = {
    "none": None,
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    "inception": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
}


# --------------------------------------------------------------------------------------------------- model


def _spatial_kwargs(recipe: STAMRecipe) -> dict[str, Any]:
    try:
        kwargs = json.loads(recipe.spatial_kwargs or "{}")
    except json.JSONDecodeError as err:
        raise ValueError(f"--spatial-kwargs must be a JSON object, got {recipe.spatial_kwargs!r}: {err}") from None
    if not isinstance(kwargs, dict):
        raise ValueError(f"--spatial-kwargs must be a JSON object, got {recipe.spatial_kwargs!r}")
    kwargs.setdefault("img_size", recipe.img_size)
    return kwargs


def model_config(recipe: STAMRecipe, *, num_classes: int | None = None) -> dict[str, Any]:
    """JSON-ready :class:`STAM` arguments of a recipe (stored with every checkpoint).

    Args:
        recipe: The recipe.
        num_classes: Overrides ``recipe.num_classes`` (e.g. the number of classes found in the data).
    """
    return {
        "spatial": recipe.spatial,
        "spatial_kwargs": _spatial_kwargs(recipe),
        "spatial_norm_eps": recipe.spatial_norm_eps,
        "num_classes": int(num_classes if num_classes is not None else recipe.num_classes),
        "num_frames": recipe.num_frames,
        "aggregation": recipe.aggregation,
        "temporal_depth": recipe.temporal_depth,
        "temporal_heads": recipe.temporal_heads,
        "temporal_mlp_dim": recipe.temporal_mlp_dim,
        "temporal_dropout": recipe.temporal_dropout,
        "temporal_activation": recipe.temporal_activation,
        "norm_first": recipe.norm_first,
        "temporal_pos_std": recipe.temporal_pos_std,
    }


def build_model(config: dict[str, Any], *, recipe: STAMRecipe | None = None) -> STAM:
    """A :class:`STAM` from :func:`model_config` arguments; with ``recipe``, also its spatial weights options."""
    extra: dict[str, Any] = {}
    if recipe is not None:
        extra = {"spatial_pretrained": recipe.spatial_pretrained, "spatial_checkpoint": recipe.spatial_checkpoint}
    model = STAM(**config, **extra)
    if recipe is not None and recipe.grad_checkpointing:
        model.set_grad_checkpointing(True)
    return model


def recipe_from_dict(values: dict[str, Any], base: STAMRecipe | None = None) -> STAMRecipe:
    """A recipe from a sidecar's ``config`` dict (unknown keys ignored, lists back to tuples)."""
    base = base or STAMRecipe()
    names = {f.name for f in dataclasses.fields(base)}
    changes = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items() if k in names}
    return dataclasses.replace(base, **changes)


# --------------------------------------------------------------------------------------------------- clips


def clip_sampling(recipe: STAMRecipe, *, training: bool) -> ClipSampling:
    """The clip sampling of a recipe for training or evaluation."""
    return ClipSampling(
        num_frames=recipe.num_frames,
        mode=recipe.train_sampling if training else recipe.sampling,
        frame_rate=recipe.frame_rate,
        num_views=1 if training else recipe.eval_views,
        short=recipe.short_video,
    )


def frame_transform(recipe: STAMRecipe, *, training: bool) -> VideoTransform:
    """The frame transform of a recipe for training or evaluation."""
    if recipe.normalize not in NORMALIZATIONS:
        raise ValueError(f"normalize must be one of {list(NORMALIZATIONS)}, got {recipe.normalize!r}")
    stats = NORMALIZATIONS[recipe.normalize]
    mean, std = stats if stats is not None else (None, None)
    if training:
        return VideoTransform(
            size=recipe.img_size,
            crop=recipe.train_crop,
            zoom=recipe.crop_zoom,
            scale=recipe.train_scale,
            hflip=recipe.hflip,
            mean=mean,
            std=std,
        )
    return VideoTransform(
        size=recipe.img_size,
        crop=recipe.eval_crop,
        zoom=recipe.crop_zoom,
        spatial_views=recipe.spatial_views,
        mean=mean,
        std=std,
    )


@dataclass(frozen=True)
class DataSource:
    """Where a split's videos and labels are.

    Args:
        format: ``folder`` (root/<class>/<video>), ``kinetics`` (folders, or ``labels`` = official CSV),
            ``ucf101`` (``labels`` = the ucfTrainTestlist folder) or ``csv`` (``labels`` = path,label table).
        root: Folder with the videos.
        labels: Label file or folder, as the format needs.
        subset: ``ucf101``: ``train`` or ``test``.
        fold: ``ucf101``: split 1, 2 or 3.
    """

    format: str
    root: str
    labels: str | None = None
    subset: str = "train"
    fold: int = 1


def build_dataset(
    recipe: STAMRecipe,
    source: DataSource,
    *,
    training: bool,
    classes: Sequence[str] | None = None,
    strict: bool = False,
) -> VideoDataset:
    """The dataset of one split, with the recipe's clip sampling and frame transform.

    Args:
        recipe: The recipe.
        source: The split's files.
        training: Training sampling and augmentation.
        classes: Class names in label order (validation uses the training run's).
        strict: Raise on unreadable videos instead of skipping them.
    """
    kw = dict(
        sampling=clip_sampling(recipe, training=training),
        transform=frame_transform(recipe, training=training),
        training=training,
        backend=recipe.backend,
        strict=strict,
        decode_threads=recipe.decode_threads,
    )
    if source.format == "folder":
        return VideoFolderDataset(source.root, classes=classes, **kw)
    if source.format == "kinetics":
        return KineticsDataset(source.root, csv_file=source.labels, classes=classes, **kw)
    if source.format == "ucf101":
        if not source.labels:
            raise ValueError("ucf101 needs the ucfTrainTestlist folder as its labels (--train-labels/--labels)")
        ds = UCF101Dataset(source.root, source.labels, fold=source.fold, subset=source.subset, **kw)
        if classes is not None and list(classes) != ds.classes:
            raise ValueError("the UCF-101 classInd.txt classes differ from the model's classes")
        return ds
    if source.format == "csv":
        if not source.labels:
            raise ValueError("the csv format needs a path,label table (--train-labels/--labels)")
        return VideoCSVDataset(source.labels, source.root, classes=classes, **kw)
    raise ValueError(f"data format must be one of {DATA_FORMATS}, got {source.format!r}")


# --------------------------------------------------------------------------------------------------- steps


def multiview_eval_fn(model: nn.Module, batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Evaluation step: ``[B, T, C, H, W]`` clips, or ``[B, V, T, C, H, W]`` views whose softmax is averaged.

    Returns the log of the (averaged) class probabilities, so cross-entropy on it is the views' joint NLL.
    """
    clips, targets = batch[0], batch[1]
    if clips.ndim == 6:
        b, v = clips.shape[:2]
        probs = F.softmax(model(clips.flatten(0, 1)).float(), dim=-1).view(b, v, -1).mean(1)
        return probs.clamp_min(1e-12).log(), targets
    return F.log_softmax(model(clips).float(), dim=-1), targets


def distillation_step(
    teacher: nn.Module | None, *, alpha: float, temperature: float, label_smoothing: float = 0.0
) -> Callable[[nn.Module, Any], torch.Tensor]:
    """Training step ``(1 - alpha) * CE + alpha * KD(student, teacher)`` (plain CE when ``alpha == 0``).

    Args:
        teacher: A trained model seeing the same clips (kept in eval mode, no gradients); needed when ``alpha > 0``.
        alpha: Weight of the distillation term in [0, 1].
        temperature: Distillation temperature.
        label_smoothing: Label smoothing of the cross-entropy.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"kd_alpha must be in [0, 1], got {alpha}")
    if alpha > 0 and teacher is None:
        raise ValueError("kd_alpha > 0 needs a teacher (--teacher)")
    ce = nn.CrossEntropyLoss(label_smoothing=label_smoothing)
    if teacher is not None:
        teacher.eval().requires_grad_(False)

    def step(model: nn.Module, batch: Any) -> torch.Tensor:
        clips, targets = batch[0], batch[1]
        logits = model(clips)
        loss = ce(logits, targets)
        if alpha > 0:
            teacher.to(clips.device)
            with torch.no_grad():
                teacher_logits = teacher(clips)
            loss = (1 - alpha) * loss + alpha * distillation_loss(logits, teacher_logits, temperature=temperature)
        return loss

    return step


# --------------------------------------------------------------------------------------------------- loading


def _sidecar_for(weights: Path) -> Path:
    return weights.with_suffix(".json")


def load_trained(
    path: str | os.PathLike,
    *,
    recipe: STAMRecipe | None = None,
    num_classes: int | None = None,
) -> tuple[STAM, STAMRecipe, list[str]]:
    """Rebuild a trained STAM with its recipe and class names.

    Args:
        path: A run directory (``best.safetensors`` + ``best.json``), a ``.safetensors`` file with its ``.json``
            sidecar (written by ``miil stam convert``), or an original STAM checkpoint (``.pth``; needs ``recipe``
            and is converted strictly on the fly).
        recipe: For original checkpoints: the recipe of the model (e.g. ``RECIPES["STAM-16"]``).
        num_classes: For original checkpoints: number of classes (default: the recipe's).

    Returns:
        ``(model in eval mode, recipe, class names)``; class names are ``"0".."C-1"`` when unknown.
    """
    target = Path(path)
    if target.is_dir():
        if not (target / "best.json").is_file():
            raise FileNotFoundError(f"{target} is not a finished run directory (no best.json)")
        weights, sidecar = load_run_weights(target, "best")
    elif target.suffix == ".safetensors":
        side = _sidecar_for(target)
        if not side.is_file():
            raise FileNotFoundError(f"{target} has no sidecar {side}; convert original weights with miil stam convert")
        weights, sidecar = load_checkpoint(target), json.loads(side.read_text())
    elif target.is_file():
        if recipe is None:
            raise ValueError(f"{target} looks like an original STAM checkpoint: pass its recipe (--recipe STAM-16)")
        model = build_model(model_config(recipe, num_classes=num_classes))
        load_into(model, convert_original_checkpoint(load_checkpoint(target), model))
        classes = [str(i) for i in range(model.num_classes)]
        return model.eval(), recipe, classes
    else:
        raise FileNotFoundError(f"no such run directory or checkpoint: {target}")
    info = sidecar.get("run_info", {})
    if "model" not in info:
        raise ValueError(f"the sidecar of {target} has no run_info.model: it was not written by miil stam")
    loaded_recipe = recipe_from_dict(sidecar.get("config", {}))
    model = build_model(info["model"])
    load_into(model, weights)
    classes = list(info.get("classes") or [str(i) for i in range(model.num_classes)])
    return model.eval(), loaded_recipe, classes


def _load_teacher(recipe: STAMRecipe) -> nn.Module | None:
    if recipe.teacher is None:
        return None
    model, _, _ = load_trained(recipe.teacher, recipe=recipe)
    return model


# --------------------------------------------------------------------------------------------------- train


def train(
    recipe: STAMRecipe,
    train_source: DataSource,
    val_source: DataSource | None = None,
    *,
    recipe_name: str | None = None,
    strict: bool = False,
) -> TrainResult:
    """Train STAM with the core engine; returns the engine's result (best top-1, history, run directory).

    Args:
        recipe: The (resolved) recipe.
        train_source: Training videos.
        val_source: Validation videos (top-1 / top-5 every epoch, keep-best).
        recipe_name: Name stored with the run.
        strict: Raise on unreadable videos instead of skipping and counting them.
    """
    train_ds = build_dataset(recipe, train_source, training=True, strict=strict)
    val_ds = None
    if val_source is not None:
        val_ds = build_dataset(recipe, val_source, training=False, classes=train_ds.classes, strict=strict)
    num_classes = recipe.num_classes or len(train_ds.classes)
    if num_classes != len(train_ds.classes):
        raise ValueError(
            f"the recipe has num_classes={recipe.num_classes} but the training data has {len(train_ds.classes)} "
            "classes; pass --num-classes 0 to take them from the data"
        )
    config = model_config(recipe, num_classes=num_classes)
    model = build_model(config, recipe=recipe)
    step = distillation_step(
        _load_teacher(recipe),
        alpha=recipe.kd_alpha,
        temperature=recipe.kd_temperature,
        label_smoothing=recipe.label_smoothing,
    )
    trainer = Trainer(
        model,
        nn.CrossEntropyLoss(),
        train_ds,
        recipe,
        val_dataset=val_ds,
        meter=AccuracyMeter(topk=(1, 5)),
        step_fn=step,
        eval_fn=multiview_eval_fn,
        run_info={"recipe": recipe_name, "classes": train_ds.classes, "model": config},
    )
    return trainer.fit()


# --------------------------------------------------------------------------------------------------- evaluate


class _Shard(Sampler[int]):
    def __init__(self, n: int, rank: int, world: int):
        self.indices = list(range(rank, n, world))

    def __iter__(self):
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def _collate_readable(samples: list) -> tuple[Any, int]:
    kept = [s for s in samples if s is not None]
    return (default_collate(kept) if kept else None), len(samples) - len(kept)


@torch.no_grad()
def evaluate_videos(
    model: nn.Module,
    dataset: Dataset,
    *,
    batch_size: int = 8,
    num_workers: int = 0,
    device: str | torch.device = "auto",
    topk: Sequence[int] = (1, 5),
    amp: bool = False,
) -> dict[str, float]:
    """Top-k accuracy of ``model`` over every video of ``dataset`` (sharded over torchrun ranks).

    Args:
        model: The classifier (eval mode is set here).
        dataset: Samples ``(clip or views, label)``; unreadable ones (``None``) are counted, not hidden.
        batch_size: Videos per batch per process.
        num_workers: Data-loader workers.
        device: ``auto``, ``cpu``, ``cuda`` ...
        topk: The ``k`` of the reported accuracies.
        amp: Autocast (bf16 on CPU, fp16 on CUDA).

    Returns:
        ``top{k}`` over the readable videos, ``top{k}_all`` counting unreadable videos as misses, and the counts
        ``videos``, ``readable``, ``unreadable``.
    """
    dev = du.init_distributed(device)
    model = model.to(dev).eval()
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=_Shard(len(dataset), du.get_rank(), du.get_world_size()),
        num_workers=num_workers,
        collate_fn=_collate_readable,
    )
    meter = AccuracyMeter(topk=topk)
    readable, unreadable = 0, 0
    dtype = torch.float16 if dev.type == "cuda" else torch.bfloat16
    for batch, n_bad in loader:
        unreadable += n_bad
        if batch is None:
            continue
        clips, targets = batch[0].to(dev), batch[1].to(dev)
        with torch.autocast(device_type=dev.type, dtype=dtype, enabled=amp):
            scores, _ = multiview_eval_fn(model, (clips, targets))
        meter.update(scores.float(), targets)
        readable += len(targets)
    if readable == 0:  # every rank must take part in the meter's gather, even one that read nothing
        meter.update(torch.empty(0, int(getattr(model, "num_classes", 1))), torch.empty(0, dtype=torch.long))
    counts = du.all_reduce_sum(torch.tensor([readable, unreadable], dtype=torch.float64))
    readable, unreadable = int(counts[0].item()), int(counts[1].item())
    result: dict[str, float] = meter.compute() if readable else {}
    for k in topk:
        key = f"top{k}"
        if key in result:
            result[f"{key}_all"] = result[key] * readable / (readable + unreadable)
        else:
            result[key] = math.nan
    result.update({"videos": readable + unreadable, "readable": readable, "unreadable": unreadable})
    return result
