"""Training for ImageNet-21K-P (and downstream transfer) on :class:`miil.core.train.Trainer`.

Paper: "ImageNet-21K Pretraining for the Masses", Ridnik et al. (arXiv 2104.10972): semantic-softmax pretraining
(``train_semantic_softmax.py``), its single-label baseline, semantic KD from a teacher (described in the paper,
never released: here a ``step_fn`` that adds :class:`SemanticKDLoss` to the semantic softmax, the teacher seeing the
student's batch under the same autocast), and downstream fine-tuning. The paper's one-cycle schedule (``div_factor``
20, no momentum cycling) is the engine's own (the recipes set ``div_factor`` and ``cycle_momentum``); DDP comes from
the engine under torchrun. ``validate`` and ``infer`` live in :mod:`miil.in21k.evaluation`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from timm.data import resolve_data_config
from torch.utils.data import Dataset
from torchvision import transforms as T

from miil.core import distributed as du
from miil.core.data import ImageFolderDataset, SquishResize, floor_posterize_bits
from miil.core.errors import UserError
from miil.core.metrics import AccuracyMeter
from miil.core.train import Trainer, TrainResult

from .data import TreeImageFolder, find_split_folder, in21k_eval_transform, in21k_train_transform
from .hierarchy import SemanticHierarchy
from .kd import SemanticKDLoss
from .loss import SemanticSoftmaxLoss
from .metrics import SemanticAccuracyMeter
from .models import convert_original_checkpoint, create_in21k_model
from .recipes import In21kRecipe, SemanticPretrainRecipe, TransferRecipe
from .tree import load_tree

__all__ = [
    "TREE_FILE",
    "SemanticKDStep",
    "build_pretrain_trainer",
    "build_transfer_trainer",
    "recipe_normalization",
    "recipe_transforms",
    "train",
]

TREE_FILE = "tree.json.gz"


def recipe_normalization(model: nn.Module, recipe: In21kRecipe) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """``(mean, std)`` of the inputs: the recipe's when set, else the model's timm config (MIIL models: 0 and 1).

    Args:
        model: The network that will be trained.
        recipe: The recipe.
    """
    cfg = resolve_data_config({}, model=model)
    mean = tuple(recipe.mean) if recipe.mean is not None else tuple(cfg["mean"])
    std = tuple(recipe.std) if recipe.std is not None else tuple(cfg["std"])
    return mean, std


class SemanticKDStep:
    """Training step: semantic softmax (or any ``loss_fn``) plus ``kd_weight`` x semantic KD from a frozen teacher.

    The teacher runs in eval mode without gradients on the student's (augmented) batch, renormalised from the
    student's input normalisation to its own; it is not wrapped in DDP.

    Args:
        teacher: Teacher model with the same classes as the student.
        loss_fn: ``loss_fn(student_logits, targets)``.
        kd_loss: ``kd_loss(student_logits, teacher_logits)``.
        kd_weight: Weight of the KD term.
        student_norm: ``(mean, std)`` of the student's inputs.
        teacher_norm: ``(mean, std)`` the teacher expects.
    """

    def __init__(
        self,
        teacher: nn.Module,
        loss_fn: nn.Module,
        kd_loss: nn.Module,
        *,
        kd_weight: float = 1.0,
        student_norm: tuple[Sequence[float], Sequence[float]] = ((0.0,) * 3, (1.0,) * 3),
        teacher_norm: tuple[Sequence[float], Sequence[float]] = ((0.0,) * 3, (1.0,) * 3),
    ):
        self.teacher = teacher.eval().requires_grad_(False)
        self.loss_fn = loss_fn
        self.kd_loss = kd_loss
        self.kd_weight = float(kd_weight)
        s_mean, s_std = (torch.tensor(v, dtype=torch.float32).view(1, -1, 1, 1) for v in student_norm)
        t_mean, t_std = (torch.tensor(v, dtype=torch.float32).view(1, -1, 1, 1) for v in teacher_norm)
        self.renorm = None
        if not (torch.equal(s_mean, t_mean) and torch.equal(s_std, t_std)):
            # x_t = (raw - mean_t) / std_t with raw = x_s * std_s + mean_s
            self.renorm = (s_std / t_std, (s_mean - t_mean) / t_std)

    def to(self, device: torch.device) -> SemanticKDStep:
        self.teacher.to(device)
        if self.renorm is not None:
            self.renorm = tuple(t.to(device) for t in self.renorm)
        return self

    def __call__(self, model: nn.Module, batch: Any) -> torch.Tensor:
        x, y = batch[0], batch[1]
        logits = model(x)
        with torch.no_grad():
            xt = x if self.renorm is None else x * self.renorm[0] + self.renorm[1]
            teacher_logits = self.teacher(xt)
        return self.loss_fn(logits, y) + self.kd_weight * self.kd_loss(logits, teacher_logits)


def _load_teacher(recipe: SemanticPretrainRecipe, num_classes: int) -> nn.Module:
    from miil.core.backbones import create_backbone

    name = recipe.teacher
    local = recipe.teacher_checkpoint is not None
    teacher = create_backbone(name, pretrained=recipe.teacher_pretrained and not local, num_classes=num_classes)
    if local:
        teacher.load_state_dict(convert_original_checkpoint(recipe.teacher_checkpoint, teacher), strict=True)
    elif not recipe.teacher_pretrained:
        raise UserError("a KD teacher needs weights: --teacher-pretrained true or --teacher-checkpoint FILE")
    return teacher


def _class_loss(recipe: SemanticPretrainRecipe, hierarchy: SemanticHierarchy) -> nn.Module:
    if recipe.loss == "semantic_softmax":
        return SemanticSoftmaxLoss(hierarchy, label_smoothing=recipe.label_smoothing)
    if recipe.loss == "single_label":
        return nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)
    raise ValueError(f"loss must be 'semantic_softmax' or 'single_label', got {recipe.loss!r}")


def build_pretrain_trainer(
    recipe: SemanticPretrainRecipe,
    data_root: str | os.PathLike | None = None,
    *,
    train_split: str | None = None,
    val_split: str | None = None,
    train_dataset: Dataset | None = None,
    val_dataset: Dataset | None = None,
    model: nn.Module | None = None,
    model_kwargs: dict[str, Any] | None = None,
    strict: bool = False,
    recipe_name: str | None = None,
) -> Trainer:
    """A ready :class:`Trainer` for semantic-softmax (or single-label) pretraining, with KD when a teacher is set.

    Args:
        recipe: The recipe.
        data_root: Folder with ``imagenet21k_train`` / ``imagenet21k_val`` (or ``train`` / ``val``) class folders.
        train_split: Name of the training folder under ``data_root`` (default: found as above).
        val_split: Name of the validation folder under ``data_root`` (default: found as above, if present).
        train_dataset: Use this dataset instead of ``data_root``'s train folder (labels: tree indices).
        val_dataset: Use this dataset instead of ``data_root``'s val folder.
        model: Use this model instead of creating ``recipe.model``.
        model_kwargs: Extra ``timm.create_model`` arguments for ``recipe.model``.
        strict: Stop at the first unreadable image instead of skipping it.
        recipe_name: Recorded in the run directory.
    """
    tree = load_tree(recipe.tree)
    hierarchy = SemanticHierarchy(
        tree, include_deepest=recipe.include_deepest, max_level_weight=recipe.max_level_weight
    )
    init = None
    if model is None:
        model, init = create_in21k_model(
            recipe.model,
            num_classes=len(tree),
            pretrained=recipe.pretrained,
            init_checkpoint=recipe.init_checkpoint,
            **(model_kwargs or {}),
        )
    mean, std = recipe_normalization(model, recipe)
    train_tf, val_tf = recipe_transforms(recipe, mean, std)
    if train_dataset is None:
        if data_root is None:
            raise ValueError("pass data_root (or train_dataset)")
        folder = find_split_folder(data_root, "train", train_split)
        train_dataset = TreeImageFolder(folder, tree, transform=train_tf, strict=strict)
    if val_dataset is None and data_root is not None:
        folder = _val_folder(data_root, val_split)
        if folder is not None:
            val_dataset = TreeImageFolder(folder, tree, transform=val_tf, strict=strict)
    loss_fn = _class_loss(recipe, hierarchy)
    step = None
    if recipe.teacher:
        teacher = _load_teacher(recipe, len(tree))
        t_cfg = resolve_data_config({}, model=teacher)
        step = SemanticKDStep(
            teacher,
            loss_fn,
            SemanticKDLoss(hierarchy, reduction=recipe.kd_reduction, distance=recipe.kd_distance),
            kd_weight=recipe.kd_weight,
            student_norm=(mean, std),
            teacher_norm=(tuple(t_cfg["mean"]), tuple(t_cfg["std"])),
        )
    run_info = {
        "package": "miil-in21k",
        "task": "pretrain",
        "recipe": recipe_name,
        "tree": recipe.tree,
        "num_classes": len(tree),
        "levels": hierarchy.depths,
        "mean": list(mean),
        "std": list(std),
        "model_kwargs": dict(model_kwargs or {}),
    }
    if init is not None:
        run_info["init"] = init.summary()
    trainer = Trainer(
        model,
        loss_fn,
        train_dataset,
        recipe,
        val_dataset=val_dataset,
        meter=SemanticAccuracyMeter(hierarchy),
        step_fn=step,
        run_info=run_info,
    )
    if step is not None:
        step.to(trainer.device)
    if du.is_main_process():
        tree.save(Path(recipe.out_dir) / TREE_FILE)
    return trainer


def _val_folder(data_root: str | os.PathLike, name: str | None) -> Path | None:
    """The validation folder: the named one, else the default one when the root has it (training without is fine)."""
    if name is not None:
        return find_split_folder(data_root, "val", name)
    try:
        return find_split_folder(data_root, "val")
    except UserError:
        return None


def transfer_train_transform(recipe: TransferRecipe, mean: Sequence[float], std: Sequence[float]) -> T.Compose:
    """Squish, flip, AutoAugment (posterize keeps >= 1 bit), ToTensor, Normalize, random erasing (transfer training)."""
    from timm.data.auto_augment import auto_augment_transform
    from timm.data.random_erasing import RandomErasing

    steps: list[Any] = [SquishResize(recipe.img_size)]
    if recipe.hflip > 0:
        steps.append(T.RandomHorizontalFlip(recipe.hflip))
    if recipe.auto_augment:
        fill = tuple(min(255, round(255 * m)) for m in mean)
        steps.append(
            auto_augment_transform(
                recipe.auto_augment, {"translate_const": int(recipe.img_size * 0.45), "img_mean": fill}
            )
        )
    steps += [T.ToTensor(), T.Normalize(mean=tuple(mean), std=tuple(std))]
    if recipe.reprob > 0:
        steps.append(RandomErasing(probability=recipe.reprob, mode="pixel", device="cpu"))
    return floor_posterize_bits(T.Compose(steps))


def _transfer_eval_transform(recipe: In21kRecipe, mean: Sequence[float], std: Sequence[float]) -> T.Compose:
    return T.Compose([SquishResize(recipe.img_size), T.ToTensor(), T.Normalize(mean=tuple(mean), std=tuple(std))])


def recipe_transforms(recipe: In21kRecipe, mean: Sequence[float], std: Sequence[float]) -> tuple[Any, Any]:
    """``(training transform, evaluation transform)`` of a recipe, as the trainers build them.

    Args:
        recipe: A pretraining or transfer recipe.
        mean: Input mean (:func:`recipe_normalization`).
        std: Input std.
    """
    if isinstance(recipe, SemanticPretrainRecipe):
        train_tf = in21k_train_transform(
            recipe.img_size, cutout_factor=recipe.cutout, randaug=recipe.randaug or None, mean=mean, std=std
        )
        return train_tf, in21k_eval_transform(recipe.img_size, mean=mean, std=std)
    if isinstance(recipe, TransferRecipe):
        return transfer_train_transform(recipe, mean, std), _transfer_eval_transform(recipe, mean, std)
    raise TypeError(f"unknown recipe type {type(recipe).__name__}")


def build_transfer_trainer(
    recipe: TransferRecipe,
    data_root: str | os.PathLike,
    *,
    train_split: str | None = None,
    val_split: str | None = None,
    model_kwargs: dict[str, Any] | None = None,
    strict: bool = False,
    recipe_name: str | None = None,
) -> Trainer:
    """A ready :class:`Trainer` fine-tuning ``recipe.model`` on ``data_root/train`` (validated on ``data_root/val``).

    Args:
        recipe: The transfer recipe.
        data_root: Folder with ``train`` and ``val`` folders of class folders.
        train_split: Name of the training folder under ``data_root`` (default ``train``).
        val_split: Name of the validation folder (default ``val``, if present).
        model_kwargs: Extra ``timm.create_model`` arguments for ``recipe.model``.
        strict: Stop at the first unreadable image instead of skipping it.
        recipe_name: Recorded in the run directory.
    """
    train_dir = find_split_folder(data_root, "train", train_split)
    classes = sorted(d.name for d in train_dir.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not classes:
        raise UserError(f"no class folders in {train_dir}; expected {train_dir}/<class>/<image>")
    model, init = create_in21k_model(
        recipe.model,
        num_classes=len(classes),
        pretrained=recipe.pretrained,
        init_checkpoint=recipe.init_checkpoint,
        **(model_kwargs or {}),
    )
    mean, std = recipe_normalization(model, recipe)
    train_tf, val_tf = recipe_transforms(recipe, mean, std)
    train_ds = ImageFolderDataset(train_dir, classes=classes, transform=train_tf, strict=strict)
    val_dir = _val_folder(data_root, val_split)
    val_ds = None
    if val_dir is not None:
        found = (d.name for d in val_dir.iterdir() if d.is_dir() and not d.name.startswith("."))
        extra = sorted(set(found) - set(classes))
        if extra:
            raise UserError(
                f"validation classes {extra[:5]} of {val_dir} have no training folder in {train_dir}; the model "
                "could not learn them: fix the folders or choose another --val-split"
            )
        val_ds = ImageFolderDataset(val_dir, classes=classes, transform=val_tf, strict=strict)
    run_info = {
        "package": "miil-in21k",
        "task": "transfer",
        "recipe": recipe_name,
        "classes": classes,
        "num_classes": len(classes),
        "mean": list(mean),
        "std": list(std),
        "model_kwargs": dict(model_kwargs or {}),
    }
    if init is not None:
        run_info["init"] = init.summary()
    return Trainer(
        model,
        nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing),
        train_ds,
        recipe,
        val_dataset=val_ds,
        meter=AccuracyMeter(topk=(1, 5)),
        run_info=run_info,
    )


def train(
    recipe: In21kRecipe,
    data_root: str | os.PathLike,
    *,
    train_split: str | None = None,
    val_split: str | None = None,
    model_kwargs: dict[str, Any] | None = None,
    strict: bool = False,
    recipe_name: str | None = None,
) -> TrainResult:
    """Train a recipe on a dataset folder; returns the engine's result (see the builders for the arguments)."""
    kwargs = dict(
        train_split=train_split,
        val_split=val_split,
        model_kwargs=model_kwargs,
        strict=strict,
        recipe_name=recipe_name,
    )
    if isinstance(recipe, SemanticPretrainRecipe):
        trainer = build_pretrain_trainer(recipe, data_root, **kwargs)
    elif isinstance(recipe, TransferRecipe):
        trainer = build_transfer_trainer(recipe, data_root, **kwargs)
    else:
        raise TypeError(f"unknown recipe type {type(recipe).__name__}")
    return trainer.fit()
