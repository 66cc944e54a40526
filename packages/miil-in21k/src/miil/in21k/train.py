"""Training, validation and inference for ImageNet-21K-P on :class:`miil.core.train.Trainer`.

Paper: "ImageNet-21K Pretraining for the Masses", Ridnik et al. (arXiv 2104.10972): semantic-softmax pretraining
(``train_semantic_softmax.py``), its single-label baseline, semantic KD from a teacher (described in the paper,
never released: here a ``step_fn`` that adds :class:`SemanticKDLoss` to the semantic softmax, the teacher seeing the
student's batch under the same autocast), and downstream fine-tuning. The paper's one-cycle schedule (``div_factor``
20, no momentum cycling) is installed on the trainer; DDP comes from the engine under torchrun.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from timm.data import resolve_data_config
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms as T

from miil.core import distributed as du
from miil.core.data import (
    ImageFolderDataset,
    SquishResize,
    UnreadablePolicy,
    floor_posterize_bits,
    skip_unreadable_collate,
)
from miil.core.metrics import AccuracyMeter
from miil.core.train import OneCycleSchedule, Trainer, TrainResult, load_run_weights
from miil.core.train.schedule import LRSchedule

from .data import TreeImageFolder, find_split_folder, in21k_eval_transform, in21k_train_transform
from .hierarchy import SemanticHierarchy
from .inference import hierarchical_predict
from .kd import SemanticKDLoss
from .loss import SemanticSoftmaxLoss
from .metrics import SemanticAccuracyMeter
from .models import convert_original_checkpoint, create_in21k_model
from .recipes import In21kRecipe, SemanticPretrainRecipe, TransferRecipe
from .tree import SemanticTree, load_tree

__all__ = [
    "SemanticKDStep",
    "build_pretrain_trainer",
    "build_transfer_trainer",
    "install_paper_onecycle",
    "load_trained_model",
    "predict_images",
    "recipe_normalization",
    "recipe_transforms",
    "train",
    "validate",
    "validate_classifier",
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


def install_paper_onecycle(trainer: Trainer, *, div_factor: float = 20.0, cycle_momentum: bool = False) -> None:
    """Replace the engine's one-cycle schedule by the paper's (``OneCycleLR(pct_start, div_factor=20,
    cycle_momentum=False)``), stepped per update.

    The core's ``create_schedule("onecycle")`` fixes ``div_factor=25`` and cycles the momentum; the optimizer's betas
    it already moved are restored first.
    """
    cfg = trainer.cfg
    for group in trainer.optimizer.param_groups:
        if "betas" in group:
            group["betas"] = tuple(cfg.opt_betas) if cfg.opt_betas is not None else (0.9, 0.999)
        elif "momentum" in group:
            group["momentum"] = cfg.momentum
    impl = OneCycleSchedule(
        trainer.optimizer,
        max_lr=cfg.lr,
        total_steps=max(1, cfg.epochs * trainer.updates_per_epoch),
        pct_start=cfg.pct_start,
        div_factor=div_factor,
        cycle_momentum=cycle_momentum,
    )
    trainer.schedule = LRSchedule(impl, on_updates=True)


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
        raise ValueError("a KD teacher needs weights: --teacher-pretrained true or --teacher-checkpoint FILE")
    return teacher


def _class_loss(recipe: SemanticPretrainRecipe, hierarchy: SemanticHierarchy) -> nn.Module:
    if recipe.loss == "semantic_softmax":
        return SemanticSoftmaxLoss(hierarchy, label_smoothing=recipe.label_smoothing)
    if recipe.loss == "single_label":
        return nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)
    raise ValueError(f"loss must be 'semantic_softmax' or 'single_label', got {recipe.loss!r}")


def build_pretrain_trainer(
    recipe: SemanticPretrainRecipe,
    data_dir: str | os.PathLike | None = None,
    *,
    train_dataset: Dataset | None = None,
    val_dataset: Dataset | None = None,
    model: nn.Module | None = None,
    recipe_name: str | None = None,
) -> Trainer:
    """A ready :class:`Trainer` for semantic-softmax (or single-label) pretraining, with KD when a teacher is set.

    Args:
        recipe: The recipe.
        data_dir: Folder with ``imagenet21k_train`` / ``imagenet21k_val`` (or ``train`` / ``val``) class folders.
        train_dataset: Use this dataset instead of ``data_dir``'s train folder (labels: tree indices).
        val_dataset: Use this dataset instead of ``data_dir``'s val folder.
        model: Use this model instead of creating ``recipe.model``.
        recipe_name: Recorded in the run directory.
    """
    tree = load_tree(recipe.tree)
    hierarchy = SemanticHierarchy(
        tree, include_deepest=recipe.include_deepest, max_level_weight=recipe.max_level_weight
    )
    init = None
    if model is None:
        model, init = create_in21k_model(
            recipe.model, num_classes=len(tree), pretrained=recipe.pretrained, init_checkpoint=recipe.init_checkpoint
        )
    mean, std = recipe_normalization(model, recipe)
    train_tf, val_tf = recipe_transforms(recipe, mean, std)
    if train_dataset is None:
        if data_dir is None:
            raise ValueError("pass data_dir (or train_dataset)")
        train_dataset = TreeImageFolder(find_split_folder(data_dir, "train"), tree, transform=train_tf)
    if val_dataset is None and data_dir is not None:
        val_dataset = TreeImageFolder(find_split_folder(data_dir, "val"), tree, transform=val_tf)
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
    if recipe.sched == "onecycle":
        install_paper_onecycle(
            trainer, div_factor=recipe.onecycle_div_factor, cycle_momentum=recipe.onecycle_cycle_momentum
        )
    if du.is_main_process():
        tree.save(Path(recipe.out_dir) / TREE_FILE)
    return trainer


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
            recipe.img_size, cutout_factor=recipe.cutout_factor, randaug=recipe.randaug or None, mean=mean, std=std
        )
        return train_tf, in21k_eval_transform(recipe.img_size, mean=mean, std=std)
    if isinstance(recipe, TransferRecipe):
        return transfer_train_transform(recipe, mean, std), _transfer_eval_transform(recipe, mean, std)
    raise TypeError(f"unknown recipe type {type(recipe).__name__}")


def build_transfer_trainer(
    recipe: TransferRecipe, data_dir: str | os.PathLike, *, recipe_name: str | None = None
) -> Trainer:
    """A ready :class:`Trainer` fine-tuning ``recipe.model`` on ``data_dir/train`` (validated on ``data_dir/val``).

    Args:
        recipe: The transfer recipe.
        data_dir: Folder with ``train`` and ``val`` folders of class folders.
        recipe_name: Recorded in the run directory.
    """
    root = Path(data_dir)
    classes = (
        sorted(d.name for d in (root / "train").iterdir() if d.is_dir() and not d.name.startswith("."))
        if (root / "train").is_dir()
        else []
    )
    if not classes:
        raise FileNotFoundError(f"no class folders in {root / 'train'}; expected {root}/train/<class>/<image>")
    model, init = create_in21k_model(
        recipe.model, num_classes=len(classes), pretrained=recipe.pretrained, init_checkpoint=recipe.init_checkpoint
    )
    mean, std = recipe_normalization(model, recipe)
    train_tf, val_tf = recipe_transforms(recipe, mean, std)
    train_ds = ImageFolderDataset(root / "train", classes=classes, transform=train_tf)
    val_ds = ImageFolderDataset(root / "val", classes=classes, transform=val_tf)
    run_info = {
        "package": "miil-in21k",
        "task": "transfer",
        "recipe": recipe_name,
        "classes": classes,
        "num_classes": len(classes),
        "mean": list(mean),
        "std": list(std),
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


def train(recipe: In21kRecipe, data_dir: str | os.PathLike, *, recipe_name: str | None = None) -> TrainResult:
    """Train a recipe on a dataset folder; returns the engine's result."""
    if isinstance(recipe, SemanticPretrainRecipe):
        trainer = build_pretrain_trainer(recipe, data_dir, recipe_name=recipe_name)
    elif isinstance(recipe, TransferRecipe):
        trainer = build_transfer_trainer(recipe, data_dir, recipe_name=recipe_name)
    else:
        raise TypeError(f"unknown recipe type {type(recipe).__name__}")
    return trainer.fit()


