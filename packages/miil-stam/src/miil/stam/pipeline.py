"""Glue between a STAM recipe and the core engine: model, clip pipeline, datasets, training, evaluation, loading.

Paper: STAM (arXiv 2103.13915). Training uses :class:`miil.core.train.Trainer` (cross-entropy, optionally with
knowledge distillation from a teacher STAM as in the paper's improved results; DDP under torchrun). Evaluation runs
miil-core's one loop (:func:`miil.core.evaluate.evaluate`): top-1 / top-5 over every readable video of the set, the
videos that could not be read reported by name and reason (the original loader silently dropped ~40% of Kinetics-400
validation, STAM issue #7), in the precision the run validated in. Multi-view evaluation averages the softmax of the
views.

Data formats, as the datasets are distributed (``--data-format`` / ``--data-root``; :func:`data_source` fills in
the format's defaults):

- ``kinetics``: ``annotations/{train,validate}.csv`` (``label,youtube_id,time_start,time_end,split``; ``val.csv``
  also found) and the clips in ``train/`` and ``val/`` (flat, or one folder per label); without a CSV, the label
  folders give the classes. Splits: ``train`` / ``val``.
- ``ucf101``: ``UCF-101/<Class>/*.avi`` (or the classes directly under the root) and ``ucfTrainTestlist/``; the
  splits are the official folds ``1``, ``2``, ``3`` (training list / test list of that fold).
- ``csv``: ``path,label`` tables (paths relative to the root), ``<split>.csv`` under the root unless given.
- ``folder``: ``<root>/<split>/<class>/<video>`` with splits ``train`` / ``val`` (``.`` for the root itself).

Run folders and converted checkpoints carry a JSON sidecar with the recipe (``config``) and, in ``run_info``, the
model arguments, the class names and the data the run validated on, so ``validate`` and ``infer`` rebuild the exact
model and clip pipeline.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import Dataset

from miil.core import distributed as du
from miil.core.cli_args import parse_model_kwargs
from miil.core.errors import UserError
from miil.core.evaluate import EvalReport
from miil.core.evaluate import evaluate as core_evaluate
from miil.core.io import extract_state_dict, load_checkpoint, load_into
from miil.core.losses import distillation_loss
from miil.core.metrics import AccuracyMeter
from miil.core.train import Trainer, TrainResult, load_run_weights

from .data import KineticsDataset, UCF101Dataset, VideoCSVDataset, VideoDataset, VideoFolderDataset
from .models import STAM, convert_original_checkpoint
from .recipes import DATA_FORMATS, STAMRecipe
from .video import ClipSampling, VideoTransform

__all__ = [
    "DATA_FORMATS",
    "NORMALIZATIONS",
    "DataSource",
    "TrainedSTAM",
    "build_dataset",
    "build_model",
    "clip_sampling",
    "data_source",
    "distillation_step",
    "eval_precision",
    "evaluate_videos",
    "frame_transform",
    "load_trained",
    "load_weights",
    "model_config",
    "multiview_eval_fn",
    "original_head_classes",
    "recipe_from_dict",
    "train",
]

NORMALIZATIONS: dict[str, tuple[tuple[float, ...], tuple[float, ...]] | None] = {
    "none": None,
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    "inception": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
}
_DEFAULT_SPLITS = {
    "kinetics": ("train", "val"),
    "ucf101": ("1", "1"),
    "csv": ("train", "val"),
    "folder": ("train", "val"),
}


# --------------------------------------------------------------------------------------------------- model


def model_config(recipe: STAMRecipe, *, num_classes: int | None = None) -> dict[str, Any]:
    """JSON-ready :class:`STAM` arguments of a recipe (stored with every checkpoint).

    Args:
        recipe: The recipe.
        num_classes: Overrides ``recipe.num_classes`` (e.g. the number of classes found in the data).
    """
    try:
        kwargs = parse_model_kwargs(recipe.model_kwargs or "{}")
    except UserError as err:
        raise UserError(f"recipe field model_kwargs: {err}") from None
    kwargs.setdefault("img_size", recipe.img_size)
    return {
        "spatial": recipe.model,
        "spatial_kwargs": kwargs,
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


def _whole_model_state(path: str | os.PathLike, model: STAM) -> dict[str, torch.Tensor] | None:
    """The file's weights as ``model``'s state dict when it holds a whole STAM (ours or the original's), else None."""
    obj = load_checkpoint(path)
    state = extract_state_dict(obj, key="model" if isinstance(obj, dict) and "model" in obj else None)
    keys = {k.removeprefix("module.") for k in state}
    if any(k.startswith("aggregate.") for k in keys):  # the original release's layout
        return convert_original_checkpoint(obj, model)
    if any(k.startswith("spatial.") for k in keys) and any(k.startswith(("temporal.", "head.")) for k in keys):
        return {k.removeprefix("module."): v for k, v in state.items()}
    return None


def build_model(config: dict[str, Any], *, recipe: STAMRecipe | None = None) -> STAM:
    """A :class:`STAM` from :func:`model_config` arguments; with ``recipe``, also its starting weights.

    ``recipe.pretrained`` loads timm's weights for the frame model; ``recipe.init_checkpoint`` loads local weights:
    a whole STAM (ours, or an original release checkpoint; a head for other classes is kept fresh) or the frame
    model alone (timm layout, e.g. an ImageNet-21K ViT).
    """
    pretrained = bool(recipe.pretrained) if recipe is not None else False
    model = STAM(**config, spatial_pretrained=pretrained)
    if recipe is not None and recipe.init_checkpoint:
        whole = _whole_model_state(recipe.init_checkpoint, model)
        if whole is None:
            model.spatial = _load_spatial(model.spatial, recipe.init_checkpoint)
        else:
            own = model.state_dict()
            fresh = [k for k in ("head.weight", "head.bias") if k in whole and whole[k].shape != own[k].shape]
            load_into(model, {**whole, **{k: own[k] for k in fresh}})
    if recipe is not None and recipe.grad_checkpointing:
        model.set_grad_checkpointing(True)
    return model


def _load_spatial(spatial: nn.Module, path: str | os.PathLike) -> nn.Module:
    from miil.core.backbones import create_backbone

    return create_backbone(spatial, checkpoint=path)


_LEGACY_FIELDS = {
    "spatial": "model",
    "spatial_kwargs": "model_kwargs",
    "spatial_pretrained": "pretrained",
    "spatial_checkpoint": "init_checkpoint",
    "teacher": "teacher_checkpoint",
    "kd_alpha": "kd_weight",
}


def recipe_from_dict(values: dict[str, Any], base: STAMRecipe | None = None) -> STAMRecipe:
    """A recipe from a sidecar's ``config`` dict (unknown keys ignored, lists back to tuples, earlier names mapped)."""
    base = base or STAMRecipe()
    names = {f.name for f in dataclasses.fields(base)}
    values = {_LEGACY_FIELDS.get(k, k): v for k, v in values.items()}
    if isinstance(values.get("model_kwargs"), dict):
        values["model_kwargs"] = json.dumps(values["model_kwargs"])
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
        raise UserError(f"--normalize must be one of {list(NORMALIZATIONS)}, got {recipe.normalize!r}")
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
    """Where one split's videos and labels are.

    Args:
        format: ``folder`` (``root/<class>/<video>``), ``kinetics`` (class folders, or ``labels`` = the official
            CSV), ``ucf101`` (``labels`` = the ucfTrainTestlist folder) or ``csv`` (``labels`` = a path,label table).
        root: Folder with the videos (the split's folder, as :func:`data_source` resolves it).
        labels: Label file or folder, as the format needs.
        subset: ``ucf101``: ``train`` or ``test``.
        fold: ``ucf101``: split 1, 2 or 3.
    """

    format: str
    root: str
    labels: str | None = None
    subset: str = "train"
    fold: int = 1


def _first(*candidates: Path) -> Path | None:
    return next((c for c in candidates if c.exists()), None)


def data_source(
    data_format: str,
    data_root: str | os.PathLike | None,
    *,
    split: str | None = None,
    labels: str | os.PathLike | None = None,
    training: bool,
) -> DataSource | None:
    """One split of a dataset as it is distributed, the format's defaults filling what is not given.

    Args:
        data_format: One of :data:`DATA_FORMATS`.
        data_root: The dataset's top folder.
        split: ``--train-split`` / ``--val-split`` (default: the format's, see the module docstring).
        labels: ``--train-labels`` / ``--val-labels`` (default: where the format keeps them).
        training: The training split (else the validation split).

    Returns:
        The source, or ``None`` for a validation split that is absent where the format's default puts it (the run
        then trains without validation).

    Raises:
        UserError: An unknown format, a missing root, or a split / label file that is not there.
    """
    if data_format not in DATA_FORMATS:
        raise UserError(f"--data-format {data_format!r} is not one of {', '.join(DATA_FORMATS)}")
    if not data_root:
        raise UserError(f"--data-root is needed: the top folder of the {data_format} dataset")
    root = Path(data_root)
    if not root.is_dir():
        raise UserError(f"--data-root {root} is not a folder")
    given = split is not None
    split = str(split) if given else _DEFAULT_SPLITS[data_format][0 if training else 1]
    role = "train" if training else "val"
    optional = not training and not given and labels is None

    if data_format == "ucf101":
        try:
            fold = int(split)
        except ValueError:
            raise UserError(f"--{role}-split {split!r}: the UCF-101 splits are the folds 1, 2 and 3") from None
        nested = root / "ucfTrainTestlist" / "ucfTrainTestlist"  # how some archives unpack
        lists = Path(labels) if labels else _first(root / "ucfTrainTestlist", nested)
        if lists is None:
            raise UserError(f"no ucfTrainTestlist folder under {root}: give it with --{role}-labels")
        videos = _first(root / "UCF-101") or root
        return DataSource("ucf101", str(videos), str(lists), subset="train" if training else "test", fold=fold)

    if data_format == "csv":
        table = Path(labels) if labels else root / f"{split}.csv"
        if not table.is_file():
            if optional:
                return None
            raise UserError(f"no label table {table}: give the path,label CSV with --{role}-labels")
        return DataSource("csv", str(root), str(table))

    folder = root if split == "." else root / split
    if data_format == "kinetics":
        if not folder.is_dir() and not training and not given:
            folder = _first(root / "validate", root / "valid") or folder
        if labels:
            csv_file: Path | None = Path(labels)
        else:
            names = (f"{split}.csv",) + (("validate.csv", "val.csv") if not training else ())
            csv_file = _first(*(root / "annotations" / n for n in names), *(root / n for n in names))
        if not folder.is_dir():
            if optional:
                return None
            raise UserError(f"--{role}-split {split!r}: no folder {folder} with the clips")
        return DataSource("kinetics", str(folder), str(csv_file) if csv_file else None)

    if not folder.is_dir():
        if optional:
            return None
        raise UserError(f"--{role}-split {split!r}: no folder {folder} (class folders: <data-root>/<split>/<class>/)")
    return DataSource("folder", str(folder))


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
            raise UserError("ucf101 needs the ucfTrainTestlist folder (--train-labels / --val-labels)")
        ds = UCF101Dataset(source.root, source.labels, fold=source.fold, subset=source.subset, **kw)
        if classes is not None and list(classes) != ds.classes:
            raise UserError("the UCF-101 classInd.txt classes differ from the model's classes")
        return ds
    if source.format == "csv":
        if not source.labels:
            raise UserError("the csv format needs a path,label table (--train-labels / --val-labels)")
        return VideoCSVDataset(source.labels, source.root, classes=classes, **kw)
    raise UserError(f"--data-format must be one of {DATA_FORMATS}, got {source.format!r}")


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
        alpha: Weight of the distillation term in [0, 1] (``--kd-weight``).
        temperature: Distillation temperature.
        label_smoothing: Label smoothing of the cross-entropy.
    """
    if not 0.0 <= alpha <= 1.0:
        raise UserError(f"--kd-weight must be in [0, 1], got {alpha}")
    if alpha > 0 and teacher is None:
        raise UserError("--kd-weight > 0 needs a teacher: --teacher-checkpoint RUN_OR_FILE")
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


@dataclass
class TrainedSTAM:
    """A trained STAM with what is needed to use it.

    Args:
        model: The model (eval mode).
        recipe: Its recipe (clip sampling, frame transform, batch size).
        classes: Class names by label (``"0"``..``"C-1"`` when the weights name none).
        info: The sidecar's ``run_info`` (``model``, ``classes``, ``data``, ``recipe``...).
        eval_precision: The precision its run validated in ("fp32" when unknown).
    """

    model: STAM
    recipe: STAMRecipe
    classes: list[str]
    info: dict[str, Any] = field(default_factory=dict)
    eval_precision: str = "fp32"


def _sidecar_of(weights: Path) -> dict[str, Any]:
    """The JSON that describes a weights file: ``<name>.json`` beside it, else the ``config.json`` of its run."""
    for candidate in [weights.with_suffix(".json"), *(p / "config.json" for p in list(weights.parents)[:3])]:
        if candidate.is_file():
            return json.loads(candidate.read_text(encoding="utf-8"))
    raise UserError(
        f"{weights} has no sidecar (no {weights.with_suffix('.json').name} beside it, no run's config.json above it): "
        "give a run folder, a file inside one, or a file written by miil stam convert"
    )


def original_head_classes(path: str | os.PathLike) -> int:
    """The class count of an original STAM checkpoint, from its head."""
    obj = load_checkpoint(path)
    state = extract_state_dict(obj, key="model" if isinstance(obj, dict) and "model" in obj else None)
    head = next((v for k, v in state.items() if k.removeprefix("module.") == "head.weight"), None)
    if head is None or head.ndim != 2:
        raise UserError(f"{path} has no head.weight: it is not an original STAM checkpoint")
    return int(head.shape[0])


def load_trained(
    path: str | os.PathLike,
    *,
    recipe: STAMRecipe | None = None,
    num_classes: int | None = None,
) -> tuple[STAM, STAMRecipe, list[str]]:
    """Rebuild a trained STAM with its recipe and class names (:func:`load_weights` without the run facts).

    Args:
        path: A run folder, a ``.safetensors`` file with a sidecar, or an original STAM checkpoint (``.pth``; needs
            ``recipe``).
        recipe: For original checkpoints: the recipe of the model (e.g. ``RECIPES["stam-16"]``).
        num_classes: For original checkpoints: number of classes (default: the checkpoint head's).

    Returns:
        ``(model in eval mode, recipe, class names)``.
    """
    loaded = load_weights(path, recipe=recipe, num_classes=num_classes)
    return loaded.model, loaded.recipe, loaded.classes


def load_weights(
    path: str | os.PathLike, *, recipe: STAMRecipe | None = None, num_classes: int | None = None
) -> TrainedSTAM:
    """What ``--weights`` names, as a :class:`TrainedSTAM`.

    Args:
        path: A run folder (``best.safetensors`` + ``best.json``), a ``.safetensors`` file with its ``.json`` sidecar
            (written by ``miil stam convert``) or inside a run folder, or an original STAM checkpoint (``.pth``;
            needs ``recipe``; converted strictly on the fly, read without unpickling code).
        recipe: For original checkpoints: the recipe of the model.
        num_classes: For original checkpoints: number of classes (default: the checkpoint head's).
    """
    target = Path(path)
    if target.is_dir():
        if not (target / "best.json").is_file():
            raise UserError(f"--weights {target} is a folder but not a finished miil stam run (no best.json)")
        weights, sidecar = load_run_weights(target, "best")
    elif not target.exists():
        raise UserError(f"--weights {target} does not exist")
    elif target.suffix == ".safetensors":
        weights, sidecar = load_checkpoint(target), _sidecar_of(target)
    else:
        if recipe is None:
            raise UserError(f"{target} looks like an original STAM checkpoint: pass its recipe (--recipe stam-16)")
        classes = num_classes or original_head_classes(target)
        model = build_model(model_config(recipe, num_classes=classes))
        load_into(model, convert_original_checkpoint(load_checkpoint(target), model))
        return TrainedSTAM(model.eval(), recipe, [str(i) for i in range(model.num_classes)])
    info = dict(sidecar.get("run_info") or {})
    if "model" not in info:
        raise UserError(f"the sidecar of {target} has no run_info.model: it was not written by miil stam")
    loaded_recipe = recipe_from_dict(sidecar.get("config", {}))
    model = build_model(info["model"])
    load_into(model, weights)
    classes = list(info.get("classes") or [str(i) for i in range(model.num_classes)])
    return TrainedSTAM(model.eval(), loaded_recipe, classes, info, str(sidecar.get("eval_precision") or "fp32"))


def _load_teacher(recipe: STAMRecipe) -> nn.Module | None:
    if recipe.teacher_checkpoint is None:
        return None
    return load_weights(recipe.teacher_checkpoint, recipe=recipe).model


# --------------------------------------------------------------------------------------------------- train


def train(
    recipe: STAMRecipe,
    train_source: DataSource,
    val_source: DataSource | None = None,
    *,
    recipe_name: str | None = None,
    strict: bool = False,
    data_info: dict[str, Any] | None = None,
) -> TrainResult:
    """Train STAM with the core engine; returns the engine's result (best top-1, history, skipped inputs).

    The recipe is checked against the data (class count, a teacher for KD and its classes) before the first step.

    Args:
        recipe: The (resolved) recipe.
        train_source: Training videos.
        val_source: Validation videos (top-1 / top-5 every epoch, keep-best).
        recipe_name: Name stored with the run.
        strict: Raise on unreadable videos instead of skipping and counting them.
        data_info: The data options, stored with the run (``validate`` uses them by default).
    """
    train_ds = build_dataset(recipe, train_source, training=True, strict=strict)
    val_ds = None
    if val_source is not None:
        val_ds = build_dataset(recipe, val_source, training=False, classes=train_ds.classes, strict=strict)
    num_classes = recipe.num_classes or len(train_ds.classes)
    if num_classes != len(train_ds.classes):
        raise UserError(
            f"--num-classes {recipe.num_classes} does not fit the training data, which has {len(train_ds.classes)} "
            "classes; pass --num-classes 0 to take them from the data"
        )
    teacher = _load_teacher(recipe)
    if teacher is not None and getattr(teacher, "num_classes", num_classes) != num_classes:
        raise UserError(
            f"the teacher {recipe.teacher_checkpoint} has {teacher.num_classes} classes, the data {num_classes}: "
            "distil from a teacher trained on the same classes"
        )
    step = distillation_step(
        teacher, alpha=recipe.kd_weight, temperature=recipe.kd_temperature, label_smoothing=recipe.label_smoothing
    )
    config = model_config(recipe, num_classes=num_classes)
    model = build_model(config, recipe=recipe)
    trainer = Trainer(
        model,
        nn.CrossEntropyLoss(),
        train_ds,
        recipe,
        val_dataset=val_ds,
        meter=AccuracyMeter(topk=(1, 5)),
        step_fn=step,
        eval_fn=multiview_eval_fn,
        run_info={"recipe": recipe_name, "classes": train_ds.classes, "model": config, "data": data_info or {}},
    )
    return trainer.fit()


# --------------------------------------------------------------------------------------------------- evaluate


def evaluate_videos(
    model: nn.Module,
    dataset: Dataset,
    *,
    batch_size: int = 8,
    num_workers: int = 0,
    device: str | torch.device = "auto",
    precision: str = "fp32",
    progress: bool = False,
    loss: nn.Module | None = None,
) -> EvalReport:
    """Top-1 / top-5 accuracy of ``model`` over every readable video of ``dataset`` (sharded over torchrun ranks).

    Runs miil-core's evaluation loop with the meter and step the engine validates with, so a run's ``validate``
    gives the numbers that chose its best weights. Top-5 is left out when there are fewer than 5 classes.

    Args:
        model: The classifier (eval mode is set here).
        dataset: Samples ``(clip or views, label)``; unreadable ones come as ``Skipped`` records and are reported.
        batch_size: Videos per batch per process.
        num_workers: Data-loader workers.
        device: ``auto``, ``cpu``, ``cuda`` ...
        precision: "fp32", "bf16" or "fp16" (the run's ``eval_precision`` reproduces its validation).
        progress: tqdm bar on rank 0.
        loss: Also report the mean of this loss on the step's outputs (the engine reports the cross-entropy).
    """
    dev = du.init_distributed(device) if not isinstance(device, torch.device) else device
    return core_evaluate(
        model.to(dev),
        dataset,
        meter=AccuracyMeter(topk=(1, 5)),
        eval_fn=multiview_eval_fn,
        loss_fn=loss,
        device=dev,
        precision=precision,
        batch_size=batch_size,
        num_workers=num_workers,
        progress=progress,
        desc="validate",
    )


def eval_precision(stored: str | None, *, amp: bool | None, amp_dtype: str, device: torch.device) -> str:
    """The precision ``validate`` / ``infer`` run in: the run's own unless ``--amp`` says otherwise.

    Args:
        stored: The run's ``eval_precision`` (None: fp32).
        amp: ``--amp`` (None: not given).
        amp_dtype: ``--amp-dtype`` (``auto``: fp16 on CUDA, none on the CPU, as in training).
        device: Where the model runs.
    """
    if amp is None:
        return stored or "fp32"
    if not amp:
        return "fp32"
    if amp_dtype == "auto":
        return "fp16" if device.type == "cuda" else "fp32"
    return {"bfloat16": "bf16", "float16": "fp16"}[amp_dtype]
