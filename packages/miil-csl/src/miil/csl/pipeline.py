"""The CSL training pipeline: data, simulation, the two stages (temporary ignore model -> prior -> selective model).

Paper: "Multi-label Classification with Partial Annotations using Class-aware Selective Loss" (arXiv 2110.10955),
Section 3.3 and Figure 3: first a temporary model is trained in the ``ignore`` mode and its average predictions on
the training set give the class prior; then the target model is trained with the selective loss using that prior.
:func:`train_csl` runs both stages in one call (and under torchrun), skipping the first when a prior is given; the
reference needed two separate runs and a hand-copied CSV. Training itself is the core's engine.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from torch.utils.data import Dataset
from torchvision import transforms as T

from miil.core import distributed as du
from miil.core.data import (
    CocoMultiLabelDataset,
    DigitMosaicDataset,
    MultiLabelCSVDataset,
    SquishResize,
    multilabel_eval_transform,
    multilabel_train_transform,
)
from miil.core.io import load_into
from miil.core.metrics import MeanAPMeter
from miil.core.train import Trainer, load_run_weights

from .data import LVISFederatedDataset, OpenImagesDataset, SparseLabels
from .loss import PartialSelectiveLoss
from .metrics import PartialMAPMeter
from .model import MultiLabelClassifier, create_csl_model
from .prior import ClassPrior, estimate_prior
from .recipes import CSLConfig
from .simulation import apply_partial_simulation

__all__ = [
    "CSLRunResult",
    "DataSpec",
    "build_datasets",
    "build_loss",
    "build_meter",
    "build_model",
    "config_from_dict",
    "eval_transform",
    "load_run_model",
    "load_split",
    "mosaic_dataset",
    "model_kwargs",
    "train_csl",
    "train_transform",
]

PRIOR_FILE = "prior.csv"
STAGE1_DIR = "stage1_ignore"


@dataclass(frozen=True)
class DataSpec:
    """Where the data lives (not part of a recipe).

    Args:
        train: Training labels: COCO instances JSON, OpenImages CSV, LVIS JSON or a miil multi-label CSV.
        train_root: Image folder of the training set (default: the official layout's, else the labels' folder).
        val: Validation labels (same format).
        val_root: Image folder of the validation set.
        classes: OpenImages class list (trainable MIDs ``.txt``, descriptions ``.csv`` or ``mid_to_classes.pth``).
        train_split: OpenImages ``csl`` layout: split name of the training rows.
        val_split: OpenImages ``csl`` layout: split name of the validation rows.
        strict: Raise on unreadable images instead of skipping them.
    """

    train: str | None = None
    train_root: str | None = None
    val: str | None = None
    val_root: str | None = None
    classes: str | None = None
    train_split: str | None = "train"
    val_split: str | None = "val"
    strict: bool = False


@dataclass
class CSLRunResult:
    out_dir: Path
    best_metric: float
    best_epoch: int
    prior_path: Path | None
    stage1_metric: float | None
    history: list[dict[str, Any]] = field(default_factory=list)


def config_from_dict(values: dict[str, Any]) -> CSLConfig:
    """Rebuild a :class:`CSLConfig` from its JSON form (as stored in ``config.json`` / ``best.json``)."""
    names = {f.name for f in dataclasses.fields(CSLConfig)}
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items() if k in names}
    return CSLConfig(**kwargs)


def model_kwargs(cfg: CSLConfig) -> dict[str, Any]:
    """The recipe's ``model_args`` JSON as keyword arguments of the backbone."""
    if not cfg.model_args.strip():
        return {}
    try:
        kwargs = json.loads(cfg.model_args)
    except json.JSONDecodeError as err:
        raise ValueError(f"--model-args must be a JSON object, got {cfg.model_args!r}: {err}") from None
    if not isinstance(kwargs, dict):
        raise ValueError(f"--model-args must be a JSON object, got {cfg.model_args!r}")
    return kwargs


def build_model(cfg: CSLConfig, num_classes: int, *, pretrained: bool | None = None) -> MultiLabelClassifier:
    """The recipe's classifier; ``pretrained`` overrides the recipe (False when weights are loaded afterwards)."""
    return create_csl_model(
        cfg.model,
        num_classes=num_classes,
        bottleneck_features=cfg.bottleneck_features,
        pretrained=cfg.pretrained if pretrained is None else pretrained,
        checkpoint=cfg.checkpoint if pretrained is None else None,
        in_chans=cfg.in_chans,
        **model_kwargs(cfg),
    )


def build_loss(cfg: CSLConfig, classes: list[str], prior: ClassPrior | None = None) -> PartialSelectiveLoss:
    """The recipe's :class:`PartialSelectiveLoss` (``prior`` is matched to ``classes`` by name)."""
    return PartialSelectiveLoss(
        mode=cfg.mode,
        gamma_pos=cfg.gamma_pos,
        gamma_neg=cfg.gamma_neg,
        gamma_unann=cfg.gamma_unann,
        alpha_pos=cfg.alpha_pos,
        alpha_neg=cfg.alpha_neg,
        alpha_unann=cfg.alpha_unann,
        clip=cfg.clip,
        likelihood_topk=cfg.likelihood_topk,
        topk_scope=cfg.topk_scope,
        prior=prior,
        classes=classes,
        prior_threshold=cfg.prior_threshold,
    )