def load_trained_model(
    *,
    run_dir: str | os.PathLike | None = None,
    which: str = "best",
    model: str | None = None,
    checkpoint: str | os.PathLike | None = None,
    pretrained: bool = False,
    tree: str | None = None,
) -> tuple[nn.Module, SemanticTree | None, dict[str, Any]]:
    """A model ready for evaluation: from a run directory, or a timm name with a checkpoint or timm's weights.

    Args:
        run_dir: A ``miil in21k train`` run (its config, tree and weights are used).
        which: ``"best"`` or ``"last"`` weights of the run.
        model: timm model name (without ``run_dir``).
        checkpoint: Weights for ``model``: ours, timm's, or an original ``*_miil_21k.pth``.
        pretrained: Use timm's weights of ``model`` (e.g. ``tresnet_m.miil_in21k``; hub download).
        tree: Tree of the model's classes (default: the run's, or fall11).

    Returns:
        ``(model, tree or None for transfer runs, info)`` where info holds ``mean``, ``std``, ``img_size`` and, for
        transfer runs, ``classes``.
    """
    from miil.core.backbones import create_backbone

    if run_dir is not None:
        state, sidecar = load_run_weights(run_dir, which)
        config, run_info = sidecar["config"], sidecar.get("run_info", {})
        net = create_backbone(config["model"], num_classes=run_info["num_classes"])
        net.load_state_dict(state, strict=True)
        info = {"mean": run_info["mean"], "std": run_info["std"], "img_size": config["img_size"]}
        if run_info.get("task") == "transfer":
            info["classes"] = run_info["classes"]
            return net.eval(), None, info
        tree_obj = load_tree(tree) if tree else SemanticTree.load(Path(run_dir) / TREE_FILE)
        return net.eval(), tree_obj, info
    if model is None:
        raise ValueError("pass a run directory or a model name")
    tree_obj = load_tree(tree or "fall11")
    net = create_backbone(model, pretrained=pretrained and checkpoint is None, num_classes=len(tree_obj))
    if checkpoint is not None:
        net.load_state_dict(convert_original_checkpoint(checkpoint, net), strict=True)
    elif not pretrained:
        raise ValueError(f"model {model!r} needs weights: pass a checkpoint or pretrained=True")
    cfg = resolve_data_config({}, model=net)
    info = {"mean": list(cfg["mean"]), "std": list(cfg["std"]), "img_size": int(cfg["input_size"][-1])}
    return net.eval(), tree_obj, info


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


