"""USI training of any timm backbone on the core engine (``miil.core.train.Trainer``).

Paper: USI (arXiv 2204.03475) and the authors' ``train.py``. Wires the pieces of this package into one run: the student
(any timm model), the frozen BN-fused teacher or stored teacher logits, timm's Mixup/CutMix and RandAugment, the
repeated-augmentation sampler, the KD loss, and the engine's AdamW + cosine schedule, AMP, EMA with keep-best of EMA
vs raw, checkpoints and DDP. Validation reports top-1 / top-5 at crop 0.95.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from typing import Any

import torch
import torch.nn as nn
from torch.utils.data import Dataset

from miil.core import distributed as du
from miil.core.backbones import create_backbone
from miil.core.cli_args import parse_model_kwargs
from miil.core.errors import UserError
from miil.core.metrics import AccuracyMeter, Meter
from miil.core.train import Trainer, TrainResult

from .data import IndexedDataset, image_folder, usi_eval_transform, usi_train_transform
from .distill import KDBatchTransform, KDStep
from .loss import USIDistillationLoss
from .mixup import KDMixup
from .recipes import USIRecipe
from .renormalize import model_mean_std
from .sampler import RepeatedAugSampler
from .teacher import FrozenTeacher, create_teacher
from .teacher_logits import TeacherLogits

__all__ = ["build_usi_trainer", "create_student", "train_usi", "usi_datasets", "usi_transforms"]


def create_student(cfg: USIRecipe, **model_kwargs: Any) -> nn.Module:
    """The student network named by ``cfg.model`` with ``cfg.num_classes`` outputs (random init, as in the paper).

    Any timm model: the student is the timm classifier itself (miil-core's ``create_backbone``); ``cfg.pretrained``
    starts it from timm's weights instead (downloads; the classifier is re-initialised for ``cfg.num_classes``).

    Args:
        cfg: The recipe.
        model_kwargs: More ``timm.create_model`` arguments (e.g. tiny sizes for tests), over ``cfg.model_kwargs``.
    """
    kwargs: dict[str, Any] = {**parse_model_kwargs(cfg.model_kwargs), **model_kwargs, "num_classes": cfg.num_classes}
    if cfg.drop_path_rate is not None:
        kwargs["drop_path_rate"] = cfg.drop_path_rate
    return create_backbone(cfg.model, pretrained=cfg.pretrained, **kwargs)


def usi_transforms(cfg: USIRecipe, mean, std) -> tuple[Any, Any]:
    """``(train transform, eval transform)`` of the recipe for a student normalized with ``mean`` / ``std``.

    Args:
        cfg: The recipe.
        mean: Student normalization mean.
        std: Student normalization std.
    """
    train = usi_train_transform(
        cfg.img_size,
        mean=mean,
        std=std,
        randaug=cfg.randaug or None,
        scale=cfg.scale,
        ratio=cfg.ratio,
        hflip=cfg.hflip,
        interpolation=cfg.interpolation,
        reprob=cfg.reprob,
    )
    evaluate = usi_eval_transform(
        cfg.img_size, mean=mean, std=std, crop_pct=cfg.crop_pct, interpolation=cfg.interpolation
    )
    return train, evaluate


def _train_sampler(cfg: USIRecipe):
    if cfg.aug_repeats <= 1:
        return None

    def make(dataset: Dataset, rank: int, world: int, seed: int) -> RepeatedAugSampler:
        return RepeatedAugSampler(
            len(dataset),
            num_repeats=cfg.aug_repeats,
            rank=rank,
            world_size=world,
            seed=seed,
            epoch_mode=cfg.aug_repeats_epoch,
        )

    return make


def build_usi_trainer(
    cfg: USIRecipe,
    train_dataset: Dataset,
    *,
    val_dataset: Dataset | None = None,
    model: nn.Module | None = None,
    teacher: nn.Module | None = None,
    run_info: dict[str, Any] | None = None,
    meter: Meter | None = None,
    eval_fn: Callable[[nn.Module, Any], tuple[torch.Tensor, torch.Tensor]] | None = None,
) -> Trainer:
    """A ready :class:`miil.core.train.Trainer` for one USI run; ``.fit()`` trains it.

    The datasets must yield images normalized with the student's mean/std (see :func:`usi_transforms`).

    Args:
        cfg: The recipe (with any overrides).
        train_dataset: ``(image, label)`` training samples with the training transform.
        val_dataset: ``(image, label)`` validation samples with the evaluation transform.
        model: The student (default: :func:`create_student`).
        teacher: A teacher module (frozen and BN-fused here unless it is already a :class:`FrozenTeacher`); default:
            built from ``cfg.teacher`` / ``cfg.teacher_checkpoint``, or none when ``cfg.teacher`` is "none" or
            ``cfg.teacher_logits`` is set.
        run_info: Extra facts stored with the run (classes, data folders, ...).
        meter: Validation meter (default: top-1 / top-5 accuracy).
        eval_fn: ``(model, batch) -> (outputs, targets)`` for validation, when the meter needs more than logits.
    """
    if cfg.kd_only and not (cfg.kd or teacher is not None):
        raise UserError("--kd-only needs a teacher (--teacher) or stored teacher logits (--teacher-logits)")
    device = du.init_distributed(cfg.device)
    model = model if model is not None else create_student(cfg)
    mean, std = model_mean_std(model, mean=cfg.mean, std=cfg.std)
    if cfg.lr_base_batch:
        global_batch = cfg.batch_size * du.get_world_size()
        cfg = dataclasses.replace(cfg, lr=cfg.lr * global_batch / cfg.lr_base_batch)
    stored = None
    if cfg.teacher_logits:
        stored = TeacherLogits(cfg.teacher_logits, dataset=train_dataset, num_classes=cfg.num_classes)
        train_dataset = IndexedDataset(train_dataset)
        teacher = None
    elif teacher is not None and not isinstance(teacher, FrozenTeacher):
        teacher = FrozenTeacher(
            teacher.to(device),
            student_mean=mean,
            student_std=std,
            mean=cfg.teacher_mean,
            std=cfg.teacher_std,
            fuse_bn=cfg.teacher_fuse_bn,
            input_size=(3, cfg.img_size, cfg.img_size),
            channels_last=cfg.teacher_channels_last,
            compile=cfg.teacher_compile,
        )
    elif teacher is None and cfg.kd:
        teacher = create_teacher(
            cfg.teacher,
            num_classes=cfg.num_classes,
            student_mean=mean,
            student_std=std,
            checkpoint=cfg.teacher_checkpoint,
            pretrained=cfg.teacher_pretrained,
            mean=cfg.teacher_mean,
            std=cfg.teacher_std,
            img_size=cfg.img_size,
            fuse_bn=cfg.teacher_fuse_bn,
            channels_last=cfg.teacher_channels_last,
            compile=cfg.teacher_compile,
            device=device,
        )
    if teacher is not None:
        teacher.to(device)
    if cfg.channels_last:
        model.to(memory_format=torch.channels_last)
    mixup = KDMixup(
        mixup_alpha=cfg.mixup,
        cutmix_alpha=cfg.cutmix,
        prob=cfg.mixup_prob,
        switch_prob=cfg.mixup_switch_prob,
        mode=cfg.mixup_mode,
        label_smoothing=cfg.label_smoothing,
        num_classes=cfg.num_classes,
    )
    loss = USIDistillationLoss(
        alpha_kd=cfg.kd_weight, temperature=cfg.kd_temperature, gt_weight=cfg.gt_weight, kd_only=cfg.kd_only
    )
    info = {
        "paper": "USI, arXiv 2204.03475",
        "student_mean": list(mean),
        "student_std": list(std),
        "kd": "stored logits" if stored is not None else ("online teacher" if teacher is not None else "none"),
        "teacher_mean": list(teacher.mean) if isinstance(teacher, FrozenTeacher) else None,
        "teacher_std": list(teacher.std) if isinstance(teacher, FrozenTeacher) else None,
        **(run_info or {}),
    }
    trainer = Trainer(
        model,
        nn.CrossEntropyLoss(),
        train_dataset,
        cfg,
        val_dataset=val_dataset,
        meter=meter if meter is not None else AccuracyMeter(topk=(1, 5)),
        eval_fn=eval_fn,
        step_fn=KDStep(loss, teacher),
        batch_transform=KDBatchTransform(mixup, teacher_logits=stored, channels_last=cfg.channels_last),
        train_sampler=_train_sampler(cfg),
        run_info=info,
    )
    trainer.teacher = teacher
    return trainer


def train_usi(
    cfg: USIRecipe,
    *,
    train_dir: str | os.PathLike,
    val_dir: str | os.PathLike | None = None,
    model: nn.Module | None = None,
    teacher: nn.Module | None = None,
    recipe_name: str | None = None,
) -> TrainResult:
    """Train on ImageNet-style folders (``train_dir/<class>/<image>``) with the USI recipe.

    Args:
        cfg: The recipe.
        train_dir: Training folder.
        val_dir: Validation folder (same class folders), evaluated every epoch at crop ``cfg.crop_pct``.
        model: The student (default: ``cfg.model`` from timm).
        teacher: A teacher module instead of the one ``cfg`` names.
        recipe_name: Name of the recipe, stored with the run.
    """
    train_ds, val_ds = usi_datasets(cfg, train_dir=train_dir, val_dir=val_dir, recipe_name=recipe_name)
    model = model if model is not None else create_student(cfg)
    mean, std = model_mean_std(model, mean=cfg.mean, std=cfg.std)
    train_ds.transform, eval_tf = usi_transforms(cfg, mean, std)
    if val_ds is not None:
        val_ds.transform = eval_tf
    info = {
        "recipe": recipe_name,
        "classes": train_ds.classes,
        "train_dir": os.fspath(train_dir),
        "val_dir": os.fspath(val_dir) if val_dir is not None else None,
    }
    trainer = build_usi_trainer(cfg, train_ds, val_dataset=val_ds, model=model, teacher=teacher, run_info=info)
    return trainer.fit()


def usi_datasets(
    cfg: USIRecipe,
    *,
    train_dir: str | os.PathLike,
    val_dir: str | os.PathLike | None = None,
    recipe_name: str | None = None,
) -> tuple[Dataset, Dataset | None]:
    """``(train, val or None)`` class folders checked against the recipe before anything is built or downloaded.

    The transforms are left unset (they depend on the student's normalisation: :func:`usi_transforms`).

    Args:
        cfg: The recipe.
        train_dir: Training folder (``train_dir/<class>/<image>``).
        val_dir: Validation folder with the training classes.
        recipe_name: Name of the recipe, for messages.

    Raises:
        UserError: The folders do not fit the recipe (class count, missing classes in the validation folder).
    """
    train_ds = image_folder(train_dir, transform=None, strict=cfg.strict)
    found = len(train_ds.classes)
    if found != cfg.num_classes:
        raise UserError(
            f"{train_dir} has {found} class folders but the recipe {recipe_name or type(cfg).__name__!r} is for "
            f"{cfg.num_classes} classes; pass --num-classes {found}"
        )
    val_ds = None
    if val_dir is not None:
        missing = [c for c in train_ds.classes if not (os.path.isdir(os.path.join(val_dir, c)))]
        if missing:
            raise UserError(
                f"the validation folder {val_dir} lacks {len(missing)} of the training classes (e.g. {missing[0]!r}); "
                "it needs one folder per training class (or pick another --val-split)"
            )
        val_ds = image_folder(val_dir, transform=None, classes=train_ds.classes, strict=cfg.strict)
    return train_ds, val_ds
