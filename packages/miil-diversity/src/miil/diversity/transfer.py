"""Transfer harness: linear probe and fine-tuning with fixed hyperparameters on single- and multi-label datasets.

Paper: "Diverse ImageNet Models Transfer Better" (arXiv 2204.09134 / WACV 2024) compares pretrained models by their
transfer results on downstream single-label (top-1) and multi-label (mAP) datasets, with the same training recipe for
every model so that differences come from the pretraining. Linear probing trains a linear classifier on frozen
penultimate features (extracted once, with the evaluation transform); fine-tuning trains the whole model with a new
classifier. Multi-label tasks use MIIL's asymmetric loss (ASL, arXiv 2009.14119) and report mAP. Both run on the core
engine, and the reported number is the *last* epoch's (no selection on the evaluation split).
"""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, Dataset, TensorDataset
from torchvision import transforms as T

from miil.core import distributed as du
from miil.core.data import ImageFolderDataset, MultiLabelCSVDataset, skip_unreadable_collate
from miil.core.losses import AsymmetricLoss
from miil.core.metrics import AccuracyMeter, MeanAPMeter
from miil.core.train import Trainer

from .penultimate import penultimate_features, replace_classifier
from .recipes import TransferRecipe

__all__ = [
    "TransferResult",
    "extract_features",
    "fine_tune",
    "linear_probe",
    "load_transfer_dataset",
    "transfer",
    "transfer_datasets",
    "transfer_transforms",
]


@dataclass
class TransferResult:
    """One transfer run.

    Args:
        mode: "linear" or "finetune".
        task: "single" or "multi".
        metric: "top1" (percent) or "mAP" (percent).
        value: The metric after the last epoch on the evaluation split.
        history: The engine's per-epoch rows.
        out_dir: The run folder.
    """

    mode: str
    task: str
    metric: str
    value: float
    history: list[dict[str, Any]] = field(default_factory=list)
    out_dir: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "task": self.task,
            "metric": self.metric,
            "value": self.value,
            "out_dir": self.out_dir,
        }


def transfer_transforms(cfg: TransferRecipe, *, mean: Sequence[float], std: Sequence[float]) -> tuple[Any, Any]:
    """``(train, eval)`` transforms of the harness: random crop + flip for fine-tuning, resize + center crop to eval.

    Args:
        cfg: The transfer recipe.
        mean: Model input mean.
        std: Model input std.
    """
    resize = max(cfg.img_size, round(cfg.img_size / cfg.crop_pct))
    norm = [T.ToTensor(), T.Normalize(tuple(mean), tuple(std))]
    train = T.Compose(
        [T.RandomResizedCrop(cfg.img_size, scale=cfg.scale, antialias=True), T.RandomHorizontalFlip(cfg.hflip), *norm]
    )
    evaluate = T.Compose([T.Resize(resize, antialias=True), T.CenterCrop(cfg.img_size), *norm])
    return train, evaluate


def load_transfer_dataset(
    path: str | os.PathLike,
    *,
    transform: Any = None,
    root: str | os.PathLike | None = None,
    classes: Sequence[str] | None = None,
    strict: bool = False,
) -> Dataset:
    """A downstream split: a folder ``path/<class>/<image>`` (single-label) or a multi-label CSV (core format).

    Args:
        path: The folder or ``.csv`` file.
        transform: Image transform.
        root: Image root of a CSV (default: the CSV's folder).
        classes: Class order to enforce (the training split's, when loading the evaluation split).
        strict: Raise on unreadable images instead of skipping them.
    """
    p = Path(path)
    if p.is_dir():
        return ImageFolderDataset(p, transform=transform, classes=classes, strict=strict)
    if p.suffix.lower() == ".csv":
        return MultiLabelCSVDataset(p, root, transform=transform, classes=classes, strict=strict)
    raise FileNotFoundError(f"transfer data {p} is neither a folder (<class>/<image>) nor a .csv file")


def transfer_datasets(
    cfg: TransferRecipe,
    train: str | os.PathLike,
    val: str | os.PathLike,
    *,
    mean: Sequence[float],
    std: Sequence[float],
    root: str | os.PathLike | None = None,
    val_root: str | os.PathLike | None = None,
    strict: bool = False,
) -> tuple[Dataset, Dataset]:
    """``(train, val)`` splits with the harness's transforms: a linear probe trains on evaluation-transformed images
    (its features are extracted once), fine-tuning on :func:`transfer_transforms`' training transform.

    Args:
        cfg: The transfer recipe.
        train: Training folder or CSV (see :func:`load_transfer_dataset`).
        val: Evaluation folder or CSV, with the training split's classes.
        mean: Model input mean.
        std: Model input std.
        root: Image root of a training CSV.
        val_root: Image root of an evaluation CSV (default: ``root``).
        strict: Raise on unreadable images instead of skipping them.
    """
    train_tf, eval_tf = transfer_transforms(cfg, mean=mean, std=std)
    train_ds = load_transfer_dataset(
        train, transform=eval_tf if cfg.mode == "linear" else train_tf, root=root, strict=strict
    )
    classes = getattr(train_ds, "classes", None)
    val_ds = load_transfer_dataset(val, transform=eval_tf, root=val_root or root, classes=classes, strict=strict)
    return train_ds, val_ds