@torch.no_grad()
def validate(
    model: nn.Module,
    tree: SemanticTree,
    val_dir: str | os.PathLike,
    *,
    img_size: int = 224,
    mean: Sequence[float] = (0.0, 0.0, 0.0),
    std: Sequence[float] = (1.0, 1.0, 1.0),
    batch_size: int = 128,
    num_workers: int = 0,
    device: str = "auto",
    include_deepest: bool = False,
) -> dict[str, float]:
    """Semantic accuracy (and flat top-1) of a model on a folder of class folders labelled by ``tree``.

    Args:
        model: The model (outputs over the tree's classes).
        tree: The tree.
        val_dir: Folder of class folders.
        img_size: Squish size.
        mean: Input normalisation mean.
        std: Input normalisation std.
        batch_size: Images per batch.
        num_workers: Loader workers.
        device: ``auto`` | ``cpu`` | ``cuda``.
        include_deepest: Score the deepest level too.
    """
    dev = _device(device)
    hierarchy = SemanticHierarchy(tree, include_deepest=include_deepest)
    ds = TreeImageFolder(val_dir, tree, transform=in21k_eval_transform(img_size, mean=mean, std=std))
    loader = DataLoader(ds, batch_size=batch_size, num_workers=num_workers, collate_fn=skip_unreadable_collate)
    meter = SemanticAccuracyMeter(hierarchy)
    model = model.to(dev).eval()
    for batch in loader:
        if batch is None:
            continue
        x, y = batch[0].to(dev), batch[1].to(dev)
        meter.update(model(x).float(), y)
    out = meter.compute()
    out["images"] = float(len(ds))
    return out


