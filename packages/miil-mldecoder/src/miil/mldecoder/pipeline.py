"""Recipe -> model, data, loss and training run; trained run -> evaluation and predictions. Used by the CLI.

Paper: "ML-Decoder: Scalable and Versatile Classification Head", Ridnik et al., 2021 (arXiv 2111.12933). The three
settings of the paper share one pipeline: multi-label (ASL, mAP), single-label (CE with label smoothing or BCE, top-k
accuracy) and zero-shot (word-vector queries trained on the seen classes, ZSL / GZSL metrics over seen + unseen).
Training always goes through ``miil.core.train.Trainer`` (AMP, EMA keep-best, DDP under torchrun, exact resume).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn as nn
from torch.utils.data import Dataset
from torchvision import transforms as T

from miil.core.cli_args import parse_model_kwargs
from miil.core.data import (
    CocoMultiLabelDataset,
    ImageFolderDataset,
    MultiLabelCSVDataset,
    OpenImagesDataset,
    floor_posterize_bits,
    multilabel_eval_transform,
    multilabel_train_transform,
)
from miil.core.errors import UserError
from miil.core.io import extract_state_dict, load_file, load_into, resolve_weights
from miil.core.losses import AsymmetricLoss
from miil.core.metrics import AccuracyMeter, MeanAPMeter
from miil.core.train import Trainer, TrainResult, seed_everything

from .data import NusWideDataset, VOCDataset, load_word_vectors
from .factory import create_model
from .query_augment import QueryAugmentation
from .recipes import RECIPES, TASKS, MLDecoderRecipe
from .sources import DATA_FORMATS, MULTI_LABEL_FORMATS, DataSource
from .zsl_metrics import ZeroShotMeter, load_zsl_split

__all__ = [
    "DATA_FORMATS",
    "DataSource",
    "build_dataset",
    "build_meter",
    "build_model",
    "check_recipe_data",
    "eval_transform",
    "load_trained",
    "model_spec",
    "normalization",
    "train",
    "train_transform",
]


# --------------------------------------------------------------------------------------------------- model


def model_spec(recipe: MLDecoderRecipe, num_classes: int) -> dict[str, Any]:
    """Everything needed to rebuild the model of a run (stored with its checkpoints)."""
    if recipe.task not in TASKS:
        raise UserError(f"--task must be one of {', '.join(TASKS)}, got {recipe.task!r}")
    model_kwargs = parse_model_kwargs(recipe.model_kwargs or "{}")
    head = "zero_shot" if recipe.task == "zsl" else recipe.head
    if recipe.task == "zsl" and recipe.head == "linear":
        raise UserError("zero-shot training needs the ML-Decoder head (--head ml_decoder)")
    head_kwargs: dict[str, Any] = {}
    if head != "linear":
        head_kwargs = dict(
            embed_dim=recipe.embed_dim,
            num_heads=recipe.num_heads,
            ffn_dim=recipe.ffn_dim,
            dropout=recipe.decoder_dropout,
        )
        if head == "zero_shot":
            head_kwargs["word_dim"] = recipe.word_dim
        else:
            head_kwargs.update(num_groups=recipe.num_groups, learnable_queries=recipe.learnable_queries)
    return {
        "name": recipe.model,
        "num_classes": int(num_classes),
        "head": head,
        "model_kwargs": model_kwargs,
        "drop_prefix_tokens": recipe.drop_prefix_tokens,
        "head_kwargs": head_kwargs,
    }


def build_model(spec: dict[str, Any], *, pretrained: bool = False, init_checkpoint: str | None = None) -> nn.Module:
    """The model described by :func:`model_spec`."""
    kwargs = dict(spec.get("head_kwargs", {}))
    if spec["head"] != "linear":
        kwargs["drop_prefix_tokens"] = spec.get("drop_prefix_tokens", True)
    return create_model(
        spec["name"],
        None if spec["head"] == "zero_shot" else spec["num_classes"],
        head=spec["head"],
        pretrained=pretrained,
        checkpoint=init_checkpoint,
        model_kwargs=spec.get("model_kwargs"),
        **kwargs,
    )


def _backbone(model: nn.Module) -> nn.Module:
    return getattr(model, "backbone", model)


def normalization(model: nn.Module, enabled: bool) -> tuple[list[float], list[float]] | None:
    """The timm model's (mean, std), or ``None`` when normalisation is off (TResNet's config is (0, 1) anyway)."""
    if not enabled:
        return None
    cfg = getattr(_backbone(model), "pretrained_cfg", None) or {}
    mean, std = cfg.get("mean", (0.485, 0.456, 0.406)), cfg.get("std", (0.229, 0.224, 0.225))
    return [float(m) for m in mean], [float(s) for s in std]


# --------------------------------------------------------------------------------------------------- data


def _with_norm(steps: T.Compose, norm: tuple[Sequence[float], Sequence[float]] | None) -> T.Compose:
    if norm is None:
        return steps
    return T.Compose([*steps.transforms, T.Normalize(norm[0], norm[1])])


def train_transform(recipe: MLDecoderRecipe, norm: tuple[Sequence[float], Sequence[float]] | None) -> Any:
    """Training transform: the MIIL multi-label pipeline, or timm's ImageNet pipeline for single-label runs.

    Posterize keeps at least 1 bit in both (``miil.core.data.floor_posterize_bits``): ``rand-m7-mstd0.5-inc1`` asks
    for 0 bits, which Pillow rejects, whenever its Gaussian magnitude reaches 10.
    """
    if recipe.task == "singlelabel":
        from timm.data import create_transform

        mean, std = norm if norm is not None else ((0.0,) * 3, (1.0,) * 3)
        return floor_posterize_bits(
            create_transform(recipe.img_size, is_training=True, auto_augment=recipe.randaug or None, mean=mean, std=std)
        )
    steps = multilabel_train_transform(recipe.img_size, cutout_factor=recipe.cutout or None, randaug=recipe.randaug)
    return _with_norm(steps, norm)


def eval_transform(img_size: int, task: str, norm: tuple[Sequence[float], Sequence[float]] | None) -> Any:
    """Evaluation transform: squish resize (multi-label, zero-shot) or timm's resize + centre crop (single-label)."""
    if task == "singlelabel":
        from timm.data import create_transform

        mean, std = norm if norm is not None else ((0.0,) * 3, (1.0,) * 3)
        return create_transform(img_size, is_training=False, mean=mean, std=std)
    return _with_norm(multilabel_eval_transform(img_size), norm)


