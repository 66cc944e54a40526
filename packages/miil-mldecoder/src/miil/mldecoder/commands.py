"""The verbs of ``miil mldecoder`` (train, validate, infer, convert); :mod:`miil.mldecoder.cli` builds their parsers.

Paper: "ML-Decoder: Scalable and Versatile Classification Head", Ridnik et al., 2021 (arXiv 2111.12933).
Validation and inference run through :func:`miil.core.evaluate.evaluate` (progress on rank 0, every sample once over
the ranks, unreadable inputs skipped and reported), in the precision the run was validated in unless ``--amp`` says
otherwise. A command returns its exit status: 0, or 3 when inputs were skipped (``--strict`` makes them fatal).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

import torch

from miil.core import distributed as du
from miil.core.cli_args import parse_model_kwargs, print_plot_hint
from miil.core.config import dataclass_from_args, pick_recipe
from miil.core.distributed import resolve_device
from miil.core.errors import UserError
from miil.core.io import atomic_write_text, extract_state_dict, load_file, save_safetensors
from miil.core.metrics import average_precision
from miil.core.verbs import finish, predict_images, run_evaluation

from .convert import convert_state_dict, head_config
from .data import load_word_vectors
from .factory import create_model
from .pipeline import (
    build_dataset,
    build_meter,
    check_recipe_data,
    eval_transform,
    load_trained,
    normalization,
    zero_shot_eval_fn,
)
from .pipeline import train as train_run
from .recipes import RECIPES
from .sources import DataSource, resolve_source
from .zsl_metrics import load_zsl_split

__all__ = ["convert", "infer", "train", "validate"]


def _prog(verb: str) -> str:
    return f"miil mldecoder {verb}"


def _say(text: str) -> None:
    if du.is_main_process():
        print(text, flush=True)


def _zsl_file(given: str | None, stored: str | None, root: str | None, name: str, flag: str) -> str:
    """A zero-shot file: the flag's, else the run's, else the NUS-WIDE release's file in the data root."""
    for candidate in (given, stored, str(Path(root) / name) if root else None):
        if candidate and Path(candidate).is_file():
            return candidate
    if given:
        raise UserError(f"{flag} {given} does not exist")
    raise UserError(f"zero-shot needs {flag} (no {name} in the data root {root})")


def _read_classes(path: str) -> list[str]:
    text = load_file(path, what="class list")
    if not isinstance(text, str):
        raise UserError(f"--classes {path} is not a text file with one class name per line")
    return [c.strip() for c in text.splitlines() if c.strip()]


# --------------------------------------------------------------------------------------------------- train


def train(args: argparse.Namespace) -> int:
    """``miil mldecoder train``: check the recipe against the data, then train with the core engine."""
    recipe = dataclass_from_args(pick_recipe(RECIPES, args.recipe), args)
    check_recipe_data(recipe, args.data_format, recipe_name=args.recipe)
    parse_model_kwargs(recipe.model_kwargs)  # a bad --model-kwargs fails before any data is read
    train_src = resolve_source(args.data_format, args.data_root, args.train_split, args.train_labels, which="train")
    val_src = resolve_source(
        args.data_format, args.data_root, args.val_split, args.val_labels, which="val", optional=True
    )
    if val_src is None:
        _say(
            f"[miil mldecoder] no validation data in the {args.data_format} layout of {args.data_root} "
            "(--val-split / --val-labels): training without validation; the last epoch's weights are kept"
        )
    word_vectors = zsl_split = None
    if recipe.task == "zsl":
        word_vectors = _zsl_file(args.word_vectors, None, args.data_root, "wordvec_array.pth", "--word-vectors")
        zsl_split = _zsl_file(args.zsl_split, None, args.data_root, "benchmark_81_v0.json", "--zsl-split")
    result = train_run(
        recipe,
        train_src,
        val_src,
        recipe_name=args.recipe,
        word_vectors=word_vectors,
        zsl_split=zsl_split,
        strict=args.strict,
    )
    best = "n/a" if math.isnan(result.best_metric) else f"{result.best_metric:.4f}"
    _say(
        f"[miil mldecoder] done: best {recipe.eval_metric or 'metric'} {best} at epoch {result.best_epoch + 1} "
        f"({result.best_source}); weights in {result.out_dir / 'best.safetensors'}"
    )
    status = finish(_prog("train"), result.skipped)
    print_plot_hint(result.out_dir)
    return status


