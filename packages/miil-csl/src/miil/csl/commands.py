"""The verbs of ``miil csl`` (train, validate, infer, convert); :mod:`miil.csl.cli` builds their parsers.

Paper: "Multi-label Classification with Partial Annotations using Class-aware Selective Loss" (arXiv 2110.10955).
``train`` runs the paper's two stages in one command (:func:`miil.csl.pipeline.train_csl`). Validation and inference
run through :func:`miil.core.evaluate.evaluate` (progress on rank 0, every sample once over the ranks, unreadable
inputs skipped and reported), in the precision the run was validated in unless ``--amp`` says otherwise. A command
returns its exit status: 0, or 3 when inputs were skipped (``--strict`` makes them fatal).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import torch

from miil.core import distributed as du
from miil.core.cli_args import parse_model_kwargs, print_plot_hint
from miil.core.config import dataclass_from_args, pick_recipe, recipe_to_dict
from miil.core.distributed import resolve_device
from miil.core.errors import UserError
from miil.core.io import atomic_write_text, save_safetensors
from miil.core.verbs import finish, predict_images, run_evaluation

from .convert import load_original_checkpoint
from .pipeline import build_meter, check_recipe_data, eval_transform, load_run, load_split, train_csl
from .recipes import RECIPES, CSLConfig
from .sources import DataSpec, SplitSource, describe, resolve_split, spec_from_dict

__all__ = ["convert", "infer", "train", "validate"]


def _prog(verb: str) -> str:
    return f"miil csl {verb}"


def _say(text: str) -> None:
    if du.is_main_process():
        print(text, flush=True)


# --------------------------------------------------------------------------------------------------- train


def train(args: argparse.Namespace) -> int:
    """``miil csl train``: check the recipe against the data, then the two stages (or one, given a prior)."""
    overrides = {k: v for k, v in vars(args).items() if k != "data_format"}  # --data-format: None is the recipe's
    cfg = dataclass_from_args(pick_recipe(RECIPES, args.recipe), overrides)
    if args.data_format is not None:
        cfg = dataclasses.replace(cfg, data_format=args.data_format)
    check_recipe_data(cfg, recipe=args.recipe)
    parse_model_kwargs(cfg.model_kwargs.strip() or "{}")  # a bad --model-kwargs fails before any data is read
    spec = DataSpec(
        data_root=args.data_root,
        train_split=args.train_split,
        val_split=args.val_split,
        train_labels=args.train_labels,
        val_labels=args.val_labels,
        classes=args.classes,
        strict=args.strict,
    )
    result = train_csl(cfg, spec, recipe=args.recipe)
    best = "n/a" if math.isnan(result.best_metric) else f"{result.best_metric:.4f}"
    stage1 = "" if result.stage1_metric is None else f"; stage 1 (ignore) best {result.stage1_metric:.4f}"
    prior = f"; class prior {result.prior_path}" if result.prior_path else ""
    _say(
        f"[miil csl] done: best {cfg.eval_metric or 'metric'} {best} at epoch {result.best_epoch + 1}{stage1}{prior}; "
        f"weights in {result.out_dir / 'best.safetensors'}"
    )
    status = finish(_prog("train"), result.skipped)
    print_plot_hint(result.out_dir)
    return status


# --------------------------------------------------------------------------------------------------- validate


def _val_source(args: argparse.Namespace, cfg: CSLConfig, info: dict[str, Any]) -> SplitSource:
    """The data flags, else the run's recorded validation data."""
    stored = info.get("data") or {}
    fmt = args.data_format or stored.get("format") or cfg.data_format
    same = fmt == stored.get("format")
    flags = (args.data_root, args.val_split, args.val_labels, args.classes)
    if same and all(f is None for f in flags) and stored.get("val"):
        return SplitSource(**stored["val"])
    base = spec_from_dict(stored.get("flags")) if same else DataSpec()
    spec = DataSpec(
        data_root=args.data_root if args.data_root is not None else base.data_root,
        val_split=args.val_split,
        val_labels=args.val_labels,
        classes=args.classes if args.classes is not None else base.classes,
    )
    if fmt != "mosaic" and spec.data_root is None and spec.val_labels is None:
        raise UserError(
            "these weights record no validation data: pass --data-format and --data-root (and --val-split / "
            "--val-labels where the format's defaults do not fit)"
        )
    return resolve_split(fmt, spec, "val")


