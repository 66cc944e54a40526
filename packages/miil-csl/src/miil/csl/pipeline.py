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
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from torch.utils.data import Dataset
from torchvision import transforms as T

from miil.core import distributed as du
from miil.core.cli_args import parse_model_kwargs
from miil.core.data import (
    CocoMultiLabelDataset,
    DigitMosaicDataset,
    MultiLabelCSVDataset,
    Skipped,
    SquishResize,
    multilabel_eval_transform,
    multilabel_train_transform,
)
from miil.core.errors import UserError
from miil.core.io import extract_state_dict, load_file, load_into, resolve_weights
from miil.core.metrics import MeanAPMeter
from miil.core.train import Trainer

from .data import LVISFederatedDataset, OpenImagesDataset, SparseLabels
from .loss import PartialSelectiveLoss
from .metrics import PartialMAPMeter
from .model import MultiLabelClassifier, create_csl_model
from .prior import ClassPrior, estimate_prior
from .recipes import RECIPES, CSLConfig
from .simulation import apply_partial_simulation
from .sources import DataSpec, SplitSource, describe, resolve_split

__all__ = [
    "CSLRunResult",
    "DataSpec",
    "build_datasets",
    "build_loss",
    "build_meter",
    "build_model",
    "check_recipe_data",
    "config_from_dict",
    "eval_transform",
    "load_run",
    "load_run_model",
    "load_split",
    "mosaic_dataset",
    "model_kwargs",
    "resolve_sources",
    "train_csl",
    "train_transform",
]

PRIOR_FILE = "prior.csv"
STAGE1_DIR = "stage1_ignore"


@dataclass
class CSLRunResult:
    """What :func:`train_csl` returns: the target model's run, the prior and the inputs skipped in either stage."""

    out_dir: Path
    best_metric: float
    best_epoch: int
    prior_path: Path | None
    stage1_metric: float | None
    history: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


# Fields renamed to the miil dialect's spelling; runs written before keep loading.
_RENAMED = {"model_args": "model_kwargs", "checkpoint": "init_checkpoint"}


def config_from_dict(values: dict[str, Any]) -> CSLConfig:
    """Rebuild a :class:`CSLConfig` from its JSON form (as stored in ``config.json`` / ``best.json``)."""
    names = {f.name for f in dataclasses.fields(CSLConfig)}
    values = {_RENAMED.get(k, k): v for k, v in values.items()}
    if not values.get("model_kwargs"):
        values["model_kwargs"] = "{}"
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items() if k in names}
    return CSLConfig(**kwargs)


def model_kwargs(cfg: CSLConfig) -> dict[str, Any]:
    """The recipe's ``model_kwargs`` JSON as keyword arguments of the backbone (a bad value is a user error)."""
    return parse_model_kwargs(cfg.model_kwargs.strip() or "{}")