# --------------------------------------------------------------------------------------------------- validate


def _val_source(args: argparse.Namespace, info: dict[str, Any]) -> DataSource:
    """The data flags, else the run's recorded validation data."""
    stored = (info.get("data") or {}).get("val")
    fmt = args.data_format or (stored or {}).get("format")
    same = stored is not None and fmt == stored["format"]
    if same and args.data_root is None and args.val_split is None and args.val_labels is None:
        return DataSource(**stored)
    if fmt is None:
        raise UserError(
            "these weights record no validation data: pass --data-format and --data-root (and --val-split / "
            "--val-labels where the format's defaults do not fit)"
        )
    root = args.data_root if args.data_root is not None or not same else stored["data_root"]
    return resolve_source(fmt, root, args.val_split, args.val_labels, which="val")


def _print_per_class(classes: list[str], scores: torch.Tensor, targets: torch.Tensor, threshold: float) -> None:
    ap = average_precision(scores, targets)
    pred = torch.sigmoid(scores) >= threshold
    annotated = targets >= 0
    pos = targets > 0
    print(f"{'class':<28} {'AP':>7} {'P':>7} {'R':>7} {'F1':>7} {'pos':>6}")
    for k, name in enumerate(classes):
        p_k, y_k = pred[:, k] & annotated[:, k], pos[:, k]
        tp = float((p_k & y_k).sum())
        prec = 100 * tp / float(p_k.sum()) if p_k.any() else 0.0
        rec = 100 * tp / float(y_k.sum()) if y_k.any() else 0.0
        f1 = 2 * prec * rec / (prec + rec) if prec + rec > 0 else 0.0
        ap_k = "    n/a" if math.isnan(float(ap[k])) else f"{100 * float(ap[k]):7.2f}"
        print(f"{name[:28]:<28} {ap_k} {prec:7.2f} {rec:7.2f} {f1:7.2f} {int(y_k.sum()):6d}")


def validate(args: argparse.Namespace) -> int:
    """``miil mldecoder validate``: the run's metric of ``--weights`` on validation data."""
    device = resolve_device(args.device)
    model, info, meta = load_trained(args.weights, device=device)
    task = info["task"]
    source = _val_source(args, info)
    # Converted zero-shot models know no class list: the data defines it.
    given = list(info["classes"]) or None
    transform = eval_transform(args.img_size or info["img_size"], task, info.get("normalization"))
    dataset = build_dataset(source, transform, classes=given, strict=args.strict)
    classes = list(dataset.classes)
    threshold = args.threshold if args.threshold is not None else float(info.get("prf_threshold", 0.75))
    eval_fn = None
    unseen = None
    if task == "zsl":
        root = source.data_root
        vectors = _zsl_file(args.word_vectors, info.get("word_vectors"), root, "wordvec_array.pth", "--word-vectors")
        eval_fn = zero_shot_eval_fn(load_word_vectors(vectors, len(classes)))
        if args.zsl_split or "unseen" not in info:
            split = _zsl_file(args.zsl_split, None, root, "benchmark_81_v0.json", "--zsl-split")
            unseen = load_zsl_split(split, classes)[1]
        else:
            unseen = info["unseen"]
    meter = build_meter(task, unseen=unseen, prf_threshold=threshold if task == "multilabel" else None)
    precision = meta.get("eval_precision")
    report = run_evaluation(args, model, dataset, stored_precision=precision, meter=meter, eval_fn=eval_fn)
    if task == "multilabel" and report.samples:
        scores, targets = meter.gathered()  # collective: every rank takes part, rank 0 prints
        if du.is_main_process():
            _print_per_class(classes, scores, targets, threshold)
    line = " | ".join(f"{k} {v:.2f}" for k, v in report.metrics.items())
    note = f"threshold {threshold}, " if task == "multilabel" else ""
    _say(f"validation ({note}{report.precision}): {line or 'no readable image'} | images {report.samples}")
    payload = {"weights": str(args.weights), "data": source.as_dict(), "threshold": threshold}
    return finish(_prog("validate"), report, args.json, payload)


# --------------------------------------------------------------------------------------------------- infer


