"""What the ``miil stam`` verbs do (the parsers are in :mod:`miil.stam.cli`, which imports none of this).

Paper: STAM (arXiv 2103.13915). Every verb follows the ``miil`` dialect: user errors are one line (exit 2),
validation and inference run miil-core's evaluation loop (progress bar, sharded over torchrun ranks), the precision
is the run's own unless ``--amp`` overrides it, ``--json FILE`` writes strict JSON (``null``, never NaN; top-5 is left
out below 5 classes) with the skipped videos and their reasons, and a command that skipped inputs exits with
status 3.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from torch.utils.data import Dataset

from miil.core import distributed as du
from miil.core.cli_args import print_plot_hint
from miil.core.config import dataclass_from_args, pick_recipe, recipe_to_dict
from miil.core.data import Skipped
from miil.core.errors import UserError
from miil.core.evaluate import PredictionMeter, exit_status, print_skipped_summary
from miil.core.evaluate import evaluate as core_evaluate
from miil.core.io import atomic_write_text, load_checkpoint, save_safetensors
from miil.core.verbs import finish

from .data import VideoDataset, list_video_inputs
from .models import convert_original_checkpoint
from .pipeline import (
    TrainedSTAM,
    build_dataset,
    build_model,
    clip_sampling,
    data_source,
    eval_precision,
    evaluate_videos,
    frame_transform,
    load_weights,
    model_config,
    multiview_eval_fn,
    original_head_classes,
)
from .pipeline import (
    train as train_run,
)
from .recipes import RECIPES

__all__ = ["convert", "infer", "train", "validate"]

_CLIP_OVERRIDES = ("sampling", "eval_views", "spatial_views", "num_frames", "frame_rate", "short_video", "backend")


def _metric_text(metrics: dict[str, float]) -> str:
    return " ".join(f"{k} {v:.4g}" for k, v in metrics.items() if isinstance(v, float) and math.isfinite(v))


def _read_classes(path: str | None) -> list[str] | None:
    if path is None:
        return None
    file = Path(path)
    if not file.is_file():
        raise UserError(f"--classes {file} does not exist")
    names = [line.strip() for line in file.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not names:
        raise UserError(f"--classes {file} lists no class names (one per line)")
    return names


def _placeholder(classes: list[str]) -> bool:
    return classes == [str(i) for i in range(len(classes))]


def _load(args: argparse.Namespace) -> TrainedSTAM:
    """The weights, the recipe with the clip options given, and the class names (``--classes`` wins)."""
    recipe = pick_recipe(RECIPES, args.recipe) if args.recipe else None
    loaded = load_weights(args.weights, recipe=recipe)
    given = _read_classes(args.classes)
    if given is not None:
        if len(given) != loaded.model.num_classes:
            count = loaded.model.num_classes
            raise UserError(f"--classes {args.classes} lists {len(given)} names, the model has {count} classes")
        loaded.classes = given
    overrides = {k: getattr(args, k) for k in _CLIP_OVERRIDES if getattr(args, k, None) is not None}
    loaded.recipe = dataclasses.replace(loaded.recipe, **overrides)
    return loaded


def _absolute(path: str | None) -> str | None:
    return None if path is None else os.path.abspath(path)


# --------------------------------------------------------------------------------------------------- train


def train(args: argparse.Namespace) -> int:
    """``miil stam train``: the recipe with the options given, on the dataset given, through the core engine."""
    recipe = dataclass_from_args(pick_recipe(RECIPES, args.recipe), args)
    train_source = data_source(
        args.data_format, args.data_root, split=args.train_split, labels=args.train_labels, training=True
    )
    val_source = data_source(
        args.data_format, args.data_root, split=args.val_split, labels=args.val_labels, training=False
    )
    data_info = {
        "data_format": args.data_format,
        "data_root": _absolute(args.data_root),
        "val_split": None if val_source is None else (args.val_split or None),
        "val_labels": _absolute(args.val_labels),
    }
    result = train_run(
        recipe, train_source, val_source, recipe_name=args.recipe, strict=args.strict, data_info=data_info
    )
    if du.is_main_process():
        best = "n/a" if math.isnan(result.best_metric) else f"{result.best_metric:.4g}"
        print(
            f"miil stam train: best {recipe.eval_metric or 'metric'} {best} at epoch {result.best_epoch + 1} "
            f"({result.best_source} weights): {Path(result.out_dir) / 'best.safetensors'}",
            flush=True,
        )
    print_skipped_summary(result.skipped, prog="miil stam train")
    print_plot_hint(result.out_dir)
    return exit_status(result.skipped)


# --------------------------------------------------------------------------------------------------- validate


def validate(args: argparse.Namespace) -> int:
    """``miil stam validate``: top-1 / top-5 of ``--weights`` on the run's (or the given) validation videos."""
    loaded = _load(args)
    stored = dict(loaded.info.get("data") or {})
    if args.data_root is None and not stored.get("data_root"):
        raise UserError(f"--data-root is needed: {args.weights} names no dataset to validate on")
    if args.data_root is None:  # the run's own validation data, unless parts of it are given
        fmt = args.data_format or stored.get("data_format") or "folder"
        root, split = stored["data_root"], args.val_split or stored.get("val_split")
        labels = args.val_labels or stored.get("val_labels")
    else:
        fmt = args.data_format or stored.get("data_format") or "folder"
        root, split, labels = args.data_root, args.val_split, args.val_labels
    source = data_source(fmt, root, split=split, labels=labels, training=False)
    if source is None:
        raise UserError(f"no validation split under {root} ({fmt}): give --val-split / --val-labels")
    classes = None if _placeholder(loaded.classes) else loaded.classes
    data = build_dataset(loaded.recipe, source, training=False, classes=classes, strict=args.strict)
    if len(data.classes) != loaded.model.num_classes:
        raise UserError(
            f"the data has {len(data.classes)} classes, the model {loaded.model.num_classes}: check --data-root"
        )
    device = du.init_distributed(args.device)
    precision = eval_precision(loaded.eval_precision, amp=args.amp, amp_dtype=args.amp_dtype, device=device)
    recipe = loaded.recipe
    report = evaluate_videos(
        loaded.model,
        data,
        batch_size=args.batch_size or recipe.eval_batch_size or 2 * recipe.batch_size,
        num_workers=args.num_workers,
        device=device,
        precision=precision,
        progress=args.progress,
        loss=nn.CrossEntropyLoss(),
    )
    if du.is_main_process():
        scores = _metric_text(report.metrics) or "no readable videos"
        print(f"miil stam validate: {args.weights} on {fmt} {source.root}: {scores} over {report.samples} videos "
              f"({precision})")  # fmt: skip
    where = {"data_format": fmt, "videos": source.root, "labels": source.labels}
    return finish("miil stam validate", report, args.json, {"weights": str(args.weights), "data": where})