def build_model(cfg: CSLConfig, num_classes: int, *, pretrained: bool | None = None) -> MultiLabelClassifier:
    """The recipe's classifier; ``pretrained`` overrides the recipe (False when weights are loaded afterwards)."""
    return create_csl_model(
        cfg.model,
        num_classes=num_classes,
        bottleneck_features=cfg.bottleneck_features,
        pretrained=cfg.pretrained if pretrained is None else pretrained,
        checkpoint=cfg.init_checkpoint if pretrained is None else None,
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


def mosaic_dataset(split: str) -> DigitMosaicDataset:
    """The CSL demo's digit mosaics: up to four digits each, long-tailed classes (weight ``0.7**c`` for digit ``c``)."""
    return DigitMosaicDataset(split, max_digits=4, decay=0.7)


def _recipes_for(fmt: str) -> str:
    return " / ".join(sorted(n for n, r in RECIPES.items() if r.data_format == fmt)[:4])


def check_recipe_data(cfg: CSLConfig, *, recipe: str | None = None) -> None:
    """Refuse, before anything is read or built, a recipe that does not fit its data format (``cfg.data_format``).

    Raises:
        UserError: Naming the recipes (``--recipe``) or the fields that fit the data.
    """
    name = repr(recipe) if recipe else "the recipe"
    fmt = cfg.data_format
    if fmt == "mosaic" and cfg.in_chans != 1:
        raise UserError(
            f"the mosaic data are 1-channel digit mosaics, but {name} builds a {cfg.in_chans}-channel model; use "
            f"--recipe {_recipes_for('mosaic')} (or --in-chans 1)"
        )
    if fmt in ("openimages", "lvis") and cfg.simulate != "none":
        raise UserError(
            f"{name} simulates partial labels ({cfg.simulate.upper()}) on fully labelled data, but {fmt} data are "
            f"partially labelled already; use --recipe {_recipes_for(fmt)} or --simulate none"
        )


def resolve_sources(cfg: CSLConfig, spec: DataSpec) -> tuple[SplitSource, SplitSource | None]:
    """The training split and the (optional) validation split of ``cfg.data_format`` from the data flags."""
    train = resolve_split(cfg.data_format, spec, "train")
    val = resolve_split(cfg.data_format, spec, "val", optional=True)
    return train, val


def load_split(cfg: CSLConfig, source: SplitSource, transform, *, strict: bool = False) -> Dataset:
    """One resolved split of the recipe's data format, without simulation."""
    if source.format == "mosaic":
        return mosaic_dataset(source.split)
    if source.format == "coco":
        return CocoMultiLabelDataset(source.images, source.labels, transform=transform, strict=strict)
    if source.format == "lvis":
        return LVISFederatedDataset(source.labels, source.images, transform=transform, strict=strict)
    if source.format == "openimages":
        return OpenImagesDataset(
            source.labels,
            source.images,
            classes=source.classes,
            split=source.row_split,
            transform=transform,
            strict=strict,
        )
    return MultiLabelCSVDataset(source.labels, source.images, transform=transform, strict=strict)


def build_datasets(
    cfg: CSLConfig, spec: DataSpec, *, verbose: bool = True
) -> tuple[Dataset, Dataset | None, list[str], Any]:
    """Training set (with the recipe's partial-label simulation applied) and validation set.

    Returns:
        ``(train, val or None, classes, simulation summary or None)``.
    """
    return _build(cfg, spec, *resolve_sources(cfg, spec), verbose=verbose)


def _build(
    cfg: CSLConfig, spec: DataSpec, train_src: SplitSource, val_src: SplitSource | None, *, verbose: bool
) -> tuple[Dataset, Dataset | None, list[str], Any]:
    train = load_split(cfg, train_src, train_transform(cfg), strict=spec.strict)
    summary = apply_partial_simulation(
        train, cfg.simulate, cfg.simulate_param, seed=cfg.simulate_seed, verbose=verbose and du.is_main_process()
    )
    val = None
    if val_src is not None:
        val = load_split(cfg, val_src, eval_transform(cfg), strict=spec.strict)
        if list(val.classes) != list(train.classes):
            raise UserError(
                f"the validation classes ({len(val.classes)}, {describe(val_src)}) differ from the training classes "
                f"({len(train.classes)}, {describe(train_src)}) or are in another order; use label files with the "
                "same class list"
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
        return ClassPrior.load(prior_file), None, []
    if du.is_main_process():
        print(f"[miil-csl] stage 1: temporary model in 'ignore' mode ({stage_cfg.epochs} epochs) -> class prior")
    torch.manual_seed(cfg.seed)
    model = build_model(stage_cfg, len(classes))
    trainer, result = _fit(stage_cfg, model, build_loss(stage_cfg, classes), train, val, {**run_info, "stage": 1})
    best, _ = resolve_weights(stage_cfg.out_dir)
    trainer.model.load_state_dict(load_file(best, what="weights"))
    prior = estimate_prior(
        trainer.model,
        _without_augmentation(cfg, train),
        classes,
        batch_size=cfg.eval_batch_size or 2 * cfg.batch_size,
        num_workers=cfg.num_workers,
        amp_dtype=trainer.amp_dtype,
        progress=cfg.progress,
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
    return prior, result.best_metric, result.skipped


def train_csl(
    cfg: CSLConfig, data: DataSpec | None = None, *, recipe: str | None = None, verbose: bool = True
) -> CSLRunResult:
    """Train with a CSL recipe; with ``mode="selective"``, a threshold and no ``prior_path``, estimate the prior first.

    The two stages of the paper (Section 3.3) are one call: a temporary ``ignore`` model in ``out_dir/stage1_ignore``,
    its class prior in ``out_dir/prior.csv``, then the target model in ``out_dir``. The recipe is checked against the
    data before anything is read (:func:`check_recipe_data`).

    Args:
        cfg: The recipe (with overrides); ``cfg.data_format`` is the data's format.
        data: The data flags (not needed for ``data_format="mosaic"``).
        recipe: Recipe name, stored in the run's config.
        verbose: Print the simulation summary and stage messages.
    """
    data = data or DataSpec()
    check_recipe_data(cfg, recipe=recipe)
    train_src, val_src = resolve_sources(cfg, data)
    du.init_distributed(cfg.device)  # under torchrun: ranks are known before anything is printed
    if val_src is None and verbose and du.is_main_process():
        print(
            f"[miil-csl] no validation data in the {cfg.data_format} layout of {data.data_root} "
            "(--val-split / --val-labels): training without validation; the last epoch's weights are kept",
            flush=True,
        )
    train, val, classes, summary = _build(cfg, data, train_src, val_src, verbose=verbose)
    run_info: dict[str, Any] = {
        "recipe": recipe,
        "classes": classes,
        "data": {
            "format": cfg.data_format,
            "flags": dataclasses.asdict(data),
            "train": train_src.as_dict(),
            "val": val_src.as_dict() if val_src is not None else None,
        },
        "simulation": str(summary) if summary is not None else None,
    }
    class_names = getattr(train, "class_names", None)
    if class_names:
        run_info["class_names"] = dict(class_names)
    prior = None
    prior_path: Path | None = None
    stage1 = None
    skipped: list[Skipped] = []
    if cfg.mode == "selective" and cfg.prior_threshold:
        if cfg.prior_path:
            prior_path = Path(cfg.prior_path)
            prior = ClassPrior.load(prior_path)
        else:
            prior, stage1, skipped = _stage1_prior(cfg, train, val, classes, run_info)
            prior_path = Path(cfg.out_dir) / PRIOR_FILE
        run_info["prior"] = str(prior_path)
    torch.manual_seed(cfg.seed)
    model = build_model(cfg, len(classes))
    _, result = _fit(cfg, model, build_loss(cfg, classes, prior), train, val, run_info)
    unique = {s.file: s for s in [*skipped, *result.skipped]}
    return CSLRunResult(
        out_dir=Path(cfg.out_dir),
        best_metric=result.best_metric,
        best_epoch=result.best_epoch,
        prior_path=prior_path,
        stage1_metric=stage1,
        history=result.history,
        skipped=[unique[f] for f in sorted(unique)],
    )


def load_run(
    weights: str | os.PathLike, which: str = "best"
) -> tuple[MultiLabelClassifier, CSLConfig, dict[str, Any], dict[str, Any]]:
    """Rebuild a trained model from ``--weights``: a run folder (its best, or ``which="last"``) or a weights file.

    The weights are opened first through :func:`miil.core.io.load_file` (no pickled code runs); the sidecar (the run's
    ``best.json`` / ``last.json``, or the ``.json`` that ``convert`` writes beside its output) says how to build it.

    Returns:
        ``(model in eval mode, config, run_info, sidecar)``; ``run_info["classes"]`` lists the class names and the
        sidecar's ``eval_precision`` is the precision the run was validated in.
    """
    path = Path(weights)
    if which == "last" and path.is_dir():
        last = path / "last.json"
        if not last.is_file():
            raise UserError(f"{path} holds no last.json; is it a `miil csl train` run folder?")
        path = path / str(load_file(last, what="run sidecar").get("weights", ""))
    elif which != "best":
        raise ValueError(f"which must be 'best' or 'last', got {which!r}")
    file, meta = resolve_weights(path)
    state = extract_state_dict(load_file(file, what="weights"))
    if not meta or "config" not in meta:
        raise UserError(
            f"no run description beside {file} (expected {file.with_suffix('.json')} or the run's best.json, written "
            "by 'miil csl train' or 'miil csl convert')"
        )
    cfg = config_from_dict(meta["config"])
    info = meta.get("run_info") or {}
    classes = info.get("classes")
    if not classes:
        raise UserError(f"the sidecar of {file} has no class list in run_info")
    model = build_model(cfg, len(classes), pretrained=False)
    load_into(model, state)
    return model.eval(), cfg, info, meta


def load_run_model(run_dir: str | os.PathLike, which: str = "best") -> tuple[MultiLabelClassifier, CSLConfig, dict]:
    """:func:`load_run` without the sidecar: ``(model in eval mode, config, run_info)``."""
    model, cfg, info, _ = load_run(run_dir, which)
    return model, cfg, info