def eval_transform(cfg: CSLConfig):
    """PIL -> tensor transform for validation and inference."""
    if cfg.in_chans == 1:
        return T.Compose([T.Grayscale(1), SquishResize(cfg.img_size), T.ToTensor()])
    return multilabel_eval_transform(cfg.img_size)


def train_transform(cfg: CSLConfig):
    """PIL -> tensor transform for training: squish, CutoutPIL and RandAugment (grey models: the eval transform)."""
    if cfg.in_chans == 1:
        return eval_transform(cfg)
    return multilabel_train_transform(cfg.img_size, cutout_factor=cfg.cutout, randaug=cfg.randaug)


def _root(data_format: str, labels: str, root: str | None) -> str:
    """The image folder: ``root`` when given, else where the official layouts put the images, else the labels' folder.

    COCO's ``coco/annotations/instances_train2014.json`` describes ``coco/train2014/``; LVIS's
    ``coco/annotations/lvis_v1_train.json`` names its images ``train2017/...`` relative to ``coco/``.
    """
    if root is not None:
        return root
    path = Path(labels).absolute()
    if path.parent.name == "annotations":
        if data_format == "coco" and path.stem.startswith("instances_"):
            images = path.parent.parent / path.stem.removeprefix("instances_")
            if images.is_dir():
                return str(images)
        if data_format == "lvis":
            return str(path.parent.parent)
    return str(path.parent)


def mosaic_dataset(split: str) -> DigitMosaicDataset:
    """The CSL demo's digit mosaics: up to four digits each, long-tailed classes (weight ``0.7**c`` for digit ``c``)."""
    return DigitMosaicDataset(split, max_digits=4, decay=0.7)


def load_split(cfg: CSLConfig, spec: DataSpec, split: str, transform) -> Dataset:
    """One split (``"train"`` or ``"val"``) of the recipe's data format, without simulation."""
    labels = spec.train if split == "train" else spec.val
    root = spec.train_root if split == "train" else spec.val_root
    if cfg.data_format == "mosaic":
        return mosaic_dataset("train" if split == "train" else "test")
    if labels is None:
        raise ValueError(f"data format {cfg.data_format!r} needs --{split} (the {split} labels file)")
    root = _root(cfg.data_format, labels, root)
    if cfg.data_format == "coco":
        return CocoMultiLabelDataset(root, labels, transform=transform, strict=spec.strict)
    if cfg.data_format == "lvis":
        return LVISFederatedDataset(labels, root, transform=transform, strict=spec.strict)
    if cfg.data_format == "openimages":
        if spec.classes is None:
            raise ValueError("OpenImages needs --classes (the trainable class list or the class descriptions file)")
        return OpenImagesDataset(
            labels,
            root,
            classes=spec.classes,
            split=spec.train_split if split == "train" else spec.val_split,
            transform=transform,
            strict=spec.strict,
        )
    return MultiLabelCSVDataset(labels, root, transform=transform, strict=spec.strict)


def build_datasets(
    cfg: CSLConfig, spec: DataSpec, *, verbose: bool = True
) -> tuple[Dataset, Dataset | None, list[str], Any]:
    """Training set (with the recipe's partial-label simulation applied) and validation set.

    Returns:
        ``(train, val or None, classes, simulation summary or None)``.
    """
    train = load_split(cfg, spec, "train", train_transform(cfg))
    summary = apply_partial_simulation(
        train, cfg.simulate, cfg.simulate_param, seed=cfg.simulate_seed, verbose=verbose and du.is_main_process()
    )
    val = None
    if cfg.data_format == "mosaic" or spec.val is not None:
        val = load_split(cfg, spec, "val", eval_transform(cfg))
        if list(val.classes) != list(train.classes):
            raise ValueError(
                f"the validation set's classes ({len(val.classes)}) differ from the training set's "
                f"({len(train.classes)}) or are in another order; use label files with the same class list"
            )
    return train, val, list(train.classes), summary


def _has_unknown(dataset: Dataset) -> bool:
    targets = getattr(dataset, "targets", None)
    if isinstance(targets, SparseLabels):
        return True
    return isinstance(targets, torch.Tensor) and bool((targets == -1).any())


def build_meter(cfg: CSLConfig, val: Dataset | None):
    """Partial-label mAP for partially labelled validation sets, standard mAP (and CP..OF1) otherwise."""
    if val is None:
        return None
    if _has_unknown(val):
        return PartialMAPMeter()
    return MeanAPMeter(prf_threshold=cfg.prf_threshold)