def build_dataset(
    source: DataSource,
    transform: Any,
    *,
    classes: Sequence[str] | None = None,
    strict: bool = False,
    only_with_classes: Sequence[int] | None = None,
) -> Dataset:
    """A dataset for one resolved split (``classes`` fixes the class order where the format allows it)."""
    fmt = source.format
    if fmt not in DATA_FORMATS:
        raise UserError(f"--data-format must be one of {', '.join(DATA_FORMATS)}, got {fmt!r}")
    if fmt == "coco":
        ds: Any = CocoMultiLabelDataset(source.root, source.labels, transform=transform, strict=strict)
    elif fmt == "csv":
        ds = MultiLabelCSVDataset(source.labels, source.root, transform=transform, classes=classes, strict=strict)
    elif fmt == "voc":
        ds = VOCDataset(source.root, source.split or "trainval", transform=transform, strict=strict)
    elif fmt == "folder":
        ds = ImageFolderDataset(source.root, transform=transform, classes=classes, strict=strict)
    elif fmt == "openimages":
        if source.classes is None:
            raise UserError(f"{source.describe()} records no class list: pass --data-format openimages --data-root")
        ds = OpenImagesDataset(
            source.labels, source.root, classes=source.classes, split=source.split, transform=transform, strict=strict
        )
    else:
        ds = NusWideDataset(
            source.root,
            source.labels,
            split=source.split,
            classes=classes,
            only_with_classes=only_with_classes,
            transform=transform,
            strict=strict,
        )
    if classes is not None and list(ds.classes) != list(classes):
        raise UserError(
            f"the classes of {source.describe()} ({len(ds.classes)}) differ from the model's ({len(classes)}); "
            f"first differences: {[(a, b) for a, b in zip(ds.classes, classes) if a != b][:5]}"
        )
    return ds


def _recipes_for(task: str) -> list[str]:
    return sorted(name for name, r in RECIPES.items() if r.task == task)


