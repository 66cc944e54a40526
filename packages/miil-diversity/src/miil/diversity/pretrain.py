"""The pretraining procedure: a self-supervised initialisation, then supervised training with USI's KD recipe, with
diversity and accuracy measured at every validation.

Paper: "Diverse ImageNet Models Transfer Better" (arXiv 2204.09134 / WACV 2024): "a simple procedure to combine
self-supervised and supervised pretraining" yields models that are both diverse and accurate. Later work (OPERA,
Wang et al.) describes it as sequential: obtain a self-supervised model, then train it with full supervision. The
supervised stage here is :func:`miil.usi.build_usi_trainer` (soft CE + 5 x KL to a frozen teacher, AdamW, cosine,
mixup/cutmix, EMA keep-best), started from the self-supervised weights. Each epoch's validation row in
``supervised/metrics.jsonl`` holds top-1/top-5 next to filter diversity, effective rank and feature correlation.
"""

from __future__ import annotations

import copy
import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from torch.utils.data import Dataset
from torchvision import transforms as T

from miil.core.errors import UserError
from miil.core.metrics import AccuracyMeter
from miil.core.train import TrainConfig, TrainResult
from miil.usi import build_usi_trainer, create_student, model_mean_std, usi_datasets, usi_transforms

from .convert import load_ssl_weights
from .feature_stats import FeatureMoments, effective_rank_from_covariance, mean_feature_correlation
from .filter_diversity import model_filter_diversity
from .penultimate import logits_and_features
from .recipes import DiversityRecipe
from .ssl import TwoViewDataset, train_ssl

__all__ = [
    "DiversityTracker",
    "PretrainResult",
    "check_init",
    "pretrain",
    "pretrain_datasets",
    "pretrain_folders",
    "ssl_config",
    "ssl_transform",
]


