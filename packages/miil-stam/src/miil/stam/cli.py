"""``miil stam``: train, validate, infer, convert original checkpoints, list recipes.

Paper: STAM (arXiv 2103.13915).

    miil stam train --recipe STAM-16 --data-format kinetics --train-root k400/train \\
        --train-labels k400/annotations/train.csv --val-root k400/val --val-labels k400/annotations/validate.csv \\
        --spatial-checkpoint vit_base_in21k.safetensors --out-dir runs/stam16
    miil stam validate --weights runs/stam16 --data-format kinetics --root k400/val \\
        --labels k400/annotations/validate.csv --eval-views 3
    miil stam infer --weights runs/stam16 video.mp4          (or a folder of videos)
    miil stam convert stam_16.pth --recipe STAM-16 --classes kinetics400.txt --out stam_16.safetensors
    torchrun --nproc_per_node=8 -m miil.core.cli stam train ...   (DDP)
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
from pathlib import Path

import torch

from miil.core.cli import HelpFormatter
from miil.core.config import add_dataclass_arguments, dataclass_from_args, pick_recipe, recipe_to_dict
from miil.core.io import atomic_write_text, load_checkpoint, save_safetensors

from .data import UnreadableVideoError, list_videos, load_clip
from .models import convert_original_checkpoint
from .pipeline import (
    DATA_FORMATS,
    DataSource,
    build_dataset,
    build_model,
    clip_sampling,
    evaluate_videos,
    frame_transform,
    load_trained,
    model_config,
    train,
)
from .recipes import RECIPES, STAMRecipe

__all__ = ["main", "register"]

_EVAL_OVERRIDES = ("sampling", "eval_views", "spatial_views", "num_frames", "frame_rate", "short_video", "backend")


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _read_classes(path: str | None) -> list[str] | None:
    if path is None:
        return None
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"no such class-name file: {file}")
    names = [line.strip() for line in file.read_text().splitlines() if line.strip()]
    if not names:
        raise ValueError(f"{file} lists no class names (one per line)")
    return names


def _placeholder(classes: list[str]) -> bool:
    return classes == [str(i) for i in range(len(classes))]


def _load(args: argparse.Namespace):
    recipe = pick_recipe(RECIPES, args.recipe) if args.recipe else None
    model, loaded, classes = load_trained(args.weights, recipe=recipe, num_classes=args.num_classes)
    given = _read_classes(args.classes)
    if given is not None:
        if len(given) != model.num_classes:
            raise ValueError(f"{args.classes} lists {len(given)} classes, the model has {model.num_classes}")
        classes = given
    overrides = {k: getattr(args, k) for k in _EVAL_OVERRIDES if getattr(args, k, None) is not None}
    return model, dataclasses.replace(loaded, **overrides), classes


# --------------------------------------------------------------------------------------------------- train


def _train(args: argparse.Namespace) -> int:
    recipe = dataclass_from_args(pick_recipe(RECIPES, args.recipe), args)
    train_src = DataSource(args.data_format, args.train_root, args.train_labels, "train", args.fold)
    val_src = None
    if args.val_root:
        val_src = DataSource(args.data_format, args.val_root, args.val_labels, "test", args.fold)
    result = train(recipe, train_src, val_src, recipe_name=args.recipe, strict=args.strict)
    if int(os.environ.get("RANK", "0")) == 0:
        best = "n/a" if math.isnan(result.best_metric) else f"{result.best_metric:.2f}"
        print(
            f"[miil stam] done: best top-1 {best} at epoch {result.best_epoch + 1} ({result.best_source}); "
            f"weights in {result.out_dir / 'best.safetensors'}"
        )
    return 0


# --------------------------------------------------------------------------------------------------- validate


def _validate(args: argparse.Namespace) -> int:
    model, recipe, classes = _load(args)
    source = DataSource(args.data_format, args.root, args.labels, args.subset, args.fold)
    dataset = build_dataset(
        recipe, source, training=False, classes=None if _placeholder(classes) else classes, strict=args.strict
    )
    if len(dataset.classes) != model.num_classes:
        raise ValueError(f"the data has {len(dataset.classes)} classes, the model {model.num_classes}")
    metrics = evaluate_videos(
        model,
        dataset,
        batch_size=args.batch_size,
        num_workers=args.num_workers,
        device=args.device,
        amp=args.amp,
    )
    if int(os.environ.get("RANK", "0")) == 0:
        print(
            f"[miil stam] {metrics['videos']} videos ({metrics['unreadable']} unreadable): "
            f"top-1 {metrics['top1']:.2f} top-5 {metrics.get('top5', math.nan):.2f} over the readable ones; "
            f"top-1 {metrics.get('top1_all', math.nan):.2f} counting unreadable videos as wrong"
        )
        print(json.dumps(metrics))
        if args.output:
            atomic_write_text(args.output, json.dumps(metrics, indent=2))
    return 0


# --------------------------------------------------------------------------------------------------- infer


@torch.no_grad()
def _infer(args: argparse.Namespace) -> int:
    model, recipe, classes = _load(args)
    device = _device(args.device)
    model.to(device)
    sampling, transform = clip_sampling(recipe, training=False), frame_transform(recipe, training=False)
    files = list_videos(args.input)
    if not files:
        print(f"[miil stam] no video files under {args.input}", file=sys.stderr)
        return 1
    results, bad = [], 0
    k = min(args.topk, model.num_classes)
    for path in files:
        try:
            clip = load_clip(path, sampling=sampling, transform=transform, backend=recipe.backend)
        except Exception as err:
            if args.strict:
                raise UnreadableVideoError(path, err) from err
            bad += 1
            print(f"{path}: unreadable ({type(err).__name__}: {err})", file=sys.stderr)
            continue
        views = clip if clip.ndim == 5 else clip.unsqueeze(0)
        probs = torch.softmax(model(views.to(device)).float(), dim=-1).mean(0)
        top = probs.topk(k)
        entry = {
            "video": str(path),
            "top": [{"class": classes[i], "prob": round(float(p), 6)} for p, i in zip(top.values, top.indices)],
        }
        results.append(entry)
        if not args.json:
            print(f"{path}: " + ", ".join(f"{t['class']} {t['prob']:.3f}" for t in entry["top"]))
    if args.json:
        print(json.dumps(results, indent=2))
    if bad:
        print(f"[miil stam] {bad} of {len(files)} videos unreadable", file=sys.stderr)
    return 0 if results else 1


# --------------------------------------------------------------------------------------------------- convert


def _convert(args: argparse.Namespace) -> int:
    recipe = dataclass_from_args(pick_recipe(RECIPES, args.recipe), args)
    classes = _read_classes(args.classes)
    num_classes = len(classes) if classes and not hasattr(args, "num_classes") else recipe.num_classes
    if classes and len(classes) != num_classes:
        raise ValueError(f"{args.classes} lists {len(classes)} classes but --num-classes is {num_classes}")
    recipe = dataclasses.replace(recipe, num_classes=num_classes)
    config = model_config(recipe)
    model = build_model(config)
    state = convert_original_checkpoint(load_checkpoint(args.checkpoint), model)
    model.load_state_dict(state, strict=True)
    out = Path(args.out)
    if out.suffix != ".safetensors":
        raise ValueError(f"--out must end with .safetensors, got {out}")
    save_safetensors(model.state_dict(), out, metadata={"source": str(args.checkpoint)})
    sidecar = {
        "config": recipe_to_dict(recipe),
        "run_info": {
            "recipe": args.recipe,
            "model": config,
            "classes": classes or [str(i) for i in range(num_classes)],
            "converted_from": str(args.checkpoint),
        },
    }
    atomic_write_text(out.with_suffix(".json"), json.dumps(sidecar, indent=2))
    print(
        f"[miil stam] converted {len(state)} tensors from {args.checkpoint} into {out} (+ {out.with_suffix('.json')})"
    )
    return 0


def _recipes(args: argparse.Namespace) -> int:
    for name, recipe in RECIPES.items():
        doc = (type(recipe).__doc__ or "").strip().splitlines()[0]
        print(f"{name:<8} T={recipe.num_frames:<3} {recipe.frame_rate} fps  {doc}")
        if args.verbose:
            print(json.dumps(recipe_to_dict(recipe), indent=2))
    return 0


# --------------------------------------------------------------------------------------------------- parsers


def _add_model_source(p: argparse.ArgumentParser) -> None:
    p.add_argument("--weights", required=True, help="run dir, converted .safetensors (+ .json) or original .pth")
    p.add_argument("--recipe", default=None, choices=sorted(RECIPES), help="recipe of an original .pth checkpoint")
    p.add_argument("--num-classes", type=int, default=None, help="classes of an original .pth checkpoint")
    p.add_argument("--classes", default=None, help="file with one class name per line (overrides the stored ones)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--strict", action="store_true", help="stop at the first unreadable video")
    g = p.add_argument_group("clip options (default: the model's recipe)")
    g.add_argument("--sampling", default=None, choices=["fixed_fps", "segment", "uniform"])
    g.add_argument("--eval-views", type=int, default=None, help="temporal views per video")
    g.add_argument("--spatial-views", type=int, default=None, choices=[1, 3], help="crops per view")
    g.add_argument("--num-frames", type=int, default=None, help="frames per clip (position embedding interpolated)")
    g.add_argument("--frame-rate", type=float, default=None, help="fixed_fps sampling rate")
    g.add_argument("--short-video", default=None, choices=["pad", "loop"])
    g.add_argument("--backend", default=None, choices=["auto", "decord", "pyav"])


def _add_recipe_overrides(p: argparse.ArgumentParser) -> None:
    # Only the options given on the command line override the chosen recipe.
    group = "recipe overrides (defaults: `miil stam recipes --verbose`)"
    add_dataclass_arguments(p, STAMRecipe, group=group, only_if_given=True)


def register(parser: argparse.ArgumentParser) -> None:
    """Add the ``train``, ``validate``, ``infer``, ``convert`` and ``recipes`` sub-commands to ``miil stam``."""
    parser.description = "STAM video classification (arXiv 2103.13915)"
    sub = parser.add_subparsers(dest="subcommand", metavar="SUBCOMMAND")

    p = sub.add_parser("train", help="train STAM on videos (DDP under torchrun)", formatter_class=HelpFormatter)
    p.add_argument("--recipe", default="STAM-16", choices=sorted(RECIPES), help="paper table row")
    p.add_argument("--data-format", default="folder", choices=DATA_FORMATS, help="layout of the data")
    p.add_argument("--train-root", required=True, help="training videos")
    p.add_argument("--train-labels", default=None, help="kinetics CSV | ucfTrainTestlist folder | path,label CSV")
    p.add_argument("--val-root", default=None, help="validation videos")
    p.add_argument("--val-labels", default=None, help="validation labels (same kinds as --train-labels)")
    p.add_argument("--fold", type=int, default=1, help="UCF-101 split 1..3")
    p.add_argument("--strict", action="store_true", help="stop at the first unreadable video")
    _add_recipe_overrides(p)
    p.set_defaults(func=_train)

    p = sub.add_parser("validate", help="top-1/top-5 over all videos + unreadable count", formatter_class=HelpFormatter)
    _add_model_source(p)
    p.add_argument("--data-format", default="folder", choices=DATA_FORMATS, help="layout of the data")
    p.add_argument("--root", required=True, help="videos")
    p.add_argument("--labels", default=None, help="kinetics CSV | ucfTrainTestlist folder | path,label CSV")
    p.add_argument("--subset", default="test", choices=["train", "test"], help="UCF-101 subset")
    p.add_argument("--fold", type=int, default=1, help="UCF-101 split 1..3")
    p.add_argument("--batch-size", type=int, default=8, help="videos per batch")
    p.add_argument("--num-workers", type=int, default=0, help="data-loader workers")
    p.add_argument("--amp", action="store_true", help="mixed precision")
    p.add_argument("--output", default=None, help="write the metrics as JSON here")
    p.set_defaults(func=_validate)

    p = sub.add_parser("infer", help="top classes of a video file or a folder of videos", formatter_class=HelpFormatter)
    p.add_argument("input", help="a video file or a folder (searched recursively)")
    _add_model_source(p)
    p.add_argument("--topk", type=int, default=5, help="classes to show per video")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=_infer)

    p = sub.add_parser(
        "convert", help="original STAM checkpoint -> safetensors + sidecar", formatter_class=HelpFormatter
    )
    p.add_argument("checkpoint", help="the original file (torch.save of {'model': state_dict})")
    p.add_argument("--recipe", default="STAM-16", choices=sorted(RECIPES), help="the model's table row")
    p.add_argument("--classes", default=None, help="file with one class name per line, in label order")
    p.add_argument("--out", required=True, help="output .safetensors (a .json sidecar is written beside it)")
    _add_recipe_overrides(p)
    p.set_defaults(func=_convert)

    p = sub.add_parser("recipes", help="list the paper's recipes", formatter_class=HelpFormatter)
    p.add_argument("--verbose", action="store_true", help="print every field")
    p.set_defaults(func=_recipes)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="miil stam", formatter_class=HelpFormatter)
    register(parser)
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    return int(args.func(args) or 0)