def check_recipe_data(recipe: MLDecoderRecipe, fmt: str, *, recipe_name: str = "custom") -> None:
    """Refuse, before anything is built, a recipe whose task does not fit the data format.

    Raises:
        UserError: Naming the recipes (``--recipe``) or the ``--task`` that fit the data.
    """
    if recipe.task not in TASKS:
        raise UserError(f"--task must be one of {', '.join(TASKS)}, got {recipe.task!r}")
    if fmt == "folder" and recipe.task != "singlelabel":
        raise UserError(
            f"--data-format folder holds single-label data (one class folder per image), but recipe {recipe_name!r} "
            f"trains {recipe.task} classification; use --recipe {' / '.join(_recipes_for('singlelabel'))} "
            "or --task singlelabel"
        )
    if fmt in MULTI_LABEL_FORMATS and recipe.task == "singlelabel":
        raise UserError(
            f"--data-format {fmt} holds multi-label data, but recipe {recipe_name!r} trains single-label "
            f"classification; use --recipe {' / '.join(_recipes_for('multilabel'))} or --task multilabel"
        )
    if recipe.task == "zsl" and fmt != "nuswide":
        raise UserError(
            f"zero-shot training (recipe {recipe_name!r}, --task zsl) reads NUS-WIDE data (data.csv, word vectors, "
            f"seen / unseen split): use --data-format nuswide, or --recipe {' / '.join(_recipes_for('multilabel'))}"
        )


def build_meter(task: str, *, unseen: Sequence[int] | None = None, prf_threshold: float | None = None) -> Any:
    """The validation meter of a task: mAP (multi-label), top-1 / top-5 (single-label) or ZSL / GZSL metrics."""
    if task == "zsl":
        return ZeroShotMeter(torch.tensor(list(unseen or [])))
    if task == "singlelabel":
        return AccuracyMeter(topk=(1, 5))
    return MeanAPMeter(prf_threshold=prf_threshold)


# --------------------------------------------------------------------------------------------------- training


def _single_label_loss(recipe: MLDecoderRecipe) -> nn.Module:
    if recipe.single_label_loss == "ce":
        # Mixup/cutmix targets already carry the smoothing; nn.CrossEntropyLoss takes soft targets too.
        smoothing = 0.0 if (recipe.mixup or recipe.cutmix) else recipe.label_smoothing
        return nn.CrossEntropyLoss(label_smoothing=smoothing)
    if recipe.single_label_loss == "bce":
        from timm.loss import BinaryCrossEntropy

        smoothing = 0.0 if (recipe.mixup or recipe.cutmix) else recipe.label_smoothing
        return BinaryCrossEntropy(smoothing=smoothing, target_threshold=recipe.bce_target_threshold)
    raise ValueError(f"single_label_loss must be 'ce' or 'bce', got {recipe.single_label_loss!r}")


def _mixup(recipe: MLDecoderRecipe, num_classes: int):
    if not (recipe.mixup or recipe.cutmix):
        return None
    from timm.data import Mixup

    mix = Mixup(
        mixup_alpha=recipe.mixup,
        cutmix_alpha=recipe.cutmix,
        label_smoothing=recipe.label_smoothing,
        num_classes=num_classes,
    )

    def transform(batch):
        x, y = mix(batch[0], batch[1])
        return [x, y, *batch[2:]]

    return transform


