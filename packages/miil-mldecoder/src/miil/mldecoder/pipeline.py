"""Recipe -> model, data, loss and training run; trained run -> evaluation and predictions. Used by the CLI.

Paper: "ML-Decoder: Scalable and Versatile Classification Head", Ridnik et al., 2021 (arXiv 2111.12933). The three
settings of the paper share one pipeline: multi-label (ASL, mAP), single-label (CE with label smoothing or BCE, top-k
accuracy) and zero-shot (word-vector queries trained on the seen classes, ZSL / GZSL metrics over seen + unseen).
Training always goes through ``miil.core.train.Trainer`` (AMP, EMA keep-best, DDP under torchrun, exact resume).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from torch.utils.data import Dataset
from torchvision import transforms as T

from miil.core.data import (
    CocoMultiLabelDataset,
    ImageFolderDataset,
    MultiLabelCSVDataset,
    floor_posterize_bits,
    multilabel_eval_transform,
    multilabel_train_transform,
)
from miil.core.io import load_checkpoint, load_into
from miil.core.losses import AsymmetricLoss
from miil.core.metrics import AccuracyMeter, MeanAPMeter
from miil.core.train import Trainer, TrainResult, seed_everything

from .data import NusWideDataset, VOCDataset, load_word_vectors
from .factory import create_model
from .query_augment import QueryAugmentation
from .recipes import TASKS, MLDecoderRecipe
from .zsl_metrics import ZeroShotMeter, load_zsl_split

__all__ = [
    "DATA_FORMATS",
    "DataSource",
    "build_dataset",
    "build_model",
    "eval_transform",
    "load_trained",
    "model_spec",
    "normalization",
    "train",
    "train_transform",
]

DATA_FORMATS = ("coco", "csv", "voc", "folder", "nuswide")


# --------------------------------------------------------------------------------------------------- model


def model_spec(recipe: MLDecoderRecipe, num_classes: int) -> dict[str, Any]:
    """Everything needed to rebuild the model of a run (stored with its checkpoints)."""
    if recipe.task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {recipe.task!r}")
    try:
        model_kwargs = json.loads(recipe.model_kwargs or "{}")
    except json.JSONDecodeError as err:
        raise ValueError(f"--model-kwargs is not valid JSON ({recipe.model_kwargs!r}): {err}") from None
    if not isinstance(model_kwargs, dict):
        raise ValueError(f"--model-kwargs must be a JSON object, got {recipe.model_kwargs!r}")
    head = "zero_shot" if recipe.task == "zsl" else recipe.head
    if recipe.task == "zsl" and recipe.head == "linear":
        raise ValueError("zero-shot training needs the ML-Decoder head (--head ml_decoder)")
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


def build_model(spec: dict[str, Any], *, pretrained: bool = False, checkpoint: str | None = None) -> nn.Module:
    """The model described by :func:`model_spec`."""
    kwargs = dict(spec.get("head_kwargs", {}))
    if spec["head"] != "linear":
        kwargs["drop_prefix_tokens"] = spec.get("drop_prefix_tokens", True)
    return create_model(
        spec["name"],
        None if spec["head"] == "zero_shot" else spec["num_classes"],
        head=spec["head"],
        pretrained=pretrained,
        checkpoint=checkpoint,
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


@dataclass(frozen=True)
class DataSource:
    """Where one split's data lives.

    Args:
        format: "coco" (image folder + instances JSON), "csv" (miil-core multi-label CSV), "voc" (VOCdevkit year
            folder + split name), "folder" (``root/<class>/<image>``, single-label) or "nuswide" (image folder +
            ``data.csv``).
        root: Image root (VOC: the ``VOC2007`` folder).
        labels: Annotation file (COCO JSON, CSV, ``data.csv``) or VOC split name; unused for "folder".
        split: NUS-WIDE split to keep ("train" / "val").
    """

    format: str
    root: str | None
    labels: str | None = None
    split: str | None = None


def build_dataset(
    source: DataSource,
    transform: Any,
    *,
    classes: Sequence[str] | None = None,
    strict: bool = False,
    only_with_classes: Sequence[int] | None = None,
) -> Dataset:
    """A dataset for one split (``classes`` fixes the class order where the format allows it)."""
    fmt = source.format
    if fmt not in DATA_FORMATS:
        raise ValueError(f"data format must be one of {DATA_FORMATS}, got {fmt!r}")
    if fmt == "coco":
        if not source.root or not source.labels:
            raise ValueError("COCO data needs an image folder (--*-root) and an instances JSON file (--*-labels)")
        ds: Any = CocoMultiLabelDataset(source.root, source.labels, transform=transform, strict=strict)
    elif fmt == "csv":
        if not source.labels:
            raise ValueError("CSV data needs the CSV file (--*-labels); --*-root defaults to its folder")
        ds = MultiLabelCSVDataset(source.labels, source.root, transform=transform, classes=classes, strict=strict)
    elif fmt == "voc":
        if not source.root:
            raise ValueError("VOC data needs the VOCdevkit year folder (--*-root), e.g. VOCdevkit/VOC2007")
        ds = VOCDataset(source.root, source.labels or "trainval", transform=transform, strict=strict)
    elif fmt == "folder":
        if not source.root:
            raise ValueError("image-folder data needs --*-root (layout root/<class>/<image>)")
        ds = ImageFolderDataset(source.root, transform=transform, classes=classes, strict=strict)
    else:
        if not source.root or not source.labels:
            raise ValueError("NUS-WIDE data needs the image folder (--*-root) and data.csv (--*-labels)")
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
        raise ValueError(
            f"the classes of {source.labels or source.root} ({len(ds.classes)}) differ from the training classes "
            f"({len(classes)}); first differences: "
            f"{[(a, b) for a, b in zip(ds.classes, classes) if a != b][:5]}"
        )
    return ds


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

    Args:
        recipe: The (possibly overridden) recipe.
        train_source: Training data.
        val_source: Validation data (multi-label and single-label: the same classes; zero-shot: all classes).
        recipe_name: Stored with the run.
        word_vectors: Zero-shot: word vectors of all classes, in the dataset's class order.
        zsl_split: Zero-shot: JSON file with the seen ("train class") and unseen ("test class") names.
        strict: Raise on unreadable images instead of skipping them.
    """
    seed_everything(recipe.seed)
    probe = build_dataset(train_source, None, strict=strict)
    classes = list(probe.classes)
    num_classes = len(classes)
    if recipe.num_classes and recipe.task != "zsl" and recipe.num_classes != num_classes:
        raise ValueError(
            f"the recipe expects {recipe.num_classes} classes but the training data has {num_classes}; "
            "pass --num-classes 0 to take the count from the data"
        )
    seen: list[int] | None = None
    if recipe.task == "zsl":
        if word_vectors is None or zsl_split is None:
            raise ValueError("zero-shot training needs --word-vectors and --zsl-split")
        wv = load_word_vectors(word_vectors, num_classes)
        seen, unseen = load_zsl_split(zsl_split, classes)
    spec = model_spec(recipe, num_classes)
    model = build_model(spec, pretrained=recipe.pretrained, checkpoint=recipe.checkpoint)
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
    }
    kwargs: dict[str, Any] = {}
    if seen is not None:
        run_info.update(seen=seen, unseen=unseen, word_vectors=str(word_vectors))
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

        def eval_fn(net: nn.Module, batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
            return net(batch[0], word_vectors=wv.to(batch[0].device)), batch[1]

        kwargs.update(step_fn=step_fn, eval_fn=eval_fn, meter=ZeroShotMeter(torch.tensor(unseen)))
    elif recipe.task == "singlelabel":
        loss_fn = _single_label_loss(recipe)
        kwargs.update(meter=AccuracyMeter(topk=(1, 5)), batch_transform=_mixup(recipe, num_classes))
    else:
        loss_fn = AsymmetricLoss(gamma_neg=recipe.gamma_neg, gamma_pos=recipe.gamma_pos, clip=recipe.clip)
        kwargs.update(meter=MeanAPMeter())
    val_ds = None
    if val_source is not None:
        val_ds = build_dataset(val_source, evaluation, classes=classes, strict=strict)
    trainer = Trainer(model, loss_fn, train_ds, recipe, val_dataset=val_ds, run_info=run_info, **kwargs)
    return trainer.fit()


# --------------------------------------------------------------------------------------------------- trained runs


def _sidecar(weights: Path) -> dict[str, Any]:
    for candidate in (weights.with_suffix(".json"), weights.parent / "best.json"):
        if candidate.is_file():
            meta = json.loads(candidate.read_text())
            if "run_info" in meta and "model" in meta["run_info"]:
                return meta["run_info"]
    raise FileNotFoundError(
        f"no model description found next to {weights} (expected {weights.with_suffix('.json')} written by "
        "'miil mldecoder train' or 'miil mldecoder convert')"
    )


def load_trained(path: str | os.PathLike, *, device: str | torch.device = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """A trained model and its run info, from a run folder (its ``best``) or a ``.safetensors`` file with sidecar.

    Args:
        path: Run directory written by ``train``, or weights written by ``train`` / ``convert``.
        device: Device to move the model to.
    """
    path = Path(path)
    weights = path / "best.safetensors" if path.is_dir() else path
    if not weights.is_file():
        raise FileNotFoundError(f"no weights at {weights}")
    info = _sidecar(weights)
    model = build_model(info["model"])
    load_into(model, load_checkpoint(weights))
    return model.to(device).eval(), info
