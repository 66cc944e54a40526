"""Training PETA (or the mean baseline) with the core engine: ASL loss, mAP / top-1 validation, DDP via torchrun.

Paper: PETA (arXiv 2109.12499), section 4: the album model is trained end to end with the asymmetric loss (ASL,
arXiv 2009.14119) on multi-hot event targets. The loop itself is :class:`miil.core.train.Trainer`; this module
supplies the model from a recipe, the album batch step (images, mask) and the event meter.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn as nn
from torch.utils.data import Dataset

from miil.core.losses import AsymmetricLoss
from miil.core.train import Trainer

from .data import AlbumDataset, AlbumRecord, album_train_transform, collate_albums
from .metrics import EventMeter
from .models import PETA, MeanOfPredictions
from .recipes import PETARecipe

__all__ = ["album_datasets", "album_eval_fn", "album_step_fn", "build_model", "make_loss", "make_trainer"]


def album_datasets(
    recipe: PETARecipe,
    train_records: Sequence[AlbumRecord],
    classes: Sequence[str],
    val_records: Sequence[AlbumRecord] | None = None,
    *,
    strict: bool = False,
) -> tuple[AlbumDataset, AlbumDataset | None]:
    """``(train, val or None)`` album datasets of a recipe: random K-subsets with the recipe's photo augmentation for
    training, the deterministic K photos squish-resized for validation.

    Args:
        recipe: The recipe (``album_size``, ``img_size``, ``augment``, ``pad``).
        train_records: Training albums.
        classes: Event names in target order.
        val_records: Validation albums.
        strict: Raise on unreadable photos instead of skipping them.
    """
    train = AlbumDataset(
        train_records,
        classes,
        album_size=recipe.album_size,
        train=True,
        transform=album_train_transform(recipe.img_size, recipe.augment),
        pad=recipe.pad,
        strict=strict,
    )
    val = None
    if val_records:
        val = AlbumDataset(
            val_records, classes, album_size=recipe.album_size, img_size=recipe.img_size, pad=recipe.pad, strict=strict
        )
    return train, val


def build_model(
    recipe: PETARecipe,
    *,
    num_classes: int | None = None,
    backbone: str | nn.Module | None = None,
    backbone_kwargs: dict[str, Any] | None = None,
    pretrained: bool | None = None,
) -> nn.Module:
    """The model a recipe describes: :class:`PETA` or :class:`MeanOfPredictions`.

    Args:
        recipe: The recipe.
        num_classes: Overrides ``recipe.num_classes``.
        backbone: Overrides ``recipe.model`` (a timm name or a module).
        backbone_kwargs: timm keyword arguments for the backbone (tiny test configs).
        pretrained: Overrides ``recipe.pretrained``.
    """
    common = dict(
        num_classes=recipe.num_classes if num_classes is None else num_classes,
        pretrained=recipe.pretrained if pretrained is None else pretrained,
        checkpoint=recipe.init_checkpoint,
        backbone_kwargs=backbone_kwargs,
    )
    net = recipe.model if backbone is None else backbone
    if recipe.aggregator == "transformer":
        return PETA(
            net,
            depth=recipe.depth,
            num_heads=recipe.num_heads,
            ffn_dim=recipe.ffn_dim,
            dropout=recipe.transformer_dropout,
            activation=recipe.activation,
            norm_first=recipe.norm_first,
            pos_embed=recipe.pos_embed,
            max_images=recipe.album_size,
            **common,
        )
    if recipe.aggregator == "mean":
        return MeanOfPredictions(net, score=recipe.mean_score, **common)
    raise ValueError(f"aggregator must be 'transformer' or 'mean', got {recipe.aggregator!r}")


def make_loss(recipe: PETARecipe) -> AsymmetricLoss:
    """ASL with the recipe's focusing parameters and the original's sum reduction."""
    return AsymmetricLoss(gamma_neg=recipe.gamma_neg, gamma_pos=recipe.gamma_pos, clip=recipe.clip, reduction="sum")


def album_step_fn(loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]):
    """Training step on a collated album batch ``(images, targets, mask, indices)``."""

    def step(model: nn.Module, batch: Any) -> torch.Tensor:
        images, targets, mask = batch[0], batch[1], batch[2]
        return loss_fn(model(images, mask), targets)

    return step


def album_eval_fn(model: nn.Module, batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Validation outputs and targets of a collated album batch."""
    images, targets, mask = batch[0], batch[1], batch[2]
    return model(images, mask), targets


def make_trainer(
    recipe: PETARecipe,
    model: nn.Module,
    train_dataset: Dataset,
    *,
    val_dataset: Dataset | None = None,
    run_info: dict[str, Any] | None = None,
) -> Trainer:
    """A :class:`~miil.core.train.Trainer` for album batches with ASL and the event meter.

    Args:
        recipe: Engine and loss settings.
        model: The album model (see :func:`build_model`).
        train_dataset: Samples ``(images [n, C, H, W], target, index)`` (e.g. :class:`~miil.album.data.AlbumDataset`).
        val_dataset: Same format, evaluated every epoch (mAP and top-1).
        run_info: Stored with every checkpoint (put the class names here).
    """
    loss_fn = make_loss(recipe)
    return Trainer(
        model,
        loss_fn,
        train_dataset,
        recipe,
        val_dataset=val_dataset,
        meter=EventMeter(),
        step_fn=album_step_fn(loss_fn),
        eval_fn=album_eval_fn,
        collate_fn=collate_albums,
        run_info=run_info,
    )
