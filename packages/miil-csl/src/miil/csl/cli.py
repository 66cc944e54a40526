"""``miil csl`` subcommands: train (two-stage CSL), validate, infer, recipes, convert.

Paper: "Multi-label Classification with Partial Annotations using Class-aware Selective Loss" (arXiv 2110.10955).
``miil csl train --recipe coco_fpc1000_csl --train instances_train2014.json --train-root train2014 --val ...`` runs the
paper's two stages (temporary ``ignore`` model -> class prior -> selective model) when no ``--prior-path`` is given;
it runs under ``torchrun`` as well. Every recipe field can be overridden (``--epochs 1 --mode negative``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from miil.core.cli import HelpFormatter
from miil.core.config import add_dataclass_arguments, dataclass_from_args, pick_recipe, recipe_to_dict
from miil.core.data import UnreadablePolicy, skip_unreadable_collate
from miil.core.io import atomic_write_text, save_safetensors

from .recipes import RECIPES, CSLConfig

__all__ = ["register"]

_DEFAULT_RECIPE = "coco_fpc1000_csl"


def _add_data_arguments(parser: argparse.ArgumentParser, *, train: bool) -> None:
    group = parser.add_argument_group("data (not needed for --data-format mosaic)")
    if train:
        group.add_argument("--train", default=None, help="training labels: COCO/LVIS JSON, OpenImages CSV or miil CSV")
        group.add_argument("--train-root", default=None, help="training images folder (default: labels' folder)")
        group.add_argument("--train-split", default="train", help="OpenImages data.csv: split name of training rows")
    group.add_argument("--val", default=None, help="validation labels (same format as the training labels)")
    group.add_argument("--val-root", default=None, help="validation images folder (default: labels' folder)")
    group.add_argument("--val-split", default="val", help="OpenImages data.csv: split name of validation rows")
    group.add_argument("--classes", default=None, help="OpenImages class list (.txt MIDs, descriptions .csv, .pth)")
    group.add_argument("--strict", action="store_true", help="stop at unreadable images instead of skipping them")


def _spec(args: argparse.Namespace):
    from .pipeline import DataSpec

    return DataSpec(
        train=getattr(args, "train", None),
        train_root=getattr(args, "train_root", None),
        val=args.val,
        val_root=args.val_root,
        classes=args.classes,
        train_split=getattr(args, "train_split", "train"),
        val_split=args.val_split,
        strict=args.strict,
    )


def _train(args: argparse.Namespace) -> int:
    from .pipeline import train_csl

    recipe = pick_recipe(RECIPES, args.recipe)
    cfg = dataclass_from_args(recipe, args)
    result = train_csl(cfg, _spec(args), recipe=args.recipe)
    from miil.core import distributed as du

    if du.is_main_process():
        print(
            json.dumps(
                {
                    "out_dir": str(result.out_dir),
                    "best_mAP": result.best_metric,
                    "best_epoch": result.best_epoch,
                    "prior": str(result.prior_path) if result.prior_path else None,
                    "stage1_best_mAP": result.stage1_metric,
                }
            )
        )
    return 0


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


@torch.no_grad()
def _validate(args: argparse.Namespace) -> int:
    from .pipeline import DataSpec, build_meter, eval_transform, load_run_model, load_split

    model, cfg, info = load_run_model(args.run, args.which)
    saved = info.get("data") or {}
    spec = _spec(args)
    if spec.val is None and cfg.data_format != "mosaic":
        spec = DataSpec(**{**saved, "strict": args.strict}) if saved.get("val") else spec
    if cfg.data_format != "mosaic" and spec.val is None:
        raise SystemExit("miil csl validate: pass --val (the run does not record a validation set)")
    if args.prf_threshold is not None:
        cfg = dataclasses.replace(cfg, prf_threshold=args.prf_threshold)
    val = load_split(cfg, spec, "val", eval_transform(cfg))
    if list(val.classes) != list(info["classes"]):
        raise SystemExit(
            f"miil csl validate: the validation classes differ from the {len(info['classes'])} trained ones"
        )
    device = _device(args.device)
    model.to(device)
    meter = build_meter(cfg, val)
    loader = DataLoader(
        val, batch_size=args.batch_size, num_workers=args.num_workers, collate_fn=skip_unreadable_collate
    )
    for batch in loader:
        if batch is None:
            continue
        meter.update(model(batch[0].to(device)).float().cpu(), batch[1])
    metrics = meter.compute()
    print(json.dumps({"run": str(args.run), "samples": len(val), **metrics}))
    return 0


@torch.no_grad()
def _infer(args: argparse.Namespace) -> int:
    from .pipeline import eval_transform, load_run_model

    model, cfg, info = load_run_model(args.run, args.which)
    classes = info["classes"]
    names = info.get("class_names") or {}
    device = _device(args.device)
    model.to(device)
    transform = eval_transform(cfg)
    policy = UnreadablePolicy(strict=True)
    for path in args.images:
        img = policy.load_image(path)
        probs = torch.sigmoid(model(transform(img)[None].to(device)).float())[0].cpu()
        order = torch.argsort(probs, descending=True)
        picked = [int(i) for i in order if probs[i] >= args.threshold][: args.top_k or None]
        labels = [
            {"class": classes[i], "name": names.get(classes[i], classes[i]), "score": round(float(probs[i]), 5)}
            for i in picked
        ]
        print(json.dumps({"image": str(path), "labels": labels}))
    return 0


def _recipes(args: argparse.Namespace) -> int:
    if args.name:
        print(json.dumps(recipe_to_dict(pick_recipe(RECIPES, args.name)), indent=2))
        return 0
    for name, r in RECIPES.items():
        sim = {"fpc": f"FPC({r.simulate_param:g})", "rps": f"RPS({r.simulate_param:g})"}.get(r.simulate, "-")
        print(f"{name:<36} {r.data_format:<11} {sim:<10} mode={r.mode:<10} model={r.model}")
    return 0


def _convert(args: argparse.Namespace) -> int:
    from .convert import load_original_checkpoint
    from .pipeline import model_kwargs

    cfg = CSLConfig(model=args.model, pretrained=False, img_size=args.img_size, model_args=args.model_args)
    model, classes = load_original_checkpoint(args.checkpoint, model=args.model, **model_kwargs(cfg))
    if classes is None:
        classes = [str(i) for i in range(model.num_classes)]
    bottleneck = model.head.embedding.out_features if hasattr(model.head, "embedding") else None
    cfg = dataclasses.replace(cfg, bottleneck_features=bottleneck)
    out = Path(args.out)
    save_safetensors(model.state_dict(), out / "best.safetensors")
    meta = {
        "config": recipe_to_dict(cfg),
        "run_info": {"classes": classes, "converted_from": str(args.checkpoint)},
        "source": "converted",
    }
    atomic_write_text(out / "best.json", json.dumps(meta, indent=2))
    print(json.dumps({"out_dir": str(out), "classes": len(classes), "bottleneck": cfg.bottleneck_features}))
    return 0


def register(parser: argparse.ArgumentParser) -> None:
    """Add the ``train``, ``validate``, ``infer``, ``recipes`` and ``convert`` subcommands to ``miil csl``."""
    parser.description = __doc__.split("\n\n")[1]
    sub = parser.add_subparsers(dest="subcommand", metavar="SUBCOMMAND")

    p = sub.add_parser(
        "train",
        help="train with a recipe (selective mode: temporary ignore model -> class prior -> target model)",
        formatter_class=HelpFormatter,
        description="Recipes: " + ", ".join(RECIPES) + ". Recipe options default to the chosen recipe's values "
        "(`miil csl recipes NAME` prints them).",
    )
    p.add_argument("--recipe", default=_DEFAULT_RECIPE, help="recipe name (a row of the paper's tables)")
    _add_data_arguments(p, train=True)
    add_dataclass_arguments(p, CSLConfig, group="recipe options (default: the recipe's value)", only_if_given=True)
    p.set_defaults(func=_train)

    p = sub.add_parser("validate", help="mAP of a trained run on a validation set", formatter_class=HelpFormatter)
    p.add_argument("--run", required=True, help="run directory of `miil csl train` (or `miil csl convert`)")
    p.add_argument("--which", default="best", choices=("best", "last"), help="which weights of the run")
    _add_data_arguments(p, train=False)
    p.add_argument("--batch-size", type=int, default=64, help="batch size")
    p.add_argument("--num-workers", type=int, default=0, help="data-loader workers")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--prf-threshold", type=float, default=None, help="threshold of CP..OF1 (default: the run's)")
    p.set_defaults(func=_validate)

    p = sub.add_parser("infer", help="predict the labels of images", formatter_class=HelpFormatter)
    p.add_argument("images", nargs="+", help="image files")
    p.add_argument("--run", required=True, help="run directory of `miil csl train` (or `miil csl convert`)")
    p.add_argument("--which", default="best", choices=("best", "last"), help="which weights of the run")
    p.add_argument("--threshold", type=float, default=0.5, help="report classes with probability >= threshold")
    p.add_argument(
        "--top-k",
        type=int,
        default=0,
        help="report at most k classes, the most likely first (0: no limit; with --threshold 0: exactly k)",
    )
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.set_defaults(func=_infer)

    p = sub.add_parser("recipes", help="list the recipes, or print one", formatter_class=HelpFormatter)
    p.add_argument("name", nargs="?", default=None, help="recipe to print")
    p.set_defaults(func=_recipes)

    p = sub.add_parser(
        "convert",
        help="convert an original CSL/ASL TResNet checkpoint into a run directory for validate / infer",
        formatter_class=HelpFormatter,
    )
    p.add_argument("checkpoint", help="original .pth file ({'model', 'num_classes', 'idx_to_class'} or a state dict)")
    p.add_argument("--model", default="tresnet_l", help="timm TResNet variant of the checkpoint")
    p.add_argument("--img-size", type=int, default=448, help="input size the checkpoint was trained at")
    p.add_argument("--model-args", default="", help="extra timm kwargs of the backbone as JSON")
    p.add_argument("--out", required=True, help="output directory (best.safetensors + best.json)")
    p.set_defaults(func=_convert)