@torch.no_grad()
def predict_images(
    model: nn.Module,
    images: Sequence[str | os.PathLike],
    *,
    tree: SemanticTree | None,
    classes: Sequence[str] | None = None,
    img_size: int = 224,
    mean: Sequence[float] = (0.0, 0.0, 0.0),
    std: Sequence[float] = (1.0, 1.0, 1.0),
    threshold: float = 0.5,
    top_k: int = 5,
    batch_size: int = 32,
    device: str = "auto",
) -> list[dict[str, Any]]:
    """Predictions for image files: hierarchical labels with a tree, else the top-k classes.

    Args:
        model: The model.
        images: Image paths.
        tree: The model's tree (semantic-softmax models), or ``None``.
        classes: Class names for a model without tree.
        img_size: Squish size.
        mean: Input normalisation mean.
        std: Input normalisation std.
        threshold: Level-probability threshold of the hierarchical inference.
        top_k: Classes listed per image without a tree.
        batch_size: Images per forward pass.
        device: ``auto`` | ``cpu`` | ``cuda``.
    """
    dev = _device(device)
    model = model.to(dev).eval()
    hierarchy = SemanticHierarchy(tree) if tree is not None else None
    transform = in21k_eval_transform(img_size, mean=mean, std=std)
    policy = UnreadablePolicy(strict=True)
    results: list[dict[str, Any]] = []
    for start in range(0, len(images), batch_size):
        paths = [str(p) for p in images[start : start + batch_size]]
        x = torch.stack([transform(policy.load_image(p)) for p in paths]).to(dev)
        logits = model(x).float()
        if hierarchy is not None:
            pred = hierarchical_predict(logits, hierarchy, threshold=threshold)
            for i, path in enumerate(paths):
                labels = [
                    {"wnid": tree.class_list[c], "name": tree.names[c], "level": tree.depths[c], "prob": round(p, 4)}
                    for c, p in pred.labels(i)
                ]
                results.append({"image": path, "labels": labels})
        else:
            probs = F.softmax(logits, dim=1)
            k = min(top_k, probs.shape[1])
            top = probs.topk(k, dim=1)
            for i, path in enumerate(paths):
                names = classes or [str(c) for c in range(probs.shape[1])]
                labels = [
                    {"class": names[c], "prob": round(p, 4)}
                    for c, p in zip(top.indices[i].tolist(), top.values[i].tolist())
                ]
                results.append({"image": path, "labels": labels})
    return results


@torch.no_grad()
def validate_classifier(
    model: nn.Module,
    val_dir: str | os.PathLike,
    classes: Sequence[str],
    *,
    img_size: int = 224,
    mean: Sequence[float] = (0.0, 0.0, 0.0),
    std: Sequence[float] = (1.0, 1.0, 1.0),
    batch_size: int = 128,
    num_workers: int = 0,
    device: str = "auto",
) -> dict[str, float]:
    """Top-1 / top-5 accuracy of a fine-tuned (single-label) model on ``val_dir/<class>/<image>``.

    Args:
        model: The model.
        val_dir: Folder of class folders named as ``classes``.
        classes: The model's classes, in output order.
        img_size: Squish size.
        mean: Input normalisation mean.
        std: Input normalisation std.
        batch_size: Images per batch.
        num_workers: Loader workers.
        device: ``auto`` | ``cpu`` | ``cuda``.
    """
    dev = _device(device)
    ds = ImageFolderDataset(
        val_dir, classes=list(classes), transform=in21k_eval_transform(img_size, mean=mean, std=std)
    )
    loader = DataLoader(ds, batch_size=batch_size, num_workers=num_workers, collate_fn=skip_unreadable_collate)
    meter = AccuracyMeter(topk=(1, 5))
    model = model.to(dev).eval()
    for batch in loader:
        if batch is not None:
            meter.update(model(batch[0].to(dev)).float(), batch[1])
    out = meter.compute()
    out["images"] = float(len(ds))
    return out
