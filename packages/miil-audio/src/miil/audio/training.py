"""Everything between a recipe and ``miil.core.train.Trainer``: model, datasets, loss step, sampler, EMA schedule.

Paper: Gazneli et al., 2022 (arXiv 2204.11479), Sec. 4. The training loop itself is the core's; this module
supplies what EAT's trainer did differently:

- the batch augmentations (:class:`~miil.audio.augment.BatchAugment`) as the engine's ``batch_transform``, and a
  ``step_fn`` that uses the mixed-label BCE on mixed batches and the recipe's loss otherwise;
- AdamW parameter groups with weight decay only on tensors of rank >= 2;
- the EMA decay given per epoch (0.995, 0.01 during the first two epochs) turned into the engine's per-update decay
  at the start of every epoch (via :class:`~miil.audio.data.EpochAwareSampler`, which also tells the augmentations
  when mixing starts);
- the class-balanced sampler for AudioSet;
- starting from earlier weights (ours or the original's), with the position embedding interpolated to the new clip
  length and a fresh head when the classes differ (the original's ``ext_pretrained``).

The recipe is checked against the data before the first step (a multi-label recipe on single-label data, a class
count that does not fit), and evaluation runs miil-core's one loop (:func:`miil.core.evaluate.evaluate`) with the
meter, loss and precision the engine validated with, so ``validate`` reports the metric that chose the run's best
weights.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from torch.utils.data import Dataset, DistributedSampler, Sampler

from miil.core import distributed as du
from miil.core.errors import UserError
from miil.core.evaluate import EvalReport
from miil.core.evaluate import evaluate as core_evaluate
from miil.core.io import KeyMappingError, extract_state_dict, load_checkpoint
from miil.core.layers import rename_legacy_encoder_keys
from miil.core.metrics import AccuracyMeter, MeanAPMeter
from miil.core.train import Trainer, TrainResult, load_run_weights

from .augment.pipeline import BatchAugment
from .convert import config_from_original, convert_original_state_dict, load_original_checkpoint
from .data.datasets import (
    AudioFolderDataset,
    AudioSetDataset,
    ESC50Dataset,
    SpeechCommandsDataset,
    UrbanSound8KDataset,
)
from .data.samplers import DistributedWeightedSampler, EpochAwareSampler
from .eat import EAT, EATConfig, create_eat
from .layers.aggregator import interpolate_pos_embed
from .losses import LabelSmoothingCrossEntropy, mixed_label_bce
from .recipes import DATA_FORMATS, RECIPES, EATRecipe

__all__ = [
    "EATStep",
    "TrainedEAT",
    "build_datasets",
    "build_model",
    "check_recipe_against_data",
    "criterion",
    "eval_precision",
    "evaluate",
    "evaluate_clips",
    "load_pretrained",
    "load_run",
    "load_weights",
    "make_meter",
    "recalibrate_batchnorm",
    "recipe_from_dict",
    "train",
    "train_augment",
    "weight_decay_groups",
]


def build_model(recipe: EATRecipe, *, num_classes: int | None = None) -> EAT:
    """The recipe's EAT (size, down-sampling factors and overrides), randomly initialised.

    Args:
        recipe: The recipe.
        num_classes: Classifier outputs (default: the recipe's).
    """
    overrides: dict[str, Any] = {"ds_factors": tuple(recipe.ds_factors)}
    for name in ("base_channels", "embed_dim", "depth", "num_heads", "mlp_dim"):
        value = getattr(recipe, name)
        if value is not None:
            overrides[name] = value
    return create_eat(recipe.model, num_classes=num_classes or recipe.num_classes, seq_len=recipe.seq_len, **overrides)


def _first(*candidates: Path) -> Path:
    return next((c for c in candidates if c.exists()), candidates[0])


def _folds(text: str, data_format: str, flag: str) -> list[int]:
    """Fold numbers from a split such as ``"1"`` or ``"2,3,4"``."""
    try:
        folds = [int(part) for part in str(text).split(",") if part.strip()]
    except ValueError:
        folds = []
    if not folds:
        raise UserError(f"{flag} {text!r}: the {data_format} splits are fold numbers, e.g. '1' or '2,3,4'")
    return folds


def build_datasets(
    recipe: EATRecipe, *, train: bool = True, val: bool = True, classes: list[str] | None = None
) -> tuple[Dataset | None, Dataset | None]:
    """The recipe's training and validation sets (``None`` for the ones not asked for or not present).

    Splits left unset take the format's defaults (:func:`~miil.audio.recipes.default_splits`): for ESC-50 and
    UrbanSound8K the validation split is the held-out fold and training takes the other folds.

    Args:
        recipe: The recipe (``data_format``, ``data_root``, splits, label files, rate, length, cache, strictness).
        train: Build the training set.
        val: Build the validation set.
        classes: Class names in label order for class-folder data (default: the training set's, else the folders').
    """
    fmt = recipe.data_format
    if fmt not in DATA_FORMATS:
        raise UserError(f"--data-format {fmt!r} is not one of {', '.join(DATA_FORMATS)}")
    if not recipe.data_root:
        raise UserError(f"--data-root is needed: the top folder of the {fmt} dataset, as it is distributed")
    root = Path(recipe.data_root)
    if not root.is_dir():
        raise UserError(f"--data-root {root} is not a folder")
    train_split, val_split = recipe.splits()
    common: dict[str, Any] = dict(
        sample_rate=recipe.sample_rate, seq_len=recipe.seq_len, cache_dir=recipe.cache_dir, strict=recipe.strict
    )

    def folded(cls: type, is_train: bool) -> Dataset:
        held = _folds(val_split, fmt, "--val-split")
        labels = recipe.train_labels if is_train else recipe.val_labels
        if not is_train:
            fold, folds = (held[0], None) if len(held) == 1 else (None, held)
        elif train_split == "rest":
            if len(held) > 1:
                raise UserError(f"--val-split {val_split!r} names several folds: give the training folds too")
            fold, folds = held[0], None
        else:
            fold, folds = held[0], _folds(train_split, fmt, "--train-split")
        return cls(root, fold=fold, train=is_train, folds=folds, meta_file=labels, **common)

    def make(is_train: bool, names: list[str] | None) -> Dataset | None:
        split = train_split if is_train else val_split
        labels = recipe.train_labels if is_train else recipe.val_labels
        flag = "--train-split" if is_train else "--val-split"
        if fmt == "esc50":
            return folded(ESC50Dataset, is_train)
        if fmt == "urbansound8k":
            return folded(UrbanSound8KDataset, is_train)
        if fmt == "speechcommands":
            if split not in SpeechCommandsDataset.SPLITS:
                known = ", ".join(SpeechCommandsDataset.SPLITS)
                raise UserError(f"{flag} {split!r}: the Speech Commands splits are {known}")
            if split == "train" and labels:
                raise UserError(
                    "--train-labels does not apply to Speech Commands: its training set is every clip that "
                    "validation_list.txt and testing_list.txt do not name"
                )
            return SpeechCommandsDataset(root, split=split, list_file=labels, **common)
        if fmt == "audioset":
            segments = Path(labels) if labels else _first(root / "metadata" / f"{split}.csv", root / f"{split}.csv")
            audio = _first(root / "audio" / split, root / split)
            index = _first(root / "metadata" / "class_labels_indices.csv", root / "class_labels_indices.csv")
            return AudioSetDataset(segments, audio, index, train=is_train, **common)
        folder = root / split
        if not folder.is_dir():
            if not is_train and recipe.val_split is None:
                return None  # no validation folder where the format's default puts it: train without validation
            raise UserError(f"{flag} {split!r}: no folder {folder} (class folders: <data-root>/<split>/<class>/)")
        return AudioFolderDataset(folder, train=is_train, classes=names, **common)

    train_set = make(True, classes) if train else None
    val_set = make(False, classes or getattr(train_set, "classes", None)) if val else None
    return train_set, val_set


def check_recipe_against_data(recipe: EATRecipe, dataset: Dataset, *, recipe_name: str | None = None) -> list[str]:
    """Refuse a recipe that does not fit the data, before the first step; returns the data's class names.

    Args:
        recipe: The recipe.
        dataset: The training set (``classes`` and ``multilabel`` are read from it).
        recipe_name: How the messages name the recipe.

    Raises:
        UserError: A multi-label recipe on single-label data or the reverse, or a class count that differs.
    """
    name = f"recipe {recipe_name!r}" if recipe_name else "the recipe"
    data = f"{recipe.data_format} data at {recipe.data_root}" if recipe.data_root else "the training data"
    multilabel = getattr(dataset, "multilabel", None)
    if multilabel is not None and bool(multilabel) != recipe.multilabel:
        if recipe.multilabel:
            single = sorted(n for n, r in RECIPES.items() if r.data_format == recipe.data_format) or sorted(RECIPES)
            raise UserError(
                f"{data} has one class per clip, but {name} trains multi-label (--loss bce): use --recipe "
                f"{' or '.join(single)}, or --loss label_smoothing"
            )
        multi = sorted(n for n, r in RECIPES.items() if r.multilabel)
        raise UserError(
            f"{data} is multi-label, but {name} trains single-label (--loss {recipe.loss}): use --recipe "
            f"{' or '.join(multi)}, or --loss bce"
        )
    classes = list(getattr(dataset, "classes", []) or [])
    if recipe.num_classes and classes and recipe.num_classes != len(classes):
        raise UserError(
            f"--num-classes {recipe.num_classes} does not fit {data}, which has {len(classes)} classes; "
            "pass --num-classes 0 to take the classes from the data"
        )
    return classes


def train_augment(recipe: EATRecipe) -> BatchAugment:
    """The recipe's training-batch augmentation (signal, noise, resampling, mixing from ``mix_start_epoch``).

    Args:
        recipe: The recipe.
    """
    return BatchAugment(recipe.augment_config(), sample_rate=recipe.sample_rate)


def weight_decay_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW groups: ``weight_decay`` on parameters of rank >= 2, none on biases and norm weights.

    Args:
        model: The model.
        weight_decay: Decay of the weight tensors.
    """
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.dim() >= 2 else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def criterion(recipe: EATRecipe, reduction: str = "mean") -> nn.Module:
    """The recipe's loss (label-smoothing CE, CE or BCE) with ``reduction``; the engine validates with ``"mean"``.

    Args:
        recipe: The recipe.
        reduction: "mean", "sum" or "none".
    """
    if recipe.loss == "label_smoothing":
        return LabelSmoothingCrossEntropy(smoothing=recipe.label_smoothing, reduction=reduction)
    if recipe.loss == "ce":
        return nn.CrossEntropyLoss(reduction=reduction)
    if recipe.loss == "bce":
        return nn.BCEWithLogitsLoss(reduction=reduction)
    raise UserError(f"--loss must be label_smoothing, ce or bce, got {recipe.loss!r}")


def make_meter(multilabel: bool) -> Any:
    """The validation meter: mAP for multi-label data, top-1 / top-5 accuracy otherwise (both in percent)."""
    return MeanAPMeter() if multilabel else AccuracyMeter(topk=(1, 5))


class EATStep:
    """The engine's ``step_fn``: the recipe's loss, or the mixed-label BCE when the batch was mixed.

    Args:
        recipe: The recipe (loss, smoothing, reduction, mix threshold).
    """

    def __init__(self, recipe: EATRecipe):
        self.criterion = criterion(recipe, recipe.loss_reduction)
        self.reduction = recipe.loss_reduction
        self.threshold = recipe.mix_threshold

    def __call__(self, model: nn.Module, batch) -> torch.Tensor:
        x, y = batch[0], batch[1]
        mix = batch[2] if len(batch) > 2 else None
        logits = model(x).float()
        if mix is not None:
            return mixed_label_bce(logits, mix, threshold=self.threshold, reduction=self.reduction)
        return self.criterion(logits, y.float() if y.is_floating_point() else y)


def _source_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    obj = load_checkpoint(path)
    key = "model_dict" if isinstance(obj, dict) and "model_dict" in obj else None
    sd = extract_state_dict(obj, key=key)
    if "start.1.weight" in sd or "module.start.1.weight" in sd:  # the original repository's layout
        sd = {k.removeprefix("module."): v for k, v in sd.items()}
        # Only the key layout matters here (the target model has its own head count), and one head fits any width.
        cfg, classes, seq_len = config_from_original(sd, num_heads=1)
        ref = EAT(num_classes=classes, seq_len=max(seq_len, 1), config=cfg)
        return convert_original_state_dict(sd, model=ref)
    return rename_legacy_encoder_keys(sd, "aggregator.")


def load_pretrained(model: EAT, path: str | os.PathLike) -> list[str]:
    """Initialise ``model`` from a checkpoint of another run (ours or the original's) for fine-tuning.

    Every tensor must match, except the position embedding (interpolated to this model's token count) and the
    head (kept fresh when the class count differs).

    Args:
        model: The model to initialise.
        path: ``.safetensors`` of ours, or an original ``best_model.pt`` / ``chkpnt.pt``.

    Returns:
        The keys left at their fresh initialisation (the head when it was reset).
    """
    source = _source_state_dict(path)
    own = model.state_dict()
    out, kept_fresh, mismatched = {}, [], []
    for key, target in own.items():
        value = source.get(key)
        if value is None:
            continue
        if key == "aggregator.pos_embed" and value.shape != target.shape and value.shape[-1] == target.shape[-1]:
            value = interpolate_pos_embed(value, target.shape[1] - 1)
        if value.shape != target.shape:
            if key.startswith("head."):
                kept_fresh.append(key)
                continue
            mismatched.append((key, tuple(value.shape), tuple(target.shape)))
            continue
        out[key] = value
    missing = [k for k in own if k not in out and k not in kept_fresh]
    unexpected = [k for k in source if k not in own]
    if missing or unexpected or mismatched:
        raise KeyMappingError(
            f"cannot initialise {type(model).__name__} from {path}:",
            missing=missing,
            unexpected=unexpected,
            shape_mismatches=mismatched,
        )
    model.load_state_dict({**own, **out}, strict=True)
    return kept_fresh


def train(
    recipe: EATRecipe,
    *,
    train_dataset: Dataset | None = None,
    val_dataset: Dataset | None = None,
    classes: list[str] | None = None,
    run_info: dict[str, Any] | None = None,
) -> TrainResult:
    """Train EAT with ``recipe`` through the core engine (CPU, one GPU, or DDP under torchrun).

    The recipe is checked against the data (:func:`check_recipe_against_data`) before anything is trained.

    Args:
        recipe: The recipe.
        train_dataset: Training set (default: built from the recipe's data options).
        val_dataset: Validation set (default: built from the recipe; may be absent for class folders).
        classes: Class names (default: the training set's ``classes``).
        run_info: Extra facts stored with the run (e.g. the recipe's name under ``"recipe"``).
    """
    if train_dataset is None:
        train_dataset, built_val = build_datasets(recipe)
        val_dataset = val_dataset if val_dataset is not None else built_val
        train_split, val_split = recipe.splits()
        recipe = dataclasses.replace(
            recipe, train_split=train_split, val_split=val_split if val_dataset is not None else None
        )
    found = check_recipe_against_data(recipe, train_dataset, recipe_name=(run_info or {}).get("recipe"))
    classes = list(classes if classes is not None else found)
    num_classes = recipe.num_classes or len(classes)
    if num_classes < 1:
        raise UserError("the number of classes is unknown (the training set names none): set --num-classes")
    recipe = dataclasses.replace(recipe, num_classes=num_classes)
    model = build_model(recipe, num_classes=num_classes)
    if recipe.init_checkpoint:
        load_pretrained(model, recipe.init_checkpoint)

    augment = train_augment(recipe)

    def sampler(ds: Dataset, rank: int, world: int, seed: int) -> Sampler:
        if recipe.balanced_sampler:
            inner: Sampler = DistributedWeightedSampler(ds.sample_weights(), rank=rank, world_size=world, seed=seed)
        else:
            inner = DistributedSampler(ds, num_replicas=world, rank=rank, shuffle=True, seed=seed)
        return EpochAwareSampler(inner, hooks=[augment.set_epoch])

    info = {
        "recipe_class": type(recipe).__name__,
        "classes": classes,
        "model_args": model.model_args(),
        "multilabel": recipe.multilabel,
        **(run_info or {}),
    }
    trainer = Trainer(
        model,
        criterion(recipe, "mean"),
        train_dataset,
        recipe,
        val_dataset=val_dataset,
        meter=make_meter(recipe.multilabel),
        step_fn=EATStep(recipe),
        batch_transform=augment,
        train_sampler=sampler,
        param_groups=weight_decay_groups(model, recipe.weight_decay),
        run_info=info,
    )
    if trainer.ema is not None:
        updates = trainer.updates_per_epoch

        def ema_schedule(epoch: int) -> None:
            per_epoch = recipe.ema_warmup_decay if epoch < recipe.ema_warmup_epochs else recipe.ema_decay_per_epoch
            trainer.ema.decay = per_epoch ** (1.0 / updates)

        trainer.sampler.hooks.append(ema_schedule)
    return trainer.fit()


def evaluate_clips(
    model: nn.Module,
    dataset: Dataset,
    *,
    multilabel: bool = False,
    loss: nn.Module | None = None,
    batch_size: int = 64,
    num_workers: int = 0,
    device: str | torch.device = "auto",
    precision: str = "fp32",
    progress: bool = False,
) -> EvalReport:
    """Score ``model`` on ``dataset`` once with miil-core's evaluation loop (sharded over torchrun ranks).

    Args:
        model: The model.
        dataset: Samples ``(waveform, target)``; unreadable ones come as ``Skipped`` records and are reported.
        multilabel: mAP instead of top-1 / top-5 accuracy.
        loss: Also report the mean of this loss (the engine's validation reports the recipe's loss).
        batch_size: Batch size per process.
        num_workers: Data-loader workers.
        device: "auto", "cpu", "cuda"...
        precision: "fp32", "bf16" or "fp16" (the run's ``eval_precision`` reproduces its validation).
        progress: tqdm bar on rank 0.
    """
    dev = du.init_distributed(device) if not isinstance(device, torch.device) else device
    return core_evaluate(
        model.to(dev),
        dataset,
        meter=make_meter(multilabel),
        loss_fn=loss,
        device=dev,
        precision=precision,
        batch_size=batch_size,
        num_workers=num_workers,
        progress=progress,
        desc="validate",
    )


def evaluate(
    model: nn.Module,
    dataset: Dataset,
    *,
    multilabel: bool = False,
    batch_size: int = 64,
    num_workers: int = 0,
    device: str | torch.device = "auto",
) -> dict[str, float]:
    """Accuracy (top-1 / top-5, percent) or mAP (percent) of ``model`` on ``dataset``, with the counts.

    Args:
        model: The model.
        dataset: Samples ``(waveform, target)``; unreadable ones are skipped and counted.
        multilabel: Report mAP instead of accuracy.
        batch_size: Batch size per process.
        num_workers: Data-loader workers.
        device: "auto", "cpu", "cuda"...

    Returns:
        The metrics, ``clips`` (scored) and ``skipped_unreadable``.
    """
    report = evaluate_clips(
        model, dataset, multilabel=multilabel, batch_size=batch_size, num_workers=num_workers, device=device
    )
    if report.samples == 0:
        raise UserError(f"no readable clips to evaluate ({report.skipped_count} unreadable)")
    return {**report.metrics, "clips": report.samples, "skipped_unreadable": report.skipped_count}


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, batches, *, device: str | torch.device | None = None) -> int:
    """Re-estimate every BatchNorm's running statistics as the exact average over ``batches``.

    EAT initialises its convolutions with ``N(0, 0.02)``, so early activations are tiny while BatchNorm's running
    variance starts at 1; with momentum 0.1 it takes about a hundred updates to forget that start, and a model
    trained for fewer steps scores near chance in eval mode. The paper's runs (thousands of epochs) never notice;
    short runs (the demo, quick fine-tunes) call this before evaluating.

    Args:
        model: The model (left in eval mode).
        batches: Iterable of waveform batches ``[B, 1, L]`` or of ``(waveforms, ...)`` tuples.
        device: Device for the forward passes (default: the model's).

    Returns:
        The number of batches used.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return 0
    device = device or next(model.parameters()).device
    saved = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the batches below
    model.train()
    count = 0
    try:
        for batch in batches:
            x = batch[0] if isinstance(batch, list | tuple) else batch
            if x is None:
                continue
            model(x.to(device))
            count += 1
    finally:
        for m, momentum in zip(norms, saved):
            m.momentum = momentum
        model.eval()
    if count == 0:
        raise ValueError("recalibrate_batchnorm got no batches")
    return count


# Fields renamed when the CLI moved to the miil dialect: runs written before still load.
_LEGACY_FIELDS = {"dataset": "data_format", "fold": "val_split"}


def recipe_from_dict(values: dict[str, Any]) -> EATRecipe:
    """Rebuild a recipe from its JSON form (lists back to tuples; unknown keys are an error)."""
    values = {_LEGACY_FIELDS.get(k, k): v for k, v in values.items()}
    if isinstance(values.get("val_split"), int):
        values["val_split"] = str(values["val_split"])
    known = {f.name for f in dataclasses.fields(EATRecipe)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise UserError(f"not EAT recipe fields: {unknown} (was the run written by another package?)")
    return EATRecipe(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


@dataclass
class TrainedEAT:
    """A trained model with what is needed to use it: its recipe, run facts and evaluation precision.

    Args:
        model: The model (eval mode).
        recipe: The recipe it was trained with (rate, clip length, data options, loss).
        info: The run's ``run_info`` (``classes``, ``multilabel``, ``model_args``, ``recipe``...).
        eval_precision: The precision its run validated in ("fp32" when unknown).
    """

    model: EAT
    recipe: EATRecipe
    info: dict[str, Any]
    eval_precision: str = "fp32"

    @property
    def classes(self) -> list[str]:
        """Class names (``"0"``..``"C-1"`` when the weights name none)."""
        names = self.info.get("classes")
        return list(names) if names else [str(i) for i in range(self.model.num_classes)]

    @property
    def multilabel(self) -> bool:
        return bool(self.info.get("multilabel", self.recipe.multilabel))


def _model_from_args(args: dict[str, Any]) -> EAT:
    cfg = args["config"]
    return EAT(
        num_classes=args["num_classes"],
        seq_len=args["seq_len"],
        config=EATConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in cfg.items()}),
    )


def _from_sidecar(weights: dict[str, torch.Tensor], meta: dict[str, Any], where: Path) -> TrainedEAT:
    recipe = recipe_from_dict(meta.get("config") or {})
    info = dict(meta.get("run_info") or {})
    args = info.get("model_args") or meta.get("model_args")
    model = _model_from_args(args) if args else build_model(recipe)
    try:
        model.load_state_dict(weights, strict=True)
    except RuntimeError as err:
        raise UserError(f"the weights in {where} do not fit the model its sidecar describes: {err}") from None
    info.setdefault("model_args", model.model_args())
    return TrainedEAT(model.eval(), recipe, info, str(meta.get("eval_precision") or "fp32"))


def _sidecar_of(weights: Path) -> dict[str, Any]:
    """The JSON that describes a weights file: ``<name>.json`` beside it, else the ``config.json`` of its run."""
    candidates = [weights.with_suffix(".json")]
    candidates += [parent / "config.json" for parent in list(weights.parents)[:3]]
    for candidate in candidates:
        if candidate.is_file():
            return json.loads(candidate.read_text(encoding="utf-8"))
    raise UserError(
        f"--weights {weights}: no sidecar describes this file (no {weights.with_suffix('.json').name} beside it and "
        "no run's config.json above it); give a run folder, a file inside one, or a file written by miil audio convert"
    )


def load_weights(path: str | os.PathLike, *, num_heads: int | None = None) -> TrainedEAT:
    """A trained EAT from what ``--weights`` names.

    Args:
        path: A run folder (its ``best.safetensors`` and ``best.json``), a ``.safetensors`` file inside a run or
            written by ``miil audio convert`` (with its ``.json``), or an original ``best_model.pt`` / ``chkpnt.pt``
            (converted strictly on the fly, read without unpickling code).
        num_heads: Attention heads of an original checkpoint (default: its ``args.yml``, else the published sizes).
    """
    target = Path(path)
    if target.is_dir():
        if not (target / "best.json").is_file():
            raise UserError(
                f"--weights {target} is a folder but not a finished miil audio run (no best.json): give the run's "
                "--out-dir or a weights file"
            )
        weights, meta = load_run_weights(target, "best")
        return _from_sidecar(weights, meta, target)
    if not target.is_file():
        raise UserError(f"--weights {target} does not exist")
    if target.suffix.lower() == ".safetensors":
        meta = _sidecar_of(target)
        return _from_sidecar(load_checkpoint(target), meta, target)
    model = load_original_checkpoint(target, num_heads=num_heads)
    recipe = dataclasses.replace(RECIPES["esc50-eat-s"], seq_len=model.seq_len, num_classes=model.num_classes)
    return TrainedEAT(model.eval(), recipe, {"model_args": model.model_args(), "converted_from": str(target)})


def load_run(run_dir: str | os.PathLike, which: str = "best") -> tuple[EAT, EATRecipe, dict[str, Any]]:
    """The model, recipe and run facts of a finished ``miil audio train`` run.

    Args:
        run_dir: The run's ``--out-dir``.
        which: "best" (keep-best of raw and EMA) or "last".
    """
    run = Path(run_dir)
    if not (run / f"{which}.json").is_file():
        raise UserError(f"{run} is not a finished miil audio run (no {which}.json)")
    weights, meta = load_run_weights(run, which)
    loaded = _from_sidecar(weights, meta, run)
    return loaded.model, loaded.recipe, loaded.info


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
