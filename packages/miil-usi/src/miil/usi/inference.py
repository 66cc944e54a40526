"""Validation (top-1 / top-5) and inference for USI-trained or any timm classifiers, through miil-core's one loop.

Paper: USI (arXiv 2204.03475), the authors' ``validate.py``: models are evaluated at 224 px with a 0.95 center
crop. A model comes from ``--weights`` (a ``miil usi train`` run folder, whose sidecar gives the recipe, classes,
normalisation and the precision its validation ran in, or a weights file) or from a timm name with its pretrained
weights. Validation and inference run :func:`miil.core.evaluate.evaluate`: progress on rank 0, every sample once over
the ranks, unreadable inputs skipped with their reason, in the run's precision unless asked otherwise, so the top-1
reported for ``best.safetensors`` is the one that selected it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from torch.utils.data import Dataset

from miil.core.backbones import create_backbone
from miil.core.cli_args import parse_model_kwargs
from miil.core.data import IMAGE_EXTENSIONS, Skipped, UnreadablePolicy
from miil.core.errors import UserError
from miil.core.evaluate import EvalReport, PredictionMeter, evaluate
from miil.core.metrics import AccuracyMeter

from .convert import load_weights
from .data import usi_eval_transform
from .fuse import fuse_batchnorm
from .renormalize import model_mean_std
from .weights import classifier_outputs, read_weights

__all__ = [
    "ImageFiles",
    "LoadedModel",
    "collect_images",
    "evaluate_classifier",
    "load_classifier",
    "predict",
    "prepare_for_inference",
    "validate",
]


@dataclass
class LoadedModel:
    """A classifier ready for evaluation, with what is needed to feed it.

    Args:
        model: The network (eval mode).
        name: timm model name.
        classes: Class names in output order (``None`` when unknown).
        img_size: Input side.
        crop_pct: Evaluation center-crop fraction.
        mean: Normalization mean.
        std: Normalization std.
        interpolation: Resize interpolation.
        precision: The precision the run validated in ("fp32" when unknown).
        eval_batch_size: The batch size of the run's validation, when known.
        info: Where the weights came from (for reports).
    """

    model: nn.Module
    name: str
    classes: list[str] | None
    img_size: int
    crop_pct: float
    mean: tuple[float, ...]
    std: tuple[float, ...]
    interpolation: str = "bicubic"
    precision: str = "fp32"
    eval_batch_size: int | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def transform(self):
        """The evaluation transform (resize, center crop ``crop_pct``, normalize)."""
        return usi_eval_transform(
            self.img_size, mean=self.mean, std=self.std, crop_pct=self.crop_pct, interpolation=self.interpolation
        )


def _eval_batch_size(cfg: dict[str, Any]) -> int | None:
    if cfg.get("eval_batch_size"):
        return int(cfg["eval_batch_size"])
    return 2 * int(cfg["batch_size"]) if cfg.get("batch_size") else None  # the engine's default


def load_classifier(
    *,
    weights: str | os.PathLike | None = None,
    model: str | None = None,
    pretrained: bool = False,
    num_classes: int | None = None,
    classes: Sequence[str] | None = None,
    img_size: int | None = None,
    crop_pct: float | None = None,
    model_kwargs: str | dict[str, Any] | None = None,
) -> LoadedModel:
    """Load a classifier from ``--weights`` (a run folder or a weights file), or a timm name with timm's weights.

    Args:
        weights: A ``miil usi train`` run folder (its best weights) or a weights file (safe loader; the original
            InplaceABN TResNet layout is converted). Its sidecar, when there is one, gives model, classes and
            normalisation.
        model: timm model name (default: the sidecar's).
        pretrained: Without ``weights``: timm's pretrained weights for ``model`` (downloads).
        num_classes: Outputs of the model (default: the sidecar's, else ``len(classes)``, else the weights').
        classes: Class names in output order (default: the sidecar's).
        img_size: Input side (default: the sidecar's, else the model's timm config).
        crop_pct: Center-crop fraction (default: the sidecar's, else 0.95).
        model_kwargs: Extra ``timm.create_model`` arguments (JSON text or dict), over the sidecar's.

    Raises:
        UserError: Neither weights nor ``pretrained`` were given, or the weights name no model and none was given.
    """
    extra = parse_model_kwargs(model_kwargs)
    if weights is not None:
        found = read_weights(weights)
        cfg, info = found.config, found.run_info
        name = model or cfg.get("model")
        if not name:
            raise UserError(f"the weights {found.file} do not say which model they are for; pass --model NAME")
        kwargs = {**parse_model_kwargs(cfg.get("model_kwargs")), **extra}
        names = list(classes) if classes is not None else info.get("classes")
        outputs = num_classes or cfg.get("num_classes") or (len(names) if names else None)
        outputs = outputs or classifier_outputs(found.state, name)
        if outputs is not None:
            kwargs["num_classes"] = int(outputs)
        net = create_backbone(name, **kwargs)
        load_weights(net, found.state)
        own_mean, own_std = model_mean_std(net)
        return LoadedModel(
            model=net.eval(),
            name=name,
            classes=names,
            img_size=int(img_size or cfg.get("img_size") or own_size(net)),
            crop_pct=float(crop_pct or cfg.get("crop_pct") or 0.95),
            mean=tuple(info.get("student_mean") or own_mean),
            std=tuple(info.get("student_std") or own_std),
            interpolation=cfg.get("interpolation", "bicubic"),
            precision=found.precision or "fp32",
            eval_batch_size=_eval_batch_size(cfg),
            info={"weights": os.fspath(found.file), "epoch": found.meta.get("epoch")},
        )
    if model is None or not pretrained:
        raise UserError(
            "no weights to evaluate: pass --weights PATH (a run folder or a weights file), or --model NAME with "
            "--pretrained for timm's weights"
        )
    kwargs = dict(extra)
    if num_classes is not None or classes is not None:
        kwargs["num_classes"] = int(num_classes or len(classes))
    net = create_backbone(model, pretrained=True, **kwargs)
    mean, std = model_mean_std(net)
    return LoadedModel(
        model=net.eval(),
        name=model,
        classes=list(classes) if classes is not None else None,
        img_size=int(img_size or own_size(net)),
        crop_pct=float(crop_pct or 0.95),
        mean=mean,
        std=std,
        info={"weights": "timm pretrained"},
    )


def own_size(net: nn.Module) -> int:
    """The input side of a timm model's configuration (224 when it has none)."""
    return int((getattr(net, "pretrained_cfg", None) or {}).get("input_size", (3, 224, 224))[-1])


def prepare_for_inference(
    loaded: LoadedModel, *, device: torch.device, fuse_bn: bool = False, channels_last: bool = False
) -> nn.Module:
    """Move to ``device``, optionally fuse batch norms (the paper's deployment) and switch memory format.

    Fusing changes the outputs by rounding only, but that can move a top-1 tie: the default leaves the model as the
    run validated it.
    """
    net = loaded.model.to(device).eval()
    if fuse_bn:
        fuse_batchnorm(net, torch.randn(2, 3, loaded.img_size, loaded.img_size, device=device))
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    return net


def _eval_fn(channels_last: bool):
    def run(model: nn.Module, batch: Any) -> tuple[torch.Tensor, Any]:
        x = batch[0].contiguous(memory_format=torch.channels_last) if channels_last else batch[0]
        return model(x), batch[1]

    return run


def evaluate_classifier(
    model: nn.Module,
    dataset: Dataset,
    *,
    batch_size: int = 64,
    device: str | torch.device | None = None,
    precision: str = "fp32",
    num_workers: int = 0,
    channels_last: bool = False,
    progress: bool = False,
) -> EvalReport:
    """Top-1 / top-5 (percent) and the cross-entropy loss of ``model`` on ``(image, label)`` samples, over all ranks.

    The same meter and loss as the validation inside ``miil usi train``; unreadable samples are skipped and listed.

    Args:
        model: The classifier.
        dataset: Evaluation samples (``Skipped`` records for unreadable files).
        batch_size: Images per forward pass.
        device: Where the model runs (default: its own device).
        precision: "fp32", "bf16" or "fp16" (autocast).
        num_workers: Data-loader workers.
        channels_last: Feed channels-last batches.
        progress: Progress bar on rank 0.
    """
    return evaluate(
        model,
        dataset,
        meter=AccuracyMeter(topk=(1, 5)),
        eval_fn=_eval_fn(channels_last),
        loss_fn=nn.CrossEntropyLoss(),
        device=device,
        precision=precision,
        batch_size=batch_size,
        num_workers=num_workers,
        progress=progress,
    )


def validate(
    model: nn.Module,
    dataset: Dataset,
    *,
    batch_size: int = 256,
    device: str | torch.device | None = None,
    precision: str = "fp32",
    num_workers: int = 0,
    channels_last: bool = False,
    progress: bool = False,
) -> dict[str, float]:
    """Top-1 / top-5 accuracy (percent) and loss of ``model`` on ``(image, label)`` samples; unreadable ones skipped.

    Args:
        model: The classifier.
        dataset: Evaluation samples.
        batch_size: Images per forward pass.
        device: Device of the model (default: its own).
        precision: "fp32", "bf16" or "fp16".
        num_workers: Data-loader workers.
        channels_last: Feed channels-last batches.
        progress: Progress bar on rank 0.

    Returns:
        The metrics, plus ``images`` (samples scored) and ``skipped_unreadable``.

    Raises:
        UserError: No sample could be read.
    """
    report = evaluate_classifier(
        model,
        dataset,
        batch_size=batch_size,
        device=device,
        precision=precision,
        num_workers=num_workers,
        channels_last=channels_last,
        progress=progress,
    )
    if report.samples == 0:
        raise UserError(f"no readable image to validate on ({report.skipped_count} unreadable)")
    return {**report.metrics, "images": float(report.samples), "skipped_unreadable": float(report.skipped_count)}


def _is_image_name(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS


def collect_images(paths: Sequence[str | os.PathLike]) -> list[Path]:
    """The inputs among ``paths``: files as given, folders searched recursively for image files (sorted).

    A path given explicitly is kept even when it is missing or a folder named like an image (``x.jpg/``), and so is a
    folder entry named like an image that is not a regular file: the loop then skips each with its reason.

    Args:
        paths: Files and folders.

    Raises:
        UserError: A folder (not named like an image) holds no image.
    """
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir() and not _is_image_name(p):
            found = sorted(
                f
                for f in p.rglob("*")
                if _is_image_name(f) and not any(part.startswith(".") for part in f.relative_to(p).parts)
            )
            if not found:
                raise UserError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) under the folder {p}")
            out += found
        else:
            out.append(p)
    return out


class ImageFiles(Dataset):
    """Image files as ``(image tensor, index)``; an unreadable file gives a :class:`Skipped` record with its reason.

    Args:
        paths: The files.
        transform: Evaluation transform (PIL in, tensor out).
        strict: Raise on the first unreadable file instead.
    """

    def __init__(self, paths: Sequence[str | os.PathLike], transform, *, strict: bool = False):
        self.paths = [Path(p) for p in paths]
        self.transform = transform
        self.policy = UnreadablePolicy(strict=strict)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int] | Skipped:
        path = self.paths[index]
        img = self.policy.load_image(path)
        if img is None:
            return self.policy.skipped_sample(path)
        return self.transform(img), index


def predict(
    model: nn.Module,
    images: Sequence[str | os.PathLike],
    *,
    transform,
    classes: Sequence[str] | None = None,
    top_k: int = 5,
    batch_size: int = 64,
    device: str | torch.device | None = None,
    precision: str = "fp32",
    num_workers: int = 0,
    strict: bool = False,
    progress: bool = False,
) -> tuple[list[dict[str, Any]], EvalReport]:
    """Top-k classes with softmax probabilities for each readable image file, in the order given.

    Args:
        model: The classifier (eval mode).
        images: Image files.
        transform: Evaluation transform (PIL in, tensor out).
        classes: Class names (indices are reported when ``None``).
        top_k: Classes to report per image.
        batch_size: Images per forward pass.
        device: Device of the model (default: its own).
        precision: "fp32", "bf16" or "fp16".
        num_workers: Data-loader workers.
        strict: Raise on the first unreadable file instead of skipping it.
        progress: Progress bar on rank 0.

    Returns:
        ``(rows, report)``: one ``{"file", "top": [{"class", "prob"}]}`` row per readable image, and the loop's
        report (samples, skipped inputs with reasons, precision).
    """
    if top_k < 1:
        raise UserError(f"--top-k must be at least 1, got {top_k}")
    files = ImageFiles(images, transform, strict=strict)
    meter = PredictionMeter()
    report = evaluate(
        model,
        files,
        meter=meter,
        device=device,
        precision=precision,
        batch_size=batch_size,
        num_workers=num_workers,
        progress=progress,
        desc="infer",
    )
    outputs, index = meter.predictions()
    rows: list[dict[str, Any]] = []
    if len(index):
        probs = outputs.float().softmax(-1)
        top = probs.topk(min(top_k, probs.shape[1]), dim=1)
        for i, values, indices in zip(index.tolist(), top.values, top.indices, strict=True):
            names = [classes[j] if classes is not None else str(j) for j in indices.tolist()]
            rows.append(
                {
                    "file": str(files.paths[i]),
                    "top": [{"class": c, "prob": round(float(v), 6)} for c, v in zip(names, values)],
                }
            )
    return rows, report
