"""``miil in21k``: train / validate / infer, dataset preprocessing and the class-tree tools.

miil in21k train --recipe semantic_softmax_tresnet_m --data-dir /data/imagenet21k_p
torchrun --nproc_per_node=8 -m miil.core.cli in21k train --recipe semantic_kd_tresnet_m --data-dir ...
miil in21k validate --run-dir runs/in21k --data-dir /data/imagenet21k_p
miil in21k validate --model tresnet_m.miil_in21k --pretrained --data-dir /data/imagenet21k_p
miil in21k infer photo.jpg --run-dir runs/in21k
miil in21k preprocess /data/fall11_extracted /data/imagenet21k_p --variant fall11
miil in21k tree show dog           |  tree stats --tree winter21
miil in21k tree build --classes wnids.txt --out my_tree.pth   |  tree convert fall11 imagenet21k_miil_tree.pth
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from miil.core.cli import HelpFormatter
from miil.core.config import add_dataclass_arguments, pick_recipe

from .recipes import RECIPES, SemanticPretrainRecipe, TransferRecipe

__all__ = ["register"]


class _FromRecipe:
    """Default of a recipe option: the value comes from the chosen ``--recipe``."""

    def __repr__(self) -> str:
        return "from --recipe"

    __str__ = __repr__


FROM_RECIPE = _FromRecipe()
_PRETRAIN_FIELDS = {f.name for f in dataclasses.fields(SemanticPretrainRecipe)}
_TRANSFER_FIELDS = {f.name for f in dataclasses.fields(TransferRecipe)}


def _add_recipe_options(parser: argparse.ArgumentParser) -> None:
    """One option per field of both recipe types, defaulting to 'from --recipe'."""
    add_dataclass_arguments(parser, SemanticPretrainRecipe, group="recipe options (defaults come from --recipe)")
    shared = tuple(_TRANSFER_FIELDS & _PRETRAIN_FIELDS)
    add_dataclass_arguments(parser, TransferRecipe, exclude=shared, group="transfer recipe options")
    parser.set_defaults(**{name: FROM_RECIPE for name in _PRETRAIN_FIELDS | _TRANSFER_FIELDS})


def _resolve_recipe(args: argparse.Namespace):
    """The ``--recipe`` with the options the user gave."""
    base = pick_recipe(RECIPES, args.recipe)
    own = {f.name for f in dataclasses.fields(base)}
    changes: dict[str, Any] = {}
    for name in sorted(_PRETRAIN_FIELDS | _TRANSFER_FIELDS):
        value = getattr(args, name, FROM_RECIPE)
        if value is FROM_RECIPE:
            continue
        if name not in own:
            raise ValueError(f"--{name.replace('_', '-')} does not apply to recipe {args.recipe}")
        changes[name] = tuple(value) if isinstance(value, list) else value
    return dataclasses.replace(base, **changes)


def _train(args: argparse.Namespace) -> int:
    from .train import train

    recipe = _resolve_recipe(args)
    if args.print_recipe:
        print(json.dumps(dataclasses.asdict(recipe), indent=1, default=str))
        return 0
    if not args.data_dir:
        raise ValueError("train needs --data-dir")
    result = train(recipe, args.data_dir, recipe_name=args.recipe)
    print(
        json.dumps({"out_dir": str(result.out_dir), "best_metric": result.best_metric, "best_epoch": result.best_epoch})
    )
    return 0


def _load_for_eval(args: argparse.Namespace):
    from .train import load_trained_model

    if args.run_dir is None and args.model is None:
        raise ValueError(f"{args.subcommand}: pass --run-dir, or --model with --checkpoint / --pretrained")
    return load_trained_model(
        run_dir=args.run_dir,
        which=args.which,
        model=args.model,
        checkpoint=args.checkpoint,
        pretrained=args.pretrained,
        tree=args.tree,
    )


def _validate(args: argparse.Namespace) -> int:
    from .data import find_split_folder
    from .train import validate, validate_classifier

    if args.data_dir is None and args.val_dir is None:
        raise ValueError("validate: pass --data-dir or --val-dir")
    model, tree, info = _load_for_eval(args)
    val_dir = find_split_folder(args.data_dir, "val") if args.val_dir is None else Path(args.val_dir)
    common = dict(
        img_size=args.img_size or info["img_size"],
        mean=info["mean"],
        std=info["std"],
        batch_size=args.batch_size,
        num_workers=args.num_workers,
        device=args.device,
    )
    if tree is None:
        metrics = validate_classifier(model, val_dir, info["classes"], **common)
    else:
        metrics = validate(model, tree, val_dir, include_deepest=args.include_deepest, **common)
    print(json.dumps(metrics))
    return 0


def _infer(args: argparse.Namespace) -> int:
    from .train import predict_images

    model, tree, info = _load_for_eval(args)
    results = predict_images(
        model,
        args.images,
        tree=tree,
        classes=info.get("classes"),
        img_size=args.img_size or info["img_size"],
        mean=info["mean"],
        std=info["std"],
        threshold=args.threshold,
        top_k=args.top_k,
        batch_size=args.batch_size,
        device=args.device,
    )
    for row in results:
        print(json.dumps(row))
    return 0


def _preprocess(args: argparse.Namespace) -> int:
    from .preprocess import REPORT, preprocess_imagenet21k

    report = preprocess_imagenet21k(
        args.src,
        args.out,
        variant=None if args.variant == "none" else args.variant,
        resize=args.resize,
        size=args.size,
        small_class_threshold=args.small_class_threshold,
        val_per_class=args.val_per_class,
        workers=args.workers,
        progress=not args.no_progress,
    )
    counts, files = report["counts"], report["files"]
    print(
        f"kept {counts['classes']} classes ({len(report['dropped_classes'])} dropped), train {counts['train']}, "
        f"val {counts['val']} images; resized {files['resized']}, copied {files['copied']}, already done "
        f"{files['exists']}, unreadable {len(report['unreadable'])}; report: {Path(args.out) / REPORT}"
    )
    check = report["check"]
    if check.get("variant"):
        if check["matches"]:
            print(f"counts and classes match the published {check['variant']} numbers {check['expected']}")
        else:
            print(
                f"WARNING: counts {check['found']} differ from the published {check['variant']} numbers "
                f"{check['expected']}; classes missing vs the shipped tree: {len(check['classes_missing_vs_tree'])}, "
                f"extra: {len(check['classes_extra_vs_tree'])} (details in the report)",
                file=sys.stderr,
            )
            return 3 if args.require_match else 0
    return 0


def _tree_show(args: argparse.Namespace) -> int:
    from .tree import load_tree

    tree = load_tree(args.tree)
    for key in args.classes:
        info = tree.describe(key)
        row = dataclasses.asdict(info)
        row["children_names"] = [tree.names[tree.index(c)] for c in info.children]
        print(json.dumps(row, ensure_ascii=False))
    return 0


def _tree_stats(args: argparse.Namespace) -> int:
    from .hierarchy import SemanticHierarchy
    from .tree import load_tree

    tree = load_tree(args.tree)
    hierarchy = SemanticHierarchy(tree, include_deepest=args.include_deepest)
    weights = dict(zip(hierarchy.depths, hierarchy.level_weights.tolist()))
    print(f"{tree!r}  meta={json.dumps(tree.meta)}")
    print(f"{'level':>5} {'classes':>8} {'at/below':>9} {'leaves':>7} {'parents':>8} {'trained':>8} {'weight':>7}")
    for row in tree.statistics():
        d = row["level"]
        w = f"{weights[d]:.3f}" if d in weights else "-"
        print(
            f"{d:>5} {row['classes']:>8} {row['classes_at_or_below']:>9} {row['leaves']:>7} {row['with_children']:>8} "
            f"{'yes' if d in weights else 'no':>8} {w:>7}"
        )
    return 0


def _tree_build(args: argparse.Namespace) -> int:
    from .tree import SemanticTree

    wnids = [w.strip() for w in Path(args.classes).read_text().split() if w.strip()]
    if args.sort:
        wnids = sorted(wnids)
    tree = SemanticTree.from_wordnet(wnids, args.wordnet, path_rule=args.path_rule)
    path = tree.save(args.out)
    print(f"{tree!r} -> {path}; classes per level {tree.level_histogram()}")
    return 0


def _tree_convert(args: argparse.Namespace) -> int:
    from .tree import load_tree

    tree = load_tree(args.src)
    path = tree.save(args.dst)
    print(f"{tree!r} -> {path}")
    return 0


def _eval_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run-dir", default=None, help="a 'miil in21k train' run directory")
    p.add_argument("--which", default="best", choices=("best", "last"), help="weights of the run")
    p.add_argument("--model", default=None, help="timm model name (instead of --run-dir)")
    p.add_argument("--checkpoint", default=None, help="weights for --model (ours, timm's or an original .pth)")
    p.add_argument("--pretrained", action="store_true", help="timm's weights for --model (hub download)")
    p.add_argument("--tree", default=None, help="fall11 | winter21 | tree file (default: the run's, or fall11)")
    p.add_argument("--img-size", type=int, default=None, help="input size (default: the run's / model's)")
    p.add_argument("--batch-size", type=int, default=64, help="images per batch")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")


def _friendly(func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Report bad input (unknown class, missing file, invalid value) as one line instead of a traceback."""

    def run(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except (KeyError, ValueError, FileNotFoundError) as err:
            message = err.args[0] if isinstance(err, KeyError) and err.args else err
            print(f"miil in21k: error: {message}", file=sys.stderr)
            return 2

    return run


def register(parser: argparse.ArgumentParser) -> None:
    """Add the ``miil in21k`` subcommands to ``parser``."""
    parser.description = __doc__
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    sub = parser.add_subparsers(dest="subcommand", metavar="SUBCOMMAND")

    p = sub.add_parser("train", help="train a recipe (pretraining or transfer)", formatter_class=HelpFormatter)
    p.add_argument("--recipe", default="semantic_softmax_tresnet_m", choices=sorted(RECIPES), help="paper setting")
    p.add_argument("--data-dir", default=None, help="imagenet21k_train/ + imagenet21k_val/ (or train/ + val/)")
    p.add_argument("--print-recipe", action="store_true", help="print the resolved recipe and exit")
    _add_recipe_options(p)
    p.set_defaults(func=_friendly(_train))

    p = sub.add_parser("validate", help="semantic accuracy on a validation folder", formatter_class=HelpFormatter)
    _eval_options(p)
    p.add_argument("--data-dir", default=None, help="dataset root with imagenet21k_val/ or val/")
    p.add_argument("--val-dir", default=None, help="the validation folder itself (instead of --data-dir)")
    p.add_argument("--num-workers", type=int, default=0, help="data-loader workers")
    p.add_argument("--include-deepest", action="store_true", help="also score the deepest level")
    p.set_defaults(func=_friendly(_validate))

    p = sub.add_parser("infer", help="hierarchical labels of images", formatter_class=HelpFormatter)
    p.add_argument("images", nargs="+", help="image files")
    _eval_options(p)
    p.add_argument("--threshold", type=float, default=0.5, help="keep a level's top class above this probability")
    p.add_argument("--top-k", type=int, default=5, help="classes per image for models without a tree")
    p.set_defaults(func=_friendly(_infer))

    p = sub.add_parser(
        "preprocess", help="build ImageNet-21K-P from an extracted release", formatter_class=HelpFormatter
    )
    p.add_argument("src", help="folder of class folders (<wnid>/<image>)")
    p.add_argument("out", help="output folder (gets imagenet21k_train/, imagenet21k_val/, the report)")
    p.add_argument("--variant", default="fall11", choices=("fall11", "winter21", "none"), help="published counts")
    p.add_argument("--resize", default="squish", choices=("squish", "short-edge"), help="squish 224 or short edge 256")
    p.add_argument("--size", type=int, default=None, help="target size (default 224 squish, 256 short-edge)")
    p.add_argument("--small-class-threshold", type=int, default=500, help="drop classes with at most this many")
    p.add_argument("--val-per-class", type=int, default=50, help="first files of each class that form val")
    p.add_argument("--workers", type=int, default=None, help="resize threads (default: CPU count)")
    p.add_argument("--require-match", action="store_true", help="exit 3 when the counts differ from the published")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_friendly(_preprocess))

    tree = sub.add_parser("tree", help="class-tree tools", formatter_class=HelpFormatter)
    tsub = tree.add_subparsers(dest="tree_command", metavar="TREE_COMMAND")
    t = tsub.add_parser("show", help="name, level, ancestors, children of classes", formatter_class=HelpFormatter)
    t.add_argument("classes", nargs="+", help="class ids (n02084071), indices or names (dog)")
    t.add_argument("--tree", default="fall11", help="fall11 | winter21 | tree file")
    t.set_defaults(func=_friendly(_tree_show))
    t = tsub.add_parser("stats", help="classes per level and the level weights", formatter_class=HelpFormatter)
    t.add_argument("--tree", default="fall11", help="fall11 | winter21 | tree file")
    t.add_argument("--include-deepest", action="store_true", help="count the deepest level as trained")
    t.set_defaults(func=_friendly(_tree_stats))
    t = tsub.add_parser("build", help="a tree for a list of WordNet ids", formatter_class=HelpFormatter)
    t.add_argument("--classes", required=True, help="text file of WordNet ids (whitespace separated)")
    t.add_argument("--out", required=True, help="output: .pth (original format), .json or .json.gz")
    t.add_argument("--wordnet", default=None, help="WordNet 3.0 folder with data.noun (default: search)")
    t.add_argument("--path-rule", default="shortest", choices=("shortest", "first", "longest"), help="hypernym chain")
    t.add_argument("--sort", action="store_true", help="sort the ids (ImageFolder's class order)")
    t.set_defaults(func=_friendly(_tree_build))
    t = tsub.add_parser("convert", help="convert between tree formats", formatter_class=HelpFormatter)
    t.add_argument("src", help="fall11 | winter21 | tree file")
    t.add_argument("dst", help="output: .pth (original format), .json or .json.gz")
    t.set_defaults(func=_friendly(_tree_convert))

    def tree_help(_: argparse.Namespace) -> int:
        tree.print_help()
        return 2

    tree.set_defaults(func=tree_help)