def infer(args: argparse.Namespace) -> int:
    """``miil mldecoder infer``: the labels of image files and folders."""
    device = resolve_device(args.device)
    model, info, meta = load_trained(args.weights, device=device)
    task, classes = info["task"], list(info["classes"])
    eval_fn = None
    if task == "zsl":
        if args.classes:
            classes = _read_classes(args.classes)
        if not classes:
            raise UserError("these zero-shot weights hold no class list: pass --classes and --word-vectors")
        vectors = _zsl_file(args.word_vectors, info.get("word_vectors"), None, "wordvec_array.pth", "--word-vectors")
        eval_fn = zero_shot_eval_fn(load_word_vectors(vectors, len(classes)))
    transform = eval_transform(args.img_size or info["img_size"], task, info.get("normalization"))
    files, logits, index, report = predict_images(
        args, model, transform, stored_precision=meta.get("eval_precision"), eval_fn=eval_fn
    )
    threshold = args.threshold if args.threshold is not None else float(info.get("prf_threshold", 0.75))
    results = []
    if du.is_main_process():
        probs = logits.softmax(-1) if task == "singlelabel" else torch.sigmoid(logits)
        for i, p in zip(index, probs):
            order = p.argsort(descending=True)[: args.top_k].tolist()
            keep = order if task == "singlelabel" else [k for k in order if p[k] >= threshold]
            labels = [{"class": classes[k], "score": float(p[k])} for k in keep]
            results.append({"image": str(files[i]), "labels": labels})
            shown = ", ".join(f"{d['class']} ({d['score']:.3f})" for d in labels) or "(no label above threshold)"
            print(f"{files[i]}: {shown}", flush=True)
    payload = {
        "weights": str(args.weights),
        "task": task,
        "threshold": threshold if task != "singlelabel" else None,
        "top_k": args.top_k,
        "predictions": results,
    }
    return finish(_prog("infer"), report, args.json, payload)


# --------------------------------------------------------------------------------------------------- convert


def convert(args: argparse.Namespace) -> int:
    """``miil mldecoder convert SOURCE OUTPUT``: an original or timm checkpoint into miil weights + sidecar."""
    out = Path(args.output)
    if out.suffix != ".safetensors":
        raise UserError(f"OUTPUT must be a .safetensors file, got {out}")
    source = extract_state_dict(load_file(args.source, what="checkpoint"), key=args.key)
    cfg = head_config(source)
    zero_shot = bool(cfg["zero_shot"])
    head_kwargs: dict[str, Any] = dict(embed_dim=cfg["embed_dim"], ffn_dim=cfg["ffn_dim"], num_heads=args.num_heads)
    if zero_shot:
        head_kwargs["word_dim"] = cfg["word_dim"]
    else:
        head_kwargs["num_groups"] = cfg["num_groups"]
    model_kwargs = parse_model_kwargs(args.model_kwargs)
    head = "zero_shot" if zero_shot else "ml_decoder"
    model = create_model(args.model, cfg["num_classes"] or None, head=head, model_kwargs=model_kwargs, **head_kwargs)
    converted = convert_state_dict(source, model, layout=args.layout, filter_backbone=args.filter_backbone)
    model.load_state_dict(converted)
    num_classes = int(cfg["num_classes"])
    if args.classes:
        classes = _read_classes(args.classes)
        if not zero_shot and len(classes) != num_classes:
            raise UserError(f"--classes {args.classes} lists {len(classes)} classes, the checkpoint has {num_classes}")
    else:
        classes = [str(k) for k in range(num_classes)]
    spec = {
        "name": args.model,
        "num_classes": num_classes,
        "head": head,
        "model_kwargs": model_kwargs,
        "drop_prefix_tokens": True,
        "head_kwargs": head_kwargs,
    }
    info = {
        "package": "miil-mldecoder",
        "converted_from": str(args.source),
        "task": "zsl" if zero_shot else args.task,
        "classes": classes,
        "model": spec,
        "img_size": args.img_size,
        "normalization": normalization(model, args.normalize),
        "prf_threshold": 0.75,
    }
    save_safetensors(model.state_dict(), out)
    atomic_write_text(out.with_suffix(".json"), _json({"run_info": info, "eval_precision": "fp32"}))
    print(f"converted {len(source)} tensors ({args.layout} layout) into {out} (+ {out.with_suffix('.json').name})")
    return 0


def _json(obj: Any) -> str:
    import json

    return json.dumps(obj, indent=2) + "\n"