def _loss_and_meter(cfg: TransferRecipe) -> tuple[nn.Module, Any, str]:
    if cfg.task == "multi":
        loss = AsymmetricLoss(gamma_neg=cfg.gamma_neg, gamma_pos=cfg.gamma_pos, clip=cfg.clip, reduction="mean")
        return loss, MeanAPMeter(), "mAP"
    return nn.CrossEntropyLoss(), AccuracyMeter(topk=(1,)), "top1"


@torch.no_grad()
def extract_features(
    model: nn.Module, dataset: Dataset, *, batch_size: int = 128, device: str | torch.device = "cpu"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Penultimate features and targets of every readable sample (eval mode, float32, on CPU).

    Args:
        model: The frozen model.
        dataset: ``(image, target)`` samples.
        batch_size: Batch size.
        device: Where the model runs.
    """
    was_training = model.training
    model.eval()
    feats, targets = [], []
    for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=skip_unreadable_collate):
        if batch is None:
            continue
        feats.append(penultimate_features(model, batch[0].to(device)).float().cpu())
        targets.append(torch.as_tensor(batch[1]))
    model.train(was_training)
    if not feats:
        raise ValueError(f"no readable samples in {dataset!r}")
    return torch.cat(feats), torch.cat(targets)


def _final(history: list[dict[str, Any]], metric: str) -> float:
    return float(history[-1]["val"][metric])


def linear_probe(
    model: nn.Module, train: Dataset, val: Dataset, cfg: TransferRecipe, *, num_classes: int
) -> TransferResult:
    """Train a linear classifier on the frozen model's penultimate features; evaluate on ``val``.

    Args:
        model: The pretrained model (not modified).
        train: Training samples with the evaluation transform.
        val: Evaluation samples with the evaluation transform.
        cfg: The transfer recipe.
        num_classes: Classes of the downstream task.
    """
    device = du.init_distributed(cfg.device)
    model = model.to(device)
    xtr, ytr = extract_features(model, train, batch_size=cfg.batch_size, device=device)
    xva, yva = extract_features(model, val, batch_size=cfg.batch_size, device=device)
    loss, meter, metric = _loss_and_meter(cfg)
    head = nn.Linear(xtr.shape[1], num_classes)
    trainer = Trainer(
        head,
        loss,
        TensorDataset(xtr, ytr),
        cfg,
        val_dataset=TensorDataset(xva, yva),
        meter=meter,
        run_info={"transfer": "linear probe", "feature_dim": xtr.shape[1], "num_classes": num_classes},
    )
    result = trainer.fit()
    return TransferResult("linear", cfg.task, metric, _final(result.history, metric), result.history, cfg.out_dir)


def fine_tune(
    model: nn.Module, train: Dataset, val: Dataset, cfg: TransferRecipe, *, num_classes: int
) -> TransferResult:
    """Fine-tune a copy of the whole model with a fresh classifier; evaluate on ``val``.

    Args:
        model: The pretrained model (copied, not modified).
        train: Training samples with the training transform.
        val: Evaluation samples with the evaluation transform.
        cfg: The transfer recipe.
        num_classes: Classes of the downstream task.
    """
    net = replace_classifier(copy.deepcopy(model), num_classes)
    loss, meter, metric = _loss_and_meter(cfg)
    trainer = Trainer(
        net,
        loss,
        train,
        cfg,
        val_dataset=val,
        meter=meter,
        run_info={"transfer": "fine-tune", "num_classes": num_classes},
    )
    result = trainer.fit()
    return TransferResult("finetune", cfg.task, metric, _final(result.history, metric), result.history, cfg.out_dir)


def transfer(
    model: nn.Module, train: Dataset, val: Dataset, cfg: TransferRecipe, *, num_classes: int
) -> TransferResult:
    """Linear probe or fine-tune, as ``cfg.mode`` says.

    Args:
        model: The pretrained model.
        train: Training samples (evaluation transform for a linear probe, training transform to fine-tune).
        val: Evaluation samples.
        cfg: The transfer recipe.
        num_classes: Classes of the downstream task.
    """
    run = linear_probe if cfg.mode == "linear" else fine_tune
    return run(model, train, val, cfg, num_classes=num_classes)
