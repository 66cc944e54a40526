"""``miil in21k``: recipes, train, validate, infer, convert, dataset preprocessing and the class-tree tools.

Paper: "ImageNet-21K Pretraining for the Masses" (arXiv 2104.10972). The options follow the ``miil`` dialect (miil-core
README). ``--data-format imagenet21k-p`` (the default of the pretraining recipes) reads ``<root>/imagenet21k_train``
and ``<root>/imagenet21k_val``, what ``preprocess`` writes (or image-net.org's ``train`` / ``val``); ``folder`` (the
default of the transfer recipe) reads ``<root>/train`` and ``<root>/val``::

    miil in21k preprocess /data/fall11_extracted /data/in21k_p
    miil in21k train --data-root /data/in21k_p --out-dir runs/in21k
    torchrun --nproc_per_node=8 -m miil.core.cli in21k train --recipe semantic-kd-tresnet-m --data-root /data/in21k_p
    miil in21k validate --weights runs/in21k --data-root /data/in21k_p
    miil in21k infer photo.jpg --model tresnet_m.miil_in21k --pretrained
    miil in21k convert tresnet_m_miil_21k.pth tresnet_m_21k.safetensors --model tresnet_m
    miil in21k tree show dog  |  tree stats --tree winter21  |  tree build --classes wnids.txt --output tree.pth

This module imports no torch: the verbs import what they need when they run.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from pathlib import Path
from typing import Any

from miil.core import cli_args
from miil.core.cli import HelpFormatter
from miil.core.config import add_dataclass_arguments, pick_recipe
from miil.core.errors import UserError

from .recipes import RECIPES, SemanticPretrainRecipe, TransferRecipe

__all__ = ["main", "register"]

DEFAULT_RECIPE = "semantic-softmax-tresnet-m"
DATA_FORMATS = ("imagenet21k-p", "folder")
_PRETRAIN_FIELDS = {f.name for f in dataclasses.fields(SemanticPretrainRecipe)}
_TRANSFER_FIELDS = {f.name for f in dataclasses.fields(TransferRecipe)}


class _FromRecipe:
    """Default of a recipe option: the value comes from the chosen ``--recipe``."""

    def __repr__(self) -> str:
        return "from --recipe"

    __str__ = __repr__


FROM_RECIPE = _FromRecipe()


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
            raise UserError(f"--{name.replace('_', '-')} does not apply to recipe {args.recipe}")
        changes[name] = tuple(value) if isinstance(value, list) else value
    return dataclasses.replace(base, **changes)


def _split(data_format: str | None, part: str, given: str | None) -> str | None:
    """The split folder's name: the flag's, else ``<part>`` for ``folder`` (``imagenet21k-p`` searches)."""
    if given is not None:
        return given
    return part if data_format == "folder" else None


def _print_skipped(prog: str, skipped: list) -> None:
    from miil.core.evaluate import print_skipped_summary

    print_skipped_summary(skipped, prog=prog)


# ----------------------------------------------------------------------------------------------------------- train
def _train(args: argparse.Namespace) -> int:
    recipe = _resolve_recipe(args)
    if args.print_recipe:
        print(json.dumps(dataclasses.asdict(recipe), indent=1, default=str))
        return 0
    if not args.data_root:
        raise UserError("train needs --data-root (the folder with imagenet21k_train/ and imagenet21k_val/)")
    from miil.core.cli_args import print_plot_hint
    from miil.core.distributed import is_main_process
    from miil.core.evaluate import exit_status

    from .train import train

    data_format = args.data_format or ("folder" if isinstance(recipe, TransferRecipe) else "imagenet21k-p")
    result = train(
        recipe,
        args.data_root,
        train_split=_split(data_format, "train", args.train_split),
        val_split=_split(data_format, "val", args.val_split),
        model_kwargs=args.model_kwargs or None,
        strict=args.strict,
        recipe_name=args.recipe,
    )
    if is_main_process():
        if math.isnan(result.best_metric):
            print(f"trained {recipe.epochs} epochs (no validation folder) -> {result.out_dir}")
        else:
            print(
                f"best {recipe.eval_metric} {result.best_metric:.2f} (epoch {result.best_epoch + 1}, "
                f"{result.best_source}) -> {result.out_dir}"
            )
    _print_skipped("miil in21k train", result.skipped)
    print_plot_hint(result.out_dir)
    return exit_status(result.skipped)


# ---------------------------------------------------------------------------------------------- validate / infer
def _load(args: argparse.Namespace, device):
    from .evaluation import load_trained_model

    return load_trained_model(
        args.weights,
        model=args.model,
        pretrained=args.pretrained,
        tree=args.tree,
        model_kwargs=args.model_kwargs or None,
        device=device,
    )


def _precision(args: argparse.Namespace, trained, device) -> str:
    from miil.core.evaluate import choose_precision

    return choose_precision(trained.precision, amp=args.amp, amp_dtype=args.amp_dtype, device=device)


def _validate(args: argparse.Namespace) -> int:
    from miil.core.distributed import init_distributed, is_main_process
    from miil.core.evaluate import exit_status, write_json

    from .data import find_split_folder
    from .evaluation import validate_model

    device = init_distributed(args.device)
    trained = _load(args, device)
    val_dir = find_split_folder(args.data_root, "val", _split(args.data_format, "val", args.val_split))
    precision = _precision(args, trained, device)
    report = validate_model(
        trained,
        val_dir,
        device=device,
        precision=precision,
        batch_size=args.batch_size or trained.batch_size or 64,
        img_size=args.img_size,
        include_deepest=args.include_deepest,
        num_workers=args.num_workers,
        progress=args.progress,
        strict=args.strict,
    )
    if is_main_process():
        shown = {k: v for k, v in report.metrics.items() if not k.startswith("level")}
        parts = [f"images {report.samples}"] + [f"{k} {v:.2f}" for k, v in shown.items()] + [precision]
        print(" | ".join(parts))
        levels = {k: v for k, v in report.metrics.items() if k.startswith("level")}
        if levels:
            print("per level: " + ", ".join(f"{k.removesuffix('_top1')} {v:.2f}" for k, v in levels.items()))
        if args.json is not None:
            write_json(args.json, {**report.as_dict(), "weights": trained.source, "val_dir": str(val_dir)})
            print(f"report -> {args.json}")
    _print_skipped("miil in21k validate", report.skipped)
    return exit_status(report.skipped)


def _infer(args: argparse.Namespace) -> int:
    from miil.core.distributed import init_distributed, is_main_process
    from miil.core.evaluate import exit_status, write_json

    from .evaluation import predict_images

    device = init_distributed(args.device)
    trained = _load(args, device)
    precision = _precision(args, trained, device)
    rows, report = predict_images(
        trained,
        args.images,
        device=device,
        precision=precision,
        batch_size=args.batch_size,
        img_size=args.img_size,
        threshold=args.threshold,
        top_k=args.top_k,
        num_workers=args.num_workers,
        progress=args.progress,
        strict=args.strict,
    )
    if is_main_process():
        for row in rows:
            if trained.tree is not None:
                labels = " > ".join(
                    f"{x['name']} ({x['wnid']}, level {x['level']}, {x['prob']:.3f})" for x in row["labels"]
                )
            else:
                labels = ", ".join(f"{x['class']} {x['prob']:.3f}" for x in row["labels"])
            print(f"{row['image']}: {labels or f'no level above {args.threshold}'}")
        if args.json is not None:
            write_json(args.json, {**report.as_dict(), "weights": trained.source, "predictions": rows})
            print(f"report -> {args.json}")
    _print_skipped("miil in21k infer", report.skipped)
    return exit_status(report.skipped)


# --------------------------------------------------------------------------------------------------------- convert
def _convert(args: argparse.Namespace) -> int:
    from timm.data import resolve_data_config

    from miil.core.backbones import create_backbone
    from miil.core.io import atomic_write_text, save_safetensors

    from .models import convert_original_checkpoint
    from .tree import VARIANTS, load_tree

    out = Path(args.output)
    if out.suffix.lower() != ".safetensors":
        raise UserError(f"OUTPUT must end in .safetensors, got {out}")
    tree = load_tree(args.tree)
    kwargs = args.model_kwargs or {}
    net = create_backbone(args.model, num_classes=len(tree), **kwargs)
    net.load_state_dict(convert_original_checkpoint(args.source, net), strict=True)
    cfg = resolve_data_config({}, model=net)
    save_safetensors(net.state_dict(), out, metadata={"source": Path(args.source).name})
    sidecar = {
        "config": {"model": args.model, "img_size": int(cfg["input_size"][-1])},
        "run_info": {
            "package": "miil-in21k",
            "task": "pretrain",
            "tree": args.tree if args.tree in VARIANTS else str(Path(args.tree).resolve()),
            "num_classes": len(tree),
            "mean": list(cfg["mean"]),
            "std": list(cfg["std"]),
            "model_kwargs": kwargs,
            "converted_from": str(args.source),
        },
        "eval_precision": "fp32",
    }
    atomic_write_text(out.with_suffix(".json"), json.dumps(sidecar, indent=2) + "\n")
    print(f"converted {args.source} -> {out} (+ {out.with_suffix('.json').name}), {len(tree)} classes")
    return 0


# ------------------------------------------------------------------------------------------------------ preprocess
def _preprocess(args: argparse.Namespace) -> int:
    from miil.core.evaluate import exit_status

    from .preprocess import REPORT, preprocess_imagenet21k

    report = preprocess_imagenet21k(
        args.source,
        args.output,
        variant=None if args.variant == "none" else args.variant,
        resize=args.resize,
        size=args.size,
        small_class_threshold=args.small_class_threshold,
        val_per_class=args.val_per_class,
        num_workers=args.num_workers,
        progress=args.progress,
        strict=args.strict,
    )
    counts, files = report["counts"], report["files"]
    print(
        f"kept {counts['classes']} classes ({len(report['dropped_classes'])} dropped), train {counts['train']}, "
        f"val {counts['val']} images; resized {files['resized']}, copied {files['copied']}, already done "
        f"{files['exists']}, unreadable {len(report['skipped'])}; report: {Path(args.output) / REPORT}"
    )
    check = report["check"]
    if check.get("variant"):
        if check["matches"]:
            print(f"counts and classes match the published {check['variant']} numbers {check['expected']}")
        else:
            message = (
                f"counts {check['found']} differ from the published {check['variant']} numbers {check['expected']}; "
                f"classes missing vs the shipped tree: {len(check['classes_missing_vs_tree'])}, extra: "
                f"{len(check['classes_extra_vs_tree'])} (details in the report)"
            )
            if args.require_match:
                raise UserError(message + "; --require-match")
            print(f"warning: {message}", file=sys.stderr)
    if report["skipped"]:
        first = report["skipped"][0]
        print(
            f"miil in21k preprocess: skipped {len(report['skipped'])} unreadable image(s) (first: {first['file']}: "
            f"{first['reason']}); they are listed in the report; --strict stops at the first one"
        )
    return exit_status(len(report["skipped"]))


# ------------------------------------------------------------------------------------------------------------ tree
def _tree_show(args: argparse.Namespace) -> int:
    from .tree import load_tree

    tree = load_tree(args.tree)
    for key in args.classes:
        try:
            info = tree.describe(key)
        except KeyError as err:
            raise UserError(str(err.args[0]) if err.args else f"unknown class {key!r}") from None
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

    classes = Path(args.classes)
    if not classes.is_file():
        raise UserError(f"--classes {classes} does not exist or is not a file (WordNet ids, one per line)")
    wnids = [w.strip() for w in classes.read_text().split() if w.strip()]
    if args.sort:
        wnids = sorted(wnids)
    tree = SemanticTree.from_wordnet(wnids, args.wordnet, path_rule=args.path_rule)
    path = tree.save(args.output)
    print(f"{tree!r} -> {path}; classes per level {tree.level_histogram()}")
    return 0


def _tree_convert(args: argparse.Namespace) -> int:
    from .tree import load_tree

    tree = load_tree(args.source)
    path = tree.save(args.output)
    print(f"{tree!r} -> {path}")
    return 0


# -------------------------------------------------------------------------------------------------------- parsers
_TREE_HELP = "fall11 | winter21 | a tree file (.pth, .pkl, .json, .json.gz)"


def _add_eval_options(p: argparse.ArgumentParser) -> None:
    cli_args.add_weights(
        p,
        required=False,
        help="a run folder of `miil in21k train`, a .safetensors with its .json, or weights for --model "
        "(a released *_miil_21k.pth)",
    )
    cli_args.add_model(p, help="timm model name, for weights without a sidecar or with --pretrained")
    cli_args.add_role(p, "pretrained", help="timm's weights of --model (hub download), instead of --weights")
    cli_args.add_model_kwargs(p, default=None)
    p.add_argument("--tree", default=None, metavar="TREE", help=f"{_TREE_HELP} (default: the run's, or fall11)")
    cli_args.add_img_size(p, help="squish size (default: the run's / the model's)")
    cli_args.add_num_workers(p)
    cli_args.add_device(p)
    cli_args.add_amp(p, dtype=True, default=None, help="autocast (default: the precision the run validated in)")
    cli_args.add_progress(p)
    cli_args.add_strict(p)


def _add_tree_verbs(sub) -> argparse.ArgumentParser:
    tree = sub.add_parser("tree", help="class-tree tools", formatter_class=HelpFormatter)
    tsub = tree.add_subparsers(dest="tree_command", metavar="TREE_COMMAND")
    t = tsub.add_parser("show", help="name, level, ancestors, children of classes", formatter_class=HelpFormatter)
    t.add_argument("classes", nargs="+", metavar="CLASS", help="class ids (n02084071), indices or names (dog)")
    t.add_argument("--tree", default="fall11", metavar="TREE", help=_TREE_HELP)
    t.set_defaults(func=_tree_show)
    t = tsub.add_parser("stats", help="classes per level and the level weights", formatter_class=HelpFormatter)
    t.add_argument("--tree", default="fall11", metavar="TREE", help=_TREE_HELP)
    t.add_argument("--include-deepest", action=cli_args.BoolAction, help="count the deepest level as trained")
    t.set_defaults(func=_tree_stats)
    t = tsub.add_parser("build", help="a tree for a list of WordNet ids", formatter_class=HelpFormatter)
    cli_args.add_classes(t, required=True, help="text file of WordNet ids (one per line, or whitespace separated)")
    cli_args.add_output(t, required=True, help="the tree file: .pth (original format), .json or .json.gz")
    t.add_argument("--wordnet", default=None, metavar="DIR", help="WordNet 3.0 folder with data.noun (default: search)")
    t.add_argument("--path-rule", default="shortest", choices=("shortest", "first", "longest"), help="hypernym chain")
    t.add_argument("--sort", action=cli_args.BoolAction, help="sort the ids (ImageFolder's class order)")
    t.set_defaults(func=_tree_build)
    t = tsub.add_parser("convert", help="convert between tree formats", formatter_class=HelpFormatter)
    t.add_argument("source", metavar="SOURCE", help=_TREE_HELP)
    t.add_argument("output", metavar="OUTPUT", help="output: .pth (original format), .json or .json.gz")
    t.set_defaults(func=_tree_convert)

    def tree_help(_: argparse.Namespace) -> int:
        tree.print_help()
        return 2

    tree.set_defaults(func=tree_help)
    return tree


def register(parser: argparse.ArgumentParser) -> None:
    """Add the ``miil in21k`` verbs to ``parser``."""
    parser.description = __doc__
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    sub = parser.add_subparsers(dest="subcommand", metavar="COMMAND")
    cli_args.add_recipes_verb(sub, RECIPES)

    p = sub.add_parser("train", help="train a recipe (pretraining or transfer)", formatter_class=HelpFormatter)
    cli_args.add_recipe(p, RECIPES, default=DEFAULT_RECIPE)
    cli_args.add_data_args(p, DATA_FORMATS, labels=False)
    p.set_defaults(data_format=None)  # the recipe's: imagenet21k-p for pretraining, folder for transfer
    cli_args.add_model_kwargs(p)
    cli_args.add_strict(p)
    p.add_argument("--print-recipe", action=cli_args.BoolAction, help="print the resolved recipe and exit")
    _add_recipe_options(p)
    p.set_defaults(func=_train)

    p = sub.add_parser("validate", help="semantic accuracy on a validation folder", formatter_class=HelpFormatter)
    _add_eval_options(p)
    cli_args.add_data_args(p, DATA_FORMATS, splits=("val",), labels=False, root_required=True)
    cli_args.add_batch_size(p, default=None, help="images per batch (default: the run's validation batch)")
    p.add_argument(
        "--include-deepest",
        action=cli_args.BoolAction,
        default=None,
        help="score the deepest level (default: the run's)",
    )
    cli_args.add_json(p, help="write metrics, counts and skipped inputs to FILE")
    p.set_defaults(func=_validate)

    p = sub.add_parser("infer", help="hierarchical labels of images", formatter_class=HelpFormatter)
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files")
    _add_eval_options(p)
    cli_args.add_batch_size(p, default=32, help="images per batch")
    cli_args.add_threshold(p, default=0.5, help="keep a level's top class above this probability")
    cli_args.add_top_k(p, default=5, help="classes per image for models without a tree")
    cli_args.add_json(p, help="write the predictions and skipped inputs to FILE")
    p.set_defaults(func=_infer)

    p = sub.add_parser(
        "convert", help="a released *_miil_21k.pth -> safetensors + sidecar", formatter_class=HelpFormatter
    )
    p.add_argument("source", metavar="SOURCE", help="the released checkpoint (e.g. tresnet_m_miil_21k.pth)")
    p.add_argument("output", metavar="OUTPUT", help="output .safetensors (a .json sidecar is written beside it)")
    cli_args.add_model(p, required=True, help="the timm model of the checkpoint (tresnet_m, vit_base_patch16_224...)")
    cli_args.add_model_kwargs(p)
    p.add_argument("--tree", default="fall11", metavar="TREE", help=f"the classes of its head: {_TREE_HELP}")
    p.set_defaults(func=_convert)

    p = sub.add_parser(
        "preprocess", help="build ImageNet-21K-P from an extracted release", formatter_class=HelpFormatter
    )
    p.add_argument("source", metavar="SOURCE", help="folder of class folders (<wnid>/<image>)")
    p.add_argument(
        "output", metavar="OUTPUT", help="output folder (gets imagenet21k_train/, imagenet21k_val/, a report)"
    )
    p.add_argument("--variant", default="fall11", choices=("fall11", "winter21", "none"), help="published counts")
    p.add_argument("--resize", default="squish", choices=("squish", "short-edge"), help="squish 224 or short edge 256")
    p.add_argument(
        "--size", type=int, default=None, metavar="N", help="target size (default 224 squish, 256 short-edge)"
    )
    p.add_argument("--small-class-threshold", type=int, default=500, metavar="N", help="drop classes with at most N")
    p.add_argument("--val-per-class", type=int, default=50, metavar="N", help="first files of each class that form val")
    cli_args.add_num_workers(p, default=None, help="resize threads (default: the CPU count)")
    p.add_argument(
        "--require-match", action=cli_args.BoolAction, help="an error when the counts differ from the published ones"
    )
    cli_args.add_progress(p)
    cli_args.add_strict(p)
    p.set_defaults(func=_preprocess)

    _add_tree_verbs(sub)


def main(argv: list[str] | None = None) -> int:
    """``python -m miil.in21k.cli``: the same as ``miil in21k``."""
    from miil.core.cli import package_main

    return package_main("in21k", register, argv)


if __name__ == "__main__":
    sys.exit(main())
