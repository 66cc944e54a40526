"""``miil mldecoder``: train, validate, infer, convert and list recipes.

Paper: "ML-Decoder: Scalable and Versatile Classification Head", Ridnik et al., 2021 (arXiv 2111.12933).

    miil mldecoder train --recipe coco-tresnet-l-448 --data-format coco \\
        --train-root coco/train2014 --train-labels coco/annotations/instances_train2014.json \\
        --val-root coco/val2014 --val-labels coco/annotations/instances_val2014.json --out-dir runs/coco
    miil mldecoder validate --weights runs/coco --data-format coco --root coco/val2014 \\
        --labels coco/annotations/instances_val2014.json
    miil mldecoder infer --weights runs/coco photos/
    torchrun --nproc_per_node=8 -m miil.core.cli mldecoder train ...   (DDP)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from miil.core.cli import HelpFormatter
from miil.core.config import add_dataclass_arguments, dataclass_from_args, pick_recipe, recipe_to_dict
from miil.core.data import IMAGE_EXTENSIONS, UnreadablePolicy, skip_unreadable_collate
from miil.core.io import atomic_write_text, extract_state_dict, load_checkpoint, save_safetensors
from miil.core.metrics import average_precision, mean_average_precision, multilabel_prf, topk_accuracy

from .convert import convert_state_dict, head_config
from .data import load_word_vectors
from .factory import create_model
from .pipeline import DATA_FORMATS, DataSource, build_dataset, eval_transform, load_trained, normalization, train
from .recipes import RECIPES, MLDecoderRecipe
from .zsl_metrics import load_zsl_split, zsl_metrics

__all__ = ["main", "register"]


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


# --------------------------------------------------------------------------------------------------- train


def _train(args: argparse.Namespace) -> int:
    recipe = dataclass_from_args(pick_recipe(RECIPES, args.recipe), args)
    train_src = DataSource(args.data_format, args.train_root, args.train_labels, args.train_split)
    val_src = None
    if args.val_root or args.val_labels:
        val_src = DataSource(args.data_format, args.val_root, args.val_labels, args.val_split)
    result = train(
        recipe,
        train_src,
        val_src,
        recipe_name=args.recipe,
        word_vectors=args.word_vectors,
        zsl_split=args.zsl_split,
        strict=args.strict,
    )
    if int(os.environ.get("RANK", "0")) == 0:
        best = "n/a" if math.isnan(result.best_metric) else f"{result.best_metric:.4f}"
        print(
            f"[miil mldecoder] done: best {recipe.eval_metric or 'metric'} {best} at epoch {result.best_epoch + 1} "
            f"({result.best_source}); weights in {result.out_dir / 'best.safetensors'}"
        )
    return 0


# --------------------------------------------------------------------------------------------------- validate


@torch.no_grad()
def _predict(model: torch.nn.Module, loader: DataLoader, device: torch.device, **head_kwargs: Any):
    outputs, targets = [], []
    for batch in loader:
        if batch is None:
            continue
        outputs.append(model(batch[0].to(device), **head_kwargs).float().cpu())
        targets.append(batch[1])
    if not outputs:
        raise RuntimeError("no readable image in the data")
    return torch.cat(outputs), torch.cat(targets)


def _zsl_vectors(args: argparse.Namespace, info: dict[str, Any], num_classes: int) -> torch.Tensor:
    path = args.word_vectors or info.get("word_vectors")
    if not path:
        raise ValueError("zero-shot models need --word-vectors (one row per class, in the class order)")
    return load_word_vectors(path, num_classes)


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


def _validate(args: argparse.Namespace) -> int:
    device = _device(args.device)
    model, info = load_trained(args.weights, device=device)
    task = info["task"]
    img_size = args.img_size or info["img_size"]
    norm = info.get("normalization")
    source = DataSource(args.data_format, args.root, args.labels, args.split)
    # Converted zero-shot models know no class list: the data defines it.
    given = list(info["classes"]) or None
    dataset = build_dataset(source, eval_transform(img_size, task, norm), classes=given, strict=args.strict)
    classes = list(dataset.classes)
    loader = DataLoader(
        dataset, batch_size=args.batch_size, num_workers=args.num_workers, collate_fn=skip_unreadable_collate
    )
    head_kwargs = {}
    if task == "zsl":
        head_kwargs["word_vectors"] = _zsl_vectors(args, info, len(classes)).to(device)
    scores, targets = _predict(model, loader, device, **head_kwargs)
    threshold = args.threshold if args.threshold is not None else float(info.get("prf_threshold", 0.75))
    if task == "singlelabel":
        k = [k for k in (1, 5) if k <= scores.shape[1]]
        metrics = {f"top{kk}": acc for kk, acc in zip(k, topk_accuracy(scores, targets.long(), topk=k))}
    elif task == "zsl":
        if args.zsl_split:
            unseen = load_zsl_split(args.zsl_split, classes)[1]
        elif "unseen" in info:
            unseen = info["unseen"]
        else:
            raise ValueError("this zero-shot model has no stored seen/unseen split; pass --zsl-split")
        metrics = zsl_metrics(scores, targets, torch.tensor(unseen))
    else:
        metrics = {"mAP": 100.0 * mean_average_precision(scores, targets)}
        metrics.update(multilabel_prf(torch.sigmoid(scores), targets, threshold=threshold))
        _print_per_class(classes, scores, targets, threshold)
    metrics["images"] = int(scores.shape[0])
    line = " | ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}" for k, v in metrics.items())
    note = f" (threshold {threshold})" if task == "multilabel" else ""
    print(f"validation{note}: {line}")
    if args.output:
        atomic_write_text(args.output, json.dumps(metrics, indent=2))
    return 0


# --------------------------------------------------------------------------------------------------- infer


def _image_files(inputs: list[str]) -> list[Path]:
    files: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
            if not found:
                raise FileNotFoundError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in folder {path}")
            files += found
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(f"input {path} is neither an image file nor a folder")
    return files


def _infer(args: argparse.Namespace) -> int:
    device = _device(args.device)
    model, info = load_trained(args.weights, device=device)
    task, classes = info["task"], list(info["classes"])
    head_kwargs = {}
    if task == "zsl":
        if args.classes:
            classes = [c.strip() for c in Path(args.classes).read_text().splitlines() if c.strip()]
        if not classes:
            raise ValueError("this zero-shot model has no class list; pass --classes and --word-vectors")
        head_kwargs["word_vectors"] = _zsl_vectors(args, info, len(classes)).to(device)
    transform = eval_transform(args.img_size or info["img_size"], task, info.get("normalization"))
    policy = UnreadablePolicy(strict=args.strict)
    files = _image_files(args.inputs)
    results = []
    for start in range(0, len(files), args.batch_size):
        chunk = files[start : start + args.batch_size]
        images = [(p, policy.load_image(p)) for p in chunk]
        images = [(p, transform(img)) for p, img in images if img is not None]
        if not images:
            continue
        with torch.no_grad():
            logits = model(torch.stack([t for _, t in images]).to(device), **head_kwargs).float().cpu()
        probs = logits.softmax(-1) if task == "singlelabel" else torch.sigmoid(logits)
        for (path, _), p in zip(images, probs):
            order = p.argsort(descending=True)[: args.top_k].tolist()
            keep = order if task == "singlelabel" else [k for k in order if p[k] >= args.threshold]
            labels = [(classes[k], float(p[k])) for k in keep]
            results.append({"image": str(path), "labels": labels})
            shown = ", ".join(f"{name} ({score:.3f})" for name, score in labels) or "(no label above threshold)"
            print(f"{path}: {shown}")
    if args.output:
        atomic_write_text(args.output, json.dumps(results, indent=2))
    return 0


# --------------------------------------------------------------------------------------------------- convert


def _convert(args: argparse.Namespace) -> int:
    source = extract_state_dict(load_checkpoint(args.source), key=args.key)
    cfg = head_config(source)
    zero_shot = bool(cfg["zero_shot"])
    head_kwargs: dict[str, Any] = dict(embed_dim=cfg["embed_dim"], ffn_dim=cfg["ffn_dim"], num_heads=args.num_heads)
    if zero_shot:
        head_kwargs["word_dim"] = cfg["word_dim"]
    else:
        head_kwargs["num_groups"] = cfg["num_groups"]
    model_kwargs = json.loads(args.model_kwargs)
    head = "zero_shot" if zero_shot else "ml_decoder"
    model = create_model(args.model, cfg["num_classes"] or None, head=head, model_kwargs=model_kwargs, **head_kwargs)
    converted = convert_state_dict(source, model, layout=args.layout, filter_backbone=not args.no_filter_backbone)
    model.load_state_dict(converted)
    num_classes = int(cfg["num_classes"])
    if args.classes:
        classes = [c.strip() for c in Path(args.classes).read_text().splitlines() if c.strip()]
        if not zero_shot and len(classes) != num_classes:
            raise ValueError(f"{args.classes} lists {len(classes)} classes, the checkpoint has {num_classes}")
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
    task = "zsl" if zero_shot else args.task
    info = {
        "package": "miil-mldecoder",
        "converted_from": str(args.source),
        "task": task,
        "classes": classes,
        "model": spec,
        "img_size": args.img_size,
        "normalization": normalization(model, not args.no_normalize),
        "prf_threshold": 0.75,
    }
    out = Path(args.output)
    if out.suffix != ".safetensors":
        raise ValueError(f"output must be a .safetensors file, got {out}")
    save_safetensors(model.state_dict(), out)
    atomic_write_text(out.with_suffix(".json"), json.dumps({"run_info": info}, indent=2))
    print(f"converted {len(source)} tensors ({args.layout} layout) into {out} (+ {out.with_suffix('.json').name})")
    return 0


def _recipes(args: argparse.Namespace) -> int:
    names = [args.name] if args.name else sorted(RECIPES)
    for name in names:
        recipe = pick_recipe(RECIPES, name)
        print(f"{name}  ({type(recipe).__name__}: {(type(recipe).__doc__ or '').strip().splitlines()[0]})")
        if args.name:
            for key, value in recipe_to_dict(recipe).items():
                print(f"  --{key.replace('_', '-'):<24} {value}")
    return 0


# --------------------------------------------------------------------------------------------------- parsers


def _data_args(p: argparse.ArgumentParser, prefixes: tuple[str, ...]) -> None:
    g = p.add_argument_group("data")
    g.add_argument("--data-format", choices=DATA_FORMATS, default="coco", help="dataset layout")
    for prefix in prefixes:
        dash = f"{prefix}-" if prefix else ""
        under = f"{prefix}_" if prefix else ""
        g.add_argument(f"--{dash}root", dest=f"{under}root", default=None, help="image folder (VOC: VOC20XX folder)")
        g.add_argument(
            f"--{dash}labels",
            dest=f"{under}labels",
            default=None,
            help="COCO instances JSON, CSV file, NUS-WIDE data.csv, or VOC split name",
        )
        default_split = "train" if prefix == "train" else "val"
        g.add_argument(f"--{dash}split", dest=f"{under}split", default=default_split, help="NUS-WIDE split to use")
    g.add_argument("--word-vectors", default=None, help="zero-shot: class word vectors (.pth/.npy/.safetensors)")
    g.add_argument("--zsl-split", default=None, help="zero-shot: JSON with 'train class' / 'test class' names")
    g.add_argument("--strict", action="store_true", help="stop on unreadable images instead of skipping them")


def register(parser: argparse.ArgumentParser) -> None:
    """Add the ``miil mldecoder`` subcommands to ``parser``."""
    parser.description = __doc__
    parser.formatter_class = HelpFormatter
    sub = parser.add_subparsers(dest="subcommand", metavar="SUBCOMMAND")

    p = sub.add_parser("train", help="train with a paper recipe (DDP under torchrun)", formatter_class=HelpFormatter)
    p.add_argument("--recipe", default="coco-tresnet-l-448", choices=sorted(RECIPES), help="paper table row")
    _data_args(p, ("train", "val"))
    overrides = "recipe overrides (defaults come from --recipe: `miil mldecoder recipes NAME`)"
    add_dataclass_arguments(p, MLDecoderRecipe, group=overrides, only_if_given=True)
    p.set_defaults(func=_train)

    p = sub.add_parser("validate", help="mAP and per-class P/R/F1 of a trained model", formatter_class=HelpFormatter)
    p.add_argument("--weights", required=True, help="run folder or .safetensors written by train / convert")
    _data_args(p, ("",))
    p.add_argument("--threshold", type=float, default=None, help="P/R/F1 threshold (default: the run's, 0.75)")
    p.add_argument("--img-size", type=int, default=None, help="input size (default: the run's)")
    p.add_argument("--batch-size", type=int, default=32, help="batch size")
    p.add_argument("--num-workers", type=int, default=0, help="data-loader workers")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--output", default=None, help="also write the metrics as JSON")
    p.set_defaults(func=_validate)

    p = sub.add_parser("infer", help="labels of image files or folders", formatter_class=HelpFormatter)
    p.add_argument("inputs", nargs="+", help="image files and/or folders")
    p.add_argument("--weights", required=True, help="run folder or .safetensors written by train / convert")
    p.add_argument("--threshold", type=float, default=0.75, help="multi-label score threshold")
    p.add_argument("--top-k", type=int, default=20, help="most labels printed per image")
    p.add_argument("--img-size", type=int, default=None, help="input size (default: the run's)")
    p.add_argument("--batch-size", type=int, default=16, help="batch size")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--word-vectors", default=None, help="zero-shot: word vectors of the classes to predict")
    p.add_argument("--classes", default=None, help="zero-shot: text file with the class names, one per line")
    p.add_argument("--strict", action="store_true", help="stop on unreadable images instead of skipping them")
    p.add_argument("--output", default=None, help="also write the predictions as JSON")
    p.set_defaults(func=_infer)

    p = sub.add_parser(
        "convert", help="original / timm ML-Decoder checkpoint -> miil safetensors", formatter_class=HelpFormatter
    )
    p.add_argument("source", help="checkpoint (.pth with tensors only, or .safetensors)")
    p.add_argument("output", help="output .safetensors (a .json sidecar is written beside it)")
    p.add_argument("--model", required=True, help="timm backbone name, e.g. tresnet_v2_l or resnet50")
    p.add_argument("--model-kwargs", default="{}", help="JSON dict of extra timm.create_model arguments")
    p.add_argument("--layout", choices=("auto", "original", "timm"), default="auto", help="source key layout")
    p.add_argument("--key", default=None, help="entry of the checkpoint holding the state dict")
    p.add_argument("--num-heads", type=int, default=8, help="decoder heads (not stored in checkpoints)")
    p.add_argument("--task", choices=("multilabel", "singlelabel"), default="multilabel", help="non-zero-shot task")
    p.add_argument("--classes", default=None, help="text file with the class names, one per line")
    p.add_argument("--img-size", type=int, default=448, help="input size stored for validate / infer")
    p.add_argument("--no-normalize", action="store_true", help="store no mean/std normalisation")
    p.add_argument("--no-filter-backbone", action="store_true", help="skip timm's checkpoint_filter_fn")
    p.set_defaults(func=_convert)

    p = sub.add_parser("recipes", help="list the paper recipes (or one recipe's values)", formatter_class=HelpFormatter)
    p.add_argument("name", nargs="?", default=None, help="recipe to show in full")
    p.set_defaults(func=_recipes)


def main(argv: list[str] | None = None) -> int:
    """``miil mldecoder ...`` without the ``miil`` front end (also usable as ``python -m miil.mldecoder.cli``)."""
    parser = argparse.ArgumentParser(prog="miil mldecoder", formatter_class=HelpFormatter)
    register(parser)
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
