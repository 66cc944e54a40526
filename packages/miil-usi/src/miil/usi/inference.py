"""Validation (top-1 / top-5) and inference for USI-trained or any timm classifiers.

Paper: USI (arXiv 2204.03475), the authors' ``validate.py``: models are evaluated at 224 px with a 0.95 center
crop, with batch norm fused for deployment. A model comes from a ``miil usi train`` run directory (its
recipe, classes and normalization are read from the run's sidecar) or from a timm name plus a weights file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, Dataset

from miil.core.backbones import create_backbone
from miil.core.data import IMAGE_EXTENSIONS, UnreadablePolicy, skip_unreadable_collate
from miil.core.io import atomic_write_text
from miil.core.metrics import AccuracyMeter
from miil.core.train import load_run_weights

from .convert import load_weights
from .data import usi_eval_transform
from .fuse import fuse_batchnorm
from .renormalize import model_mean_std

__all__ = [
    "LoadedModel",
    "collect_images",
    "load_classifier",
    "predict",
    "prepare_for_inference",
    "validate",
    "write_json",
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
    """

    model: nn.Module
    name: str
    classes: list[str] | None
    img_size: int
    crop_pct: float
    mean: tuple[float, ...]
    std: tuple[float, ...]
    interpolation: str = "bicubic"
    info: dict[str, Any] = field(default_factory=dict)

    def transform(self):
        """The evaluation transform (resize, center crop ``crop_pct``, normalize)."""
        return usi_eval_transform(
            self.img_size, mean=self.mean, std=self.std, crop_pct=self.crop_pct, interpolation=self.interpolation
        )


def load_classifier(
    *,
    run_dir: str | os.PathLike | None = None,
    which: str = "best",
    model: str | None = None,
    checkpoint: str | os.PathLike | None = None,
    num_classes: int | None = None,
    classes: Sequence[str] | None = None,
    img_size: int | None = None,
    crop_pct: float | None = None,
    pretrained: bool = False,
) -> LoadedModel:
    """Load a classifier from a ``miil usi train`` run, or a timm name with a local checkpoint (or timm weights).

    Args:
        run_dir: A run directory written by ``miil usi train``.
        which: "best" or "last" weights of the run.
        model: timm model name (without ``run_dir``).
        checkpoint: Weights file for ``model`` (safe loader; the original InplaceABN TResNet layout is converted).
        num_classes: Outputs of ``model`` (default: inferred from the checkpoint's classifier, else timm's default).
        classes: Class names in output order.
        img_size: Input side (default: the run's, else the model's timm config).
        crop_pct: Center-crop fraction (default: the run's, else 0.95).
        pretrained: Use timm's pretrained weights for ``model`` (downloads).
    """
    if run_dir is not None:
        state, meta = load_run_weights(run_dir, which)
        cfg = meta.get("config", {})
        info = meta.get("run_info", {})
        name = cfg.get("model")
        if not name:
            raise ValueError(f"{run_dir} does not name its model in its {which}.json sidecar")
        kwargs: dict[str, Any] = {"num_classes": int(cfg.get("num_classes", 1000))}
        net = create_backbone(name, **kwargs)
        net.load_state_dict(state, strict=True)
        mean = tuple(info.get("student_mean") or model_mean_std(net)[0])
        std = tuple(info.get("student_std") or model_mean_std(net)[1])
        return LoadedModel(
            model=net.eval(),
            name=name,
            classes=list(classes) if classes is not None else info.get("classes"),
            img_size=int(img_size or cfg.get("img_size", 224)),
            crop_pct=float(crop_pct or cfg.get("crop_pct", 0.95)),
            mean=mean,
            std=std,
            interpolation=cfg.get("interpolation", "bicubic"),
            info={"run_dir": os.fspath(run_dir), "which": which, "epoch": meta.get("epoch")},
        )
    if model is None:
        raise ValueError("give a run directory (--run) or a timm model name (--model) with --checkpoint")
    if checkpoint is None and not pretrained:
        raise ValueError(f"model {model!r} has no weights: pass --checkpoint FILE (or --pretrained to download)")
    kwargs = {}
    if num_classes is not None:
        kwargs["num_classes"] = num_classes
    elif classes is not None:
        kwargs["num_classes"] = len(classes)
    net = create_backbone(model, pretrained=pretrained and checkpoint is None, **kwargs)
    if checkpoint is not None:
        load_weights(net, checkpoint)
    mean, std = model_mean_std(net)
    cfg_size = (getattr(net, "pretrained_cfg", None) or {}).get("input_size", (3, 224, 224))
    return LoadedModel(
        model=net.eval(),
        name=model,
        classes=list(classes) if classes is not None else None,
        img_size=int(img_size or cfg_size[-1]),
        crop_pct=float(crop_pct or 0.95),
        mean=mean,
        std=std,
        info={"checkpoint": os.fspath(checkpoint) if checkpoint is not None else "timm pretrained"},
    )