# --------------------------------------------------------------------------------------------------- infer


class _Indexed(Dataset):
    """Each readable video's clip(s) with its position in the input list (the prediction's key)."""

    def __init__(self, videos: VideoDataset):
        self.videos = videos

    def __len__(self) -> int:
        return len(self.videos)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int] | Skipped:
        item = self.videos[index]
        return item if isinstance(item, Skipped) else (item[0], index)


def infer(args: argparse.Namespace) -> int:
    """``miil stam infer``: the top classes of each readable video; unreadable ones are reported, not fatal."""
    loaded = _load(args)
    recipe, classes = loaded.recipe, loaded.classes
    files = list_video_inputs(args.inputs)
    if not files:
        raise UserError(f"no video files in {', '.join(args.inputs)}")
    videos = VideoDataset(
        [(path, 0) for path in files],
        ["?"],
        sampling=clip_sampling(recipe, training=False),
        transform=frame_transform(recipe, training=False),
        backend=recipe.backend,
        strict=args.strict,
        decode_threads=recipe.decode_threads,
    )
    device = du.init_distributed(args.device)
    precision = eval_precision(loaded.eval_precision, amp=args.amp, amp_dtype=args.amp_dtype, device=device)

    def eval_fn(net: nn.Module, batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
        log_probs, index = multiview_eval_fn(net, batch)
        return log_probs.exp(), index

    meter = PredictionMeter()
    report = core_evaluate(
        loaded.model.to(device),
        _Indexed(videos),
        meter=meter,
        eval_fn=eval_fn,
        device=device,
        precision=precision,
        batch_size=args.batch_size,
        num_workers=args.num_workers,
        progress=args.progress,
        desc="infer",
    )
    probs, order = meter.predictions()
    k = min(args.top_k, len(classes))
    predictions = []
    for p, i in zip(probs, order.tolist()):
        top = p.topk(k)
        entry = [{"class": classes[c], "prob": round(float(v), 6)} for v, c in zip(top.values, top.indices.tolist())]
        predictions.append({"video": str(files[i]), "top": entry})
    if du.is_main_process():
        for entry in predictions:
            print(f"{entry['video']}: " + ", ".join(f"{t['class']} {t['prob']:.3f}" for t in entry["top"]))
    return finish("miil stam infer", report, args.json, {"weights": str(args.weights), "predictions": predictions})


# --------------------------------------------------------------------------------------------------- convert


def convert(args: argparse.Namespace) -> int:
    """``miil stam convert SOURCE OUTPUT``: an original checkpoint as safetensors plus a sidecar that describes it."""
    out = Path(args.output)
    if out.suffix != ".safetensors":
        raise UserError(f"OUTPUT must end with .safetensors, got {out}")
    recipe = dataclass_from_args(pick_recipe(RECIPES, args.recipe), args)
    classes = _read_classes(args.classes)
    checkpoint = load_checkpoint(args.source)
    if recipe.num_classes:
        num_classes = recipe.num_classes
    elif classes:
        num_classes = len(classes)
    else:
        num_classes = original_head_classes(Path(args.source))
    if classes and len(classes) != num_classes:
        raise UserError(f"--classes {args.classes} lists {len(classes)} names but the model has {num_classes} classes")
    recipe = dataclasses.replace(recipe, num_classes=num_classes)
    config = model_config(recipe)
    model = build_model(config)
    state = convert_original_checkpoint(checkpoint, model)
    model.load_state_dict(state, strict=True)
    save_safetensors(model.state_dict(), out, metadata={"source": str(args.source)})
    sidecar = {
        "config": recipe_to_dict(recipe),
        "run_info": {
            "recipe": args.recipe,
            "model": config,
            "classes": classes or [str(i) for i in range(num_classes)],
            "converted_from": str(args.source),
        },
    }
    atomic_write_text(out.with_suffix(".json"), json.dumps(sidecar, indent=2))
    print(f"miil stam convert: {len(state)} tensors from {args.source} into {out} (+ {out.with_suffix('.json')})")
    return 0