class DiversityTracker:
    """A validation meter *and* ``eval_fn`` for the core engine: accuracy plus diversity of the evaluated model.

    ``eval_fn(model, batch)`` keeps the penultimate features' moments and the model; ``compute()`` returns top-k
    accuracy, ``filter_diversity`` of the model's weights, and ``effective_rank`` / ``feature_correlation`` of the
    validation features (summed over DDP ranks).

    Args:
        topk: Accuracies to report.
    """

    def __init__(self, topk: tuple[int, ...] = (1, 5)):
        self.accuracy = AccuracyMeter(topk=topk)
        self.moments = FeatureMoments()
        self.model: nn.Module | None = None

    def reset(self) -> None:
        self.accuracy.reset()
        self.moments.reset()
        self.model = None

    def eval_fn(self, model: nn.Module, batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = batch[0], batch[1]
        logits, feats = logits_and_features(model, x)
        self.moments.update(feats.float())
        self.model = model
        return logits, y

    def update(self, outputs: torch.Tensor, targets: torch.Tensor) -> None:
        self.accuracy.update(outputs, targets)

    def compute(self) -> dict[str, float]:
        result = self.accuracy.compute()
        cov = self.moments.all_reduce().covariance()
        result["filter_diversity"] = model_filter_diversity(self.model)[0] if self.model is not None else float("nan")
        result["effective_rank"] = effective_rank_from_covariance(cov)
        result["feature_correlation"] = mean_feature_correlation(cov)
        return result


@dataclass
class PretrainResult:
    """Both stages of one pretraining run.

    Args:
        ssl: The self-supervised stage's result (``None`` when it did not run here).
        supervised: The USI stage's result; its history holds accuracy and diversity per epoch.
        init: How the supervised stage was initialised.
    """

    ssl: TrainResult | None
    supervised: TrainResult
    init: str


def ssl_transform(img_size: int, *, mean, std, scale: tuple[float, float] = (0.2, 1.0)) -> T.Compose:
    """SimCLR-style augmentation (crop, flip, colour jitter, grey) for the self-supervised stage.

    Args:
        img_size: Output side.
        mean: Normalization mean.
        std: Normalization std.
        scale: RandomResizedCrop scale range.
    """
    return T.Compose(
        [
            T.RandomResizedCrop(img_size, scale=scale, antialias=True),
            T.RandomHorizontalFlip(),
            T.RandomApply([T.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8),
            T.RandomGrayscale(p=0.2),
            T.ToTensor(),
            T.Normalize(mean, std),
        ]
    )


def ssl_config(cfg: DiversityRecipe) -> TrainConfig:
    """The engine settings of the self-supervised stage, derived from the recipe's ``ssl_*`` fields.

    Args:
        cfg: The recipe.
    """
    return TrainConfig(
        out_dir=str(Path(cfg.out_dir) / "ssl"),
        epochs=cfg.ssl_epochs,
        batch_size=cfg.ssl_batch_size,
        num_workers=cfg.num_workers,
        opt="adamw",
        lr=cfg.ssl_lr,
        weight_decay=cfg.ssl_weight_decay,
        sched="cosine",
        warmup_epochs=cfg.ssl_warmup_epochs,
        warmup_lr=cfg.ssl_lr / 100,
        amp=cfg.amp,
        seed=cfg.seed,
        device=cfg.device,
        resume=cfg.resume,
        progress=cfg.progress,
        max_steps_per_epoch=cfg.max_steps_per_epoch,
    )


def pretrain(
    cfg: DiversityRecipe,
    train_dataset: Dataset,
    *,
    ssl_dataset: Dataset | None = None,
    val_dataset: Dataset | None = None,
    model: nn.Module | None = None,
    teacher: nn.Module | None = None,
    run_info: dict[str, Any] | None = None,
) -> PretrainResult:
    """Self-supervised initialisation (``cfg.init``), then USI supervised training; writes ``ssl/`` and
    ``supervised/`` run folders under ``cfg.out_dir``.

    Args:
        cfg: The recipe.
        train_dataset: Labelled ``(image, label)`` samples with USI's training transform.
        ssl_dataset: Two-view samples for ``init="ssl"`` (:class:`miil.diversity.TwoViewDataset`); labels unused.
        val_dataset: Labelled samples with the evaluation transform; accuracy and diversity are logged on it.
        model: The network (default: ``cfg.model`` from timm); trained in place.
        teacher: KD teacher module (default: the recipe's ``teacher``; "none" trains without KD).
        run_info: Extra facts stored with both runs.
    """
    check_init(cfg)
    model = model if model is not None else create_student(cfg)
    info = {"paper": "Diverse ImageNet Models Transfer Better, arXiv 2204.09134", "init": cfg.init, **(run_info or {})}
    ssl_result = None
    if cfg.init == "ssl":
        if ssl_dataset is None:
            raise ValueError("init='ssl' needs ssl_dataset (a TwoViewDataset of the training images)")
        ssl_result = train_ssl(
            model,
            ssl_dataset,
            ssl_config(cfg),
            temperature=cfg.ssl_temperature,
            proj_hidden=cfg.ssl_proj_hidden,
            proj_dim=cfg.ssl_proj_dim,
            run_info=info,
        )
    elif cfg.init == "dino" and cfg.init_checkpoint:
        kept = load_ssl_weights(model, cfg.init_checkpoint)
        info["init_checkpoint"] = str(cfg.init_checkpoint)
        info["classifier_at_init"] = kept
    elif cfg.init == "dino":
        info["init_checkpoint"] = f"timm pretrained {cfg.model}"
    supervised_cfg = dataclasses.replace(cfg, out_dir=str(Path(cfg.out_dir) / "supervised"))
    tracker = DiversityTracker() if cfg.log_diversity and val_dataset is not None else None
    trainer = build_usi_trainer(
        supervised_cfg,
        train_dataset,
        val_dataset=val_dataset,
        model=model,
        teacher=teacher,
        run_info=info,
        meter=tracker,
        eval_fn=tracker.eval_fn if tracker is not None else None,
    )
    return PretrainResult(ssl=ssl_result, supervised=trainer.fit(), init=cfg.init)


def check_init(cfg: DiversityRecipe) -> None:
    """Refuse an initialisation the recipe cannot carry out, before anything is built or downloaded.

    Args:
        cfg: The recipe.

    Raises:
        UserError: ``init=dino`` without weights, a missing ``--init-checkpoint`` file, ``--init-checkpoint`` with
            another initialisation, or ``init=ssl`` without self-supervised epochs.
    """
    if cfg.init == "dino":
        if not cfg.init_checkpoint and not cfg.pretrained:
            raise UserError(
                "--init dino starts from released self-supervised weights: give --init-checkpoint FILE (a DINO "
                "checkpoint; `miil diversity convert` checks it) or --pretrained with a timm `.dino` model; offline "
                "and without a file, use --init ssl or --init random"
            )
        if cfg.init_checkpoint and not os.path.isfile(cfg.init_checkpoint):
            raise UserError(
                f"--init-checkpoint {cfg.init_checkpoint} does not exist: download the self-supervised checkpoint "
                "(e.g. DINO's dino_resnet50_pretrain.pth) and pass its path"
            )
    elif cfg.init_checkpoint:
        raise UserError(f"--init-checkpoint is the starting point of --init dino, not of --init {cfg.init}")
    if cfg.init == "ssl" and cfg.ssl_epochs < 1:
        raise UserError(f"--init ssl needs --ssl-epochs >= 1, got {cfg.ssl_epochs}")


def pretrain_datasets(
    cfg: DiversityRecipe,
    model: nn.Module,
    *,
    train_dir: str | os.PathLike,
    val_dir: str | os.PathLike | None = None,
) -> tuple[Dataset, Dataset | None, Dataset | None]:
    """``(train, val or None, ssl or None)`` datasets of ImageNet-style folders with the recipe's transforms.

    The labelled sets use USI's training and evaluation transforms for ``model``'s normalisation; the
    self-supervised set (``init="ssl"`` only) gives two :func:`ssl_transform` views of each training image.

    Args:
        cfg: The recipe.
        model: The student (its timm config gives the normalisation unless the recipe sets one).
        train_dir: Training folder (``train_dir/<class>/<image>``).
        val_dir: Validation folder with the same classes.

    Raises:
        UserError: The folders do not fit the recipe (see :func:`miil.usi.usi_datasets`).
    """
    train_ds, val_ds = usi_datasets(cfg, train_dir=train_dir, val_dir=val_dir)
    return _with_transforms(cfg, model, train_ds, val_ds)


def _with_transforms(
    cfg: DiversityRecipe, model: nn.Module, train_ds: Dataset, val_ds: Dataset | None
) -> tuple[Dataset, Dataset | None, Dataset | None]:
    mean, std = model_mean_std(model, mean=cfg.mean, std=cfg.std)
    ssl_ds = None
    if cfg.init == "ssl":
        raw = copy.copy(train_ds)  # the same files, read as PIL images
        raw.transform = None
        ssl_ds = TwoViewDataset(raw, ssl_transform(cfg.img_size, mean=mean, std=std, scale=cfg.ssl_scale))
    train_ds.transform, eval_tf = usi_transforms(cfg, mean, std)
    if val_ds is not None:
        val_ds.transform = eval_tf
    return train_ds, val_ds, ssl_ds


def pretrain_folders(
    cfg: DiversityRecipe,
    *,
    train_dir: str | os.PathLike,
    val_dir: str | os.PathLike | None = None,
    recipe_name: str | None = None,
) -> PretrainResult:
    """:func:`pretrain` on ImageNet-style folders (``train_dir/<class>/<image>``).

    The folders and the initialisation are checked against the recipe before the student is built (and before any
    weights are downloaded).

    Args:
        cfg: The recipe.
        train_dir: Training folder (also the unlabelled images of the self-supervised stage).
        val_dir: Validation folder with the same classes.
        recipe_name: Name of the recipe, stored with the runs.
    """
    check_init(cfg)
    train_ds, val_ds = usi_datasets(cfg, train_dir=train_dir, val_dir=val_dir, recipe_name=recipe_name)
    model = create_student(cfg)
    train_ds, val_ds, ssl_ds = _with_transforms(cfg, model, train_ds, val_ds)
    info = {
        "recipe": recipe_name,
        "classes": train_ds.classes,
        "train_dir": os.fspath(train_dir),
        "val_dir": os.fspath(val_dir) if val_dir is not None else None,
    }
    return pretrain(cfg, train_ds, ssl_dataset=ssl_ds, val_dataset=val_ds, model=model, run_info=info)