def _without_augmentation(cfg: CSLConfig, dataset: Dataset) -> Dataset:
    """The training set with the evaluation transform (the prior is estimated on un-augmented images)."""
    if cfg.data_format == "mosaic" or not hasattr(dataset, "transform"):
        return dataset  # mosaics are tensors without augmentation
    clone = copy.copy(dataset)
    clone.transform = eval_transform(cfg)
    return clone


def _fit(cfg: CSLConfig, model: nn.Module, loss: nn.Module, train: Dataset, val: Dataset | None, run_info: dict):
    trainer = Trainer(model, loss, train, cfg, val_dataset=val, meter=build_meter(cfg, val), run_info=run_info)
    return trainer, trainer.fit()


def _stage1_prior(cfg: CSLConfig, train: Dataset, val: Dataset | None, classes: list[str], run_info: dict):
    out = Path(cfg.out_dir)
    prior_file = out / PRIOR_FILE
    stage_cfg = dataclasses.replace(
        cfg, mode="ignore", out_dir=str(out / STAGE1_DIR), epochs=cfg.prior_epochs or cfg.epochs
    )
    if cfg.resume and prior_file.is_file():
        if du.is_main_process():
            print(f"[miil-csl] stage 1: reusing the class prior {prior_file}", flush=True)
        return ClassPrior.load(prior_file), None
    if du.is_main_process():
        print(f"[miil-csl] stage 1: temporary model in 'ignore' mode ({stage_cfg.epochs} epochs) -> class prior")
    torch.manual_seed(cfg.seed)
    model = build_model(stage_cfg, len(classes))
    trainer, result = _fit(stage_cfg, model, build_loss(stage_cfg, classes), train, val, {**run_info, "stage": 1})
    weights, _ = load_run_weights(stage_cfg.out_dir, "best")
    trainer.model.load_state_dict(weights)
    prior = estimate_prior(
        trainer.model,
        _without_augmentation(cfg, train),
        classes,
        batch_size=cfg.eval_batch_size or 2 * cfg.batch_size,
        num_workers=cfg.num_workers,
        amp_dtype=trainer.amp_dtype,
    )
    if du.is_main_process():
        prior.save(prior_file)
        above = prior.above(cfg.prior_threshold)
        print(
            f"[miil-csl] class prior saved to {prior_file} ({prior}); {len(above)} of {len(classes)} classes above "
            f"the threshold {cfg.prior_threshold}: their un-annotated labels are ignored",
            flush=True,
        )
    du.barrier()
    return prior, result.best_metric


def train_csl(
    cfg: CSLConfig, data: DataSpec | None = None, *, recipe: str | None = None, verbose: bool = True
) -> CSLRunResult:
    """Train with a CSL recipe; with ``mode="selective"``, a threshold and no ``prior_path``, estimate the prior first.

    Args:
        cfg: The recipe (with overrides).
        data: Data locations (not needed for ``data_format="mosaic"``).
        recipe: Recipe name, stored in the run's config.
        verbose: Print the simulation summary and stage messages.
    """
    data = data or DataSpec()
    du.init_distributed(cfg.device)  # under torchrun: ranks are known before anything is printed
    train, val, classes, summary = build_datasets(cfg, data, verbose=verbose)
    run_info: dict[str, Any] = {
        "recipe": recipe,
        "classes": classes,
        "data": dataclasses.asdict(data),
        "simulation": str(summary) if summary is not None else None,
    }
    prior = None
    prior_path: Path | None = None
    stage1 = None
    if cfg.mode == "selective" and cfg.prior_threshold:
        if cfg.prior_path:
            prior_path = Path(cfg.prior_path)
            prior = ClassPrior.load(prior_path)
        else:
            prior, stage1 = _stage1_prior(cfg, train, val, classes, run_info)
            prior_path = Path(cfg.out_dir) / PRIOR_FILE
        run_info["prior"] = str(prior_path)
    torch.manual_seed(cfg.seed)
    model = build_model(cfg, len(classes))
    _, result = _fit(cfg, model, build_loss(cfg, classes, prior), train, val, run_info)
    return CSLRunResult(
        out_dir=Path(cfg.out_dir),
        best_metric=result.best_metric,
        best_epoch=result.best_epoch,
        prior_path=prior_path,
        stage1_metric=stage1,
        history=result.history,
    )


def load_run_model(run_dir: str | os.PathLike, which: str = "best") -> tuple[MultiLabelClassifier, CSLConfig, dict]:
    """Rebuild a trained model from its run directory (or a converted checkpoint's directory).

    Returns:
        ``(model in eval mode, config, run_info)``; ``run_info["classes"]`` lists the class names.
    """
    run = Path(run_dir)
    if not (run / f"{which}.json").is_file():
        raise FileNotFoundError(f"{run} holds no {which}.json; is it a `miil csl train` run directory?")
    weights, meta = load_run_weights(run, which)
    cfg = config_from_dict(meta["config"])
    info = meta.get("run_info", {})
    classes = info.get("classes")
    if not classes:
        raise ValueError(f"{run}/{which}.json has no class list in run_info")
    model = build_model(cfg, len(classes), pretrained=False)
    load_into(model, weights)
    model.eval()
    return model, cfg, info