def train(
    recipe: MLDecoderRecipe,
    train_source: DataSource,
    val_source: DataSource | None = None,
    *,
    recipe_name: str = "custom",
    word_vectors: str | None = None,
    zsl_split: str | None = None,
    strict: bool = False,
) -> TrainResult:
    """Train (or resume) a run of ``recipe`` on the given data; returns the engine's result.

    The recipe is checked against the data before anything is built (:func:`check_recipe_data`, the class count).

    Args:
        recipe: The (possibly overridden) recipe.
        train_source: Training data.
        val_source: Validation data (multi-label and single-label: the same classes; zero-shot: all classes).
        recipe_name: Stored with the run.
        word_vectors: Zero-shot: word vectors of all classes, in the dataset's class order.
        zsl_split: Zero-shot: JSON file with the seen ("train class") and unseen ("test class") names.
        strict: Stop at the first unreadable image instead of skipping it.
    """
    check_recipe_data(recipe, train_source.format, recipe_name=recipe_name)
    seed_everything(recipe.seed)
    probe = build_dataset(train_source, None, strict=strict)
    classes = list(probe.classes)
    num_classes = len(classes)
    if recipe.num_classes and recipe.task != "zsl" and recipe.num_classes != num_classes:
        raise UserError(
            f"recipe {recipe_name!r} expects {recipe.num_classes} classes but the training data "
            f"({train_source.describe()}) has {num_classes}; pass --num-classes 0 to take the count from the data"
        )
    seen: list[int] | None = None
    if recipe.task == "zsl":
        if word_vectors is None or zsl_split is None:
            raise UserError("zero-shot training needs --word-vectors and --zsl-split")
        wv = load_word_vectors(word_vectors, num_classes)
        seen, unseen = load_zsl_split(zsl_split, classes)
    spec = model_spec(recipe, num_classes)
    model = build_model(spec, pretrained=recipe.pretrained, init_checkpoint=recipe.init_checkpoint)
    norm = normalization(model, recipe.normalize)
    train_ds = build_dataset(
        train_source, train_transform(recipe, norm), classes=classes, strict=strict, only_with_classes=seen
    )
    evaluation = eval_transform(recipe.img_size, recipe.task, norm)
    run_info: dict[str, Any] = {
        "package": "miil-mldecoder",
        "recipe": recipe_name,
        "task": recipe.task,
        "classes": classes,
        "model": spec,
        "img_size": recipe.img_size,
        "normalization": norm,
        "prf_threshold": recipe.prf_threshold,
        "data": {"train": train_source.as_dict(), "val": val_source.as_dict() if val_source else None},
    }
    kwargs: dict[str, Any] = {}
    if seen is not None:
        run_info.update(seen=seen, unseen=unseen, word_vectors=str(word_vectors), zsl_split=str(zsl_split))
        model.head.set_word_vectors(wv[seen])
        augment = QueryAugmentation(
            noise_std=recipe.query_noise,
            num_random_queries=recipe.random_queries,
            random_query_target=recipe.random_query_target,
        )
        seen_index = torch.tensor(seen)
        loss_fn = AsymmetricLoss(gamma_neg=recipe.gamma_neg, gamma_pos=recipe.gamma_pos, clip=recipe.clip)

        def step_fn(net: nn.Module, batch: Any) -> torch.Tensor:
            x, y = batch[0], batch[1][:, seen_index.to(batch[1].device)]
            augment.train(net.training)  # the augmentations act in training mode only
            queries, y = augment(wv[seen].to(x.device), y)
            return loss_fn(net(x, word_vectors=queries), y)

        kwargs.update(step_fn=step_fn, eval_fn=zero_shot_eval_fn(wv), meter=build_meter("zsl", unseen=unseen))
    elif recipe.task == "singlelabel":
        loss_fn = _single_label_loss(recipe)
        kwargs.update(meter=build_meter("singlelabel"), batch_transform=_mixup(recipe, num_classes))
    else:
        loss_fn = AsymmetricLoss(gamma_neg=recipe.gamma_neg, gamma_pos=recipe.gamma_pos, clip=recipe.clip)
        kwargs.update(meter=build_meter("multilabel"))
    val_ds = None
    if val_source is not None:
        val_ds = build_dataset(val_source, evaluation, classes=classes, strict=strict)
    trainer = Trainer(model, loss_fn, train_ds, recipe, val_dataset=val_ds, run_info=run_info, **kwargs)
    return trainer.fit()


def zero_shot_eval_fn(word_vectors: torch.Tensor):
    """``eval_fn(model, batch)`` of a zero-shot model: logits of every class (seen and unseen) from its vectors."""

    def eval_fn(net: nn.Module, batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
        return net(batch[0], word_vectors=word_vectors.to(batch[0].device)), batch[1]

    return eval_fn


# --------------------------------------------------------------------------------------------------- trained runs


def load_trained(
    path: str | os.PathLike, *, device: str | torch.device = "cpu"
) -> tuple[nn.Module, dict[str, Any], dict[str, Any]]:
    """A trained model, its run info and its sidecar, from a run folder (its ``best``) or a weights file.

    The weights are opened first, through :func:`miil.core.io.load_file` (no pickled code runs), then the sidecar
    (``best.json``, or the ``.json`` that ``convert`` writes beside its output) says how to build the model.

    Args:
        path: ``--weights``: a run folder written by ``train``, or weights written by ``train`` / ``convert``.
        device: Device to move the model to.

    Returns:
        ``(model in eval mode, run_info, sidecar)``; the sidecar's ``eval_precision`` is the run's precision.
    """
    weights, meta = resolve_weights(path)
    state = extract_state_dict(load_file(weights, what="weights"))
    info = (meta or {}).get("run_info") or {}
    if "model" not in info:
        raise UserError(
            f"no model description beside {weights} (expected {weights.with_suffix('.json')} or the run's best.json, "
            "written by 'miil mldecoder train' or 'miil mldecoder convert')"
        )
    model = build_model(info["model"])
    load_into(model, state)
    return model.to(device).eval(), info, meta or {}
