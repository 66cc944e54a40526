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
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from miil.core import distributed as du
from miil.core.io import KeyMappingError, extract_state_dict, load_checkpoint
from miil.core.layers import rename_legacy_encoder_keys
from miil.core.metrics import AccuracyMeter, MeanAPMeter
from miil.core.train import Trainer, TrainResult, load_run_weights

from .augment.pipeline import BatchAugment
from .convert import config_from_original, convert_original_state_dict
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
from .recipes import DATASETS, EATRecipe

__all__ = [
    "EATStep",
    "build_datasets",
    "build_model",
    "evaluate",
    "load_pretrained",
    "load_run",
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


def _audioset(root: Path, split: str, recipe: EATRecipe, train: bool) -> AudioSetDataset:
    def first(*candidates: Path) -> Path:
        return next((c for c in candidates if c.exists()), candidates[0])

    return AudioSetDataset(
        first(root / "metadata" / f"{split}.csv", root / f"{split}.csv"),
        first(root / split, root / "audio" / split),
        first(root / "metadata" / "class_labels_indices.csv", root / "class_labels_indices.csv"),
        train=train,
        sample_rate=recipe.sample_rate,
        seq_len=recipe.seq_len,
        strict=recipe.strict,
        cache_dir=recipe.cache_dir,
    )


def build_datasets(recipe: EATRecipe, *, train: bool = True, val: bool = True) -> tuple[Dataset | None, Dataset | None]:
    """The recipe's training and validation sets (``None`` for the ones not asked for or not present).

    Args:
        recipe: The recipe (``dataset``, ``data_root``, ``fold`` / splits, rate, length, cache, strictness).
        train: Build the training set.
        val: Build the validation set.
    """
    if recipe.dataset not in DATASETS:
        raise ValueError(f"unknown dataset {recipe.dataset!r}; known: {', '.join(DATASETS)}")
    if not recipe.data_root:
        raise ValueError(f"recipe dataset {recipe.dataset!r} needs --data-root")
    root = Path(recipe.data_root)
    if not root.is_dir():
        raise FileNotFoundError(f"data root {root} is not a folder")
    common = dict(sample_rate=recipe.sample_rate, seq_len=recipe.seq_len, cache_dir=recipe.cache_dir)
    common["strict"] = recipe.strict

    def make(is_train: bool) -> Dataset | None:
        if recipe.dataset == "esc50":
            return ESC50Dataset(root, fold=recipe.fold, train=is_train, **common)
        if recipe.dataset == "urbansound8k":
            return UrbanSound8KDataset(root, fold=recipe.fold, train=is_train, **common)
        split = recipe.train_split if is_train else recipe.val_split
        if recipe.dataset == "speechcommands":
            return SpeechCommandsDataset(root, split=split, **common)
        if recipe.dataset == "audioset":
            return _audioset(root, split, recipe, is_train)
        folder = root / split
        if not is_train and not folder.is_dir():
            return None
        return AudioFolderDataset(folder, train=is_train, **common)

    return (make(True) if train else None), (make(False) if val else None)


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


def _criterion(recipe: EATRecipe, reduction: str) -> nn.Module:
    if recipe.loss == "label_smoothing":
        return LabelSmoothingCrossEntropy(smoothing=recipe.label_smoothing, reduction=reduction)
    if recipe.loss == "ce":
        return nn.CrossEntropyLoss(reduction=reduction)
    if recipe.loss == "bce":
        return nn.BCEWithLogitsLoss(reduction=reduction)
    raise ValueError(f"loss must be label_smoothing, ce or bce, got {recipe.loss!r}")


class EATStep:
    """The engine's ``step_fn``: the recipe's loss, or the mixed-label BCE when the batch was mixed.

    Args:
        recipe: The recipe (loss, smoothing, reduction, mix threshold).
    """

    def __init__(self, recipe: EATRecipe):
        self.criterion = _criterion(recipe, recipe.loss_reduction)
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

    Args:
        recipe: The recipe.
        train_dataset: Training set (default: built from the recipe's dataset options).
        val_dataset: Validation set (default: built from the recipe; may be absent for class folders).
        classes: Class names (default: the training set's ``classes``).
        run_info: Extra facts stored with the run.
    """
    if train_dataset is None:
        train_dataset, built_val = build_datasets(recipe)
        val_dataset = val_dataset if val_dataset is not None else built_val
    classes = list(classes if classes is not None else getattr(train_dataset, "classes", []))
    num_classes = recipe.num_classes or len(classes)
    if classes and num_classes != len(classes):
        raise ValueError(
            f"the recipe has num_classes={recipe.num_classes} but the data has {len(classes)} classes; "
            f"pass --num-classes {len(classes)} (or 0 to take it from the data)"
        )
    if num_classes < 1:
        raise ValueError("the number of classes is unknown: set --num-classes")
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

    meter = MeanAPMeter() if recipe.multilabel else AccuracyMeter(topk=(1, 5))
    info = {
        "recipe_class": type(recipe).__name__,
        "classes": classes,
        "model_args": model.model_args(),
        "multilabel": recipe.multilabel,
        **(run_info or {}),
    }
    trainer = Trainer(
        model,
        _criterion(recipe, "mean"),
        train_dataset,
        recipe,
        val_dataset=val_dataset,
        meter=meter,
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


class _Shard(Sampler[int]):
    def __init__(self, n: int, rank: int, world: int):
        self.indices = list(range(rank, n, world))

    def __iter__(self):
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def _collate_readable(samples):
    kept = [s for s in samples if s is not None]
    return (torch.utils.data.default_collate(kept) if kept else None), len(samples) - len(kept)


@torch.no_grad()
def evaluate(
    model: nn.Module,
    dataset: Dataset,
    *,
    multilabel: bool = False,
    batch_size: int = 64,
    num_workers: int = 0,
    device: str | torch.device = "auto",
) -> dict[str, float]:
    """Accuracy (top-1 / top-5, percent) or mAP (percent) of ``model`` on ``dataset``, sharded over DDP ranks.

    Args:
        model: The model.
        dataset: Samples ``(waveform, target)``; unreadable ones (``None``) are skipped and counted.
        multilabel: Report mAP instead of accuracy.
        batch_size: Batch size per process.
        num_workers: Data-loader workers.
        device: "auto", "cpu", "cuda"...
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
    meter = MeanAPMeter() if multilabel else AccuracyMeter(topk=(1, 5))
    seen = skipped = 0
    for batch, n_bad in loader:
        skipped += n_bad
        if batch is None:
            continue
        meter.update(model(batch[0].to(dev)).float(), batch[1].to(dev))
        seen += len(batch[0])
    totals = du.all_reduce_sum(torch.tensor([seen, skipped], dtype=torch.float64))
    if totals[0] == 0:
        raise RuntimeError(f"no readable clips to evaluate ({int(totals[1].item())} unreadable)")
    result = meter.compute()
    result["clips"] = int(totals[0].item())
    result["skipped_unreadable"] = int(totals[1].item())
    return result


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


def recipe_from_dict(values: dict[str, Any]) -> EATRecipe:
    """Rebuild a recipe from its JSON form (lists back to tuples; unknown keys are an error)."""
    known = {f.name for f in dataclasses.fields(EATRecipe)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"not EAT recipe fields: {unknown}")
    return EATRecipe(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


def load_run(run_dir: str | os.PathLike, which: str = "best") -> tuple[EAT, EATRecipe, dict[str, Any]]:
    """The model, recipe and run facts of a finished ``miil audio train`` run.

    Args:
        run_dir: The run's ``--out-dir``.
        which: "best" (keep-best of raw and EMA) or "last".
    """
    run = Path(run_dir)
    if not (run / f"{which}.json").is_file():
        raise FileNotFoundError(f"{run} is not a finished miil audio run (no {which}.json)")
    weights, meta = load_run_weights(run, which)
    recipe = recipe_from_dict(meta["config"])
    info = meta.get("run_info", {})
    args = info.get("model_args")
    if args:
        cfg = args["config"]
        model = EAT(
            num_classes=args["num_classes"],
            seq_len=args["seq_len"],
            config=EATConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in cfg.items()}),
        )
    else:
        model = build_model(recipe)
    model.load_state_dict(weights, strict=True)
    return model, recipe, info