def prepare_for_inference(
    loaded: LoadedModel, *, device: torch.device, fuse_bn: bool = True, channels_last: bool = False
) -> nn.Module:
    """Move to ``device``, fuse batch norms and switch memory format; returns the model to run."""
    net = loaded.model.to(device).eval()
    if fuse_bn:
        fuse_batchnorm(net, torch.randn(2, 3, loaded.img_size, loaded.img_size, device=device))
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    return net


def _autocast(device: torch.device, amp: bool):
    return torch.autocast(device.type, dtype=torch.float16 if device.type == "cuda" else torch.bfloat16, enabled=amp)


@torch.no_grad()
def validate(
    model: nn.Module,
    dataset: Dataset,
    *,
    batch_size: int = 256,
    device: str | torch.device = "cpu",
    amp: bool = False,
    num_workers: int = 0,
    channels_last: bool = False,
) -> dict[str, float]:
    """Top-1 / top-5 accuracy (percent) of ``model`` on ``(image, label)`` samples; unreadable ones are skipped.

    Args:
        model: The classifier (already on ``device``).
        dataset: Evaluation samples.
        batch_size: Images per forward pass.
        device: Device of the model.
        amp: Run under autocast.
        num_workers: Data-loader workers.
        channels_last: Feed channels-last batches.
    """
    device = torch.device(device)
    loader = DataLoader(
        dataset, batch_size=batch_size, num_workers=num_workers, collate_fn=skip_unreadable_collate, shuffle=False
    )
    meter = AccuracyMeter(topk=(1, 5))
    n = 0
    for batch in loader:
        if batch is None:
            continue
        x = batch[0].to(device, non_blocking=True)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with _autocast(device, amp):
            logits = model(x)
        meter.update(logits.float(), batch[1])
        n += len(x)
    if n == 0:
        raise ValueError("no readable image to validate on")
    result = meter.compute()
    result["images"] = float(n)
    result["skipped_unreadable"] = float(len(dataset) - n)
    return result


def collect_images(paths: Sequence[str | os.PathLike]) -> list[Path]:
    """Image files among ``paths`` (folders are searched recursively), in sorted order per folder.

    Args:
        paths: Files and folders.
    """
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS)
            if not found:
                raise FileNotFoundError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) under {p}")
            out += found
        elif p.is_file():
            out.append(p)
        else:
            raise FileNotFoundError(f"image path {p} does not exist")
    return out


@torch.no_grad()
def predict(
    model: nn.Module,
    images: Sequence[str | os.PathLike],
    *,
    transform,
    classes: Sequence[str] | None = None,
    topk: int = 5,
    batch_size: int = 64,
    device: str | torch.device = "cpu",
    strict: bool = False,
) -> list[dict[str, Any]]:
    """Top-k classes with softmax probabilities for each image file.

    Args:
        model: The classifier (on ``device``, eval mode).
        images: Image files.
        transform: Evaluation transform (PIL in, tensor out).
        classes: Class names (indices are reported when ``None``).
        topk: Classes to report per image.
        batch_size: Images per forward pass.
        device: Device of the model.
        strict: Raise on unreadable files instead of reporting them as errors.
    """
    device = torch.device(device)
    policy = UnreadablePolicy(strict=strict)
    results: list[dict[str, Any]] = []
    paths = [Path(p) for p in images]
    for start in range(0, len(paths), batch_size):
        chunk = paths[start : start + batch_size]
        rows: list[dict[str, Any]] = [{"image": str(p)} for p in chunk]
        tensors, slots = [], []
        for slot, p in enumerate(chunk):
            img = policy.load_image(p)
            if img is None:
                rows[slot]["error"] = "unreadable image"
                continue
            tensors.append(transform(img))
            slots.append(slot)
        if tensors:
            probs = model(torch.stack(tensors).to(device)).float().softmax(-1).cpu()
            top = probs.topk(min(topk, probs.shape[1]), dim=1)
            for slot, values, indices in zip(slots, top.values, top.indices):
                names = [classes[i] if classes is not None else str(i) for i in indices.tolist()]
                rows[slot]["top"] = [{"class": c, "prob": round(float(v), 6)} for c, v in zip(names, values)]
        results += rows
    return results


def write_json(path: str | os.PathLike, payload: Any) -> None:
    """Write JSON (pretty) to ``path`` atomically, creating parent folders."""
    atomic_write_text(path, json.dumps(payload, indent=2))