def validate(args: argparse.Namespace) -> int:
    """``miil csl validate``: the run's metric of ``--weights`` on validation data."""
    device = resolve_device(args.device)
    model, cfg, info, meta = load_run(args.weights)
    model.to(device)
    source = _val_source(args, cfg, info)
    if args.threshold is not None:
        cfg = dataclasses.replace(cfg, prf_threshold=args.threshold)
    cfg = dataclasses.replace(cfg, data_format=source.format)
    dataset = load_split(cfg, source, eval_transform(cfg), strict=args.strict)
    if list(dataset.classes) != list(info["classes"]):
        raise UserError(
            f"the classes of {describe(source)} ({len(dataset.classes)}) differ from the {len(info['classes'])} the "
            "weights were trained on, or are in another order"
        )
    meter = build_meter(cfg, dataset)
    report = run_evaluation(args, model, dataset, stored_precision=meta.get("eval_precision"), meter=meter)
    line = " | ".join(f"{k} {v:.2f}" for k, v in report.metrics.items())
    _say(
        f"validation ({report.precision}, {describe(source)}): {line or 'no readable image'} | images {report.samples}"
    )
    payload = {"weights": str(args.weights), "data": source.as_dict()}
    return finish(_prog("validate"), report, args.json, payload)


# --------------------------------------------------------------------------------------------------- infer


def infer(args: argparse.Namespace) -> int:
    """``miil csl infer``: the labels of image files and folders."""
    device = resolve_device(args.device)
    model, cfg, info, meta = load_run(args.weights)
    model.to(device)
    classes = info["classes"]
    names = info.get("class_names") or {}
    files, logits, index, report = predict_images(
        args, model, eval_transform(cfg), stored_precision=meta.get("eval_precision")
    )
    results = []
    if du.is_main_process():
        for i, p in zip(index, torch.sigmoid(logits)):
            order = [int(k) for k in torch.argsort(p, descending=True) if p[k] >= args.threshold]
            picked = order[: args.top_k] if args.top_k > 0 else order
            labels = [
                {"class": classes[k], "name": names.get(classes[k], classes[k]), "score": float(p[k])} for k in picked
            ]
            results.append({"image": str(files[i]), "labels": labels})
            shown = ", ".join(f"{d['name']} ({d['score']:.3f})" for d in labels) or "(no class above the threshold)"
            print(f"{files[i]}: {shown}", flush=True)
    payload = {
        "weights": str(args.weights),
        "threshold": args.threshold,
        "top_k": args.top_k,
        "predictions": results,
    }
    return finish(_prog("infer"), report, args.json, payload)


# --------------------------------------------------------------------------------------------------- convert


def convert(args: argparse.Namespace) -> int:
    """``miil csl convert SOURCE OUTPUT``: an original CSL / ASL TResNet checkpoint into miil weights + sidecar."""
    out = Path(args.output)
    if out.suffix != ".safetensors":
        raise UserError(f"OUTPUT must be a .safetensors file, got {out}")
    kwargs = parse_model_kwargs(args.model_kwargs)
    cfg = CSLConfig(model=args.model, pretrained=False, img_size=args.img_size, model_kwargs=json.dumps(kwargs))
    model, classes = load_original_checkpoint(args.source, model=args.model, **kwargs)
    if classes is None:
        classes = [str(i) for i in range(model.num_classes)]
    bottleneck = model.head.embedding.out_features if hasattr(model.head, "embedding") else None
    cfg = dataclasses.replace(cfg, bottleneck_features=bottleneck)
    save_safetensors(model.state_dict(), out)
    meta = {
        "config": recipe_to_dict(cfg),
        "run_info": {"classes": classes, "converted_from": str(args.source)},
        "source": "converted",
        "eval_precision": "fp32",
    }
    atomic_write_text(out.with_suffix(".json"), json.dumps(meta, indent=2) + "\n")
    head = f"bottleneck {bottleneck}" if bottleneck else "linear head"
    print(f"converted {args.source} ({len(classes)} classes, {head}) into {out} (+ {out.with_suffix('.json').name})")
    return 0
