"""``miil mldecoder``: recipes, train, validate, infer and convert, in the ``miil`` dialect (miil-core README).

Paper: "ML-Decoder: Scalable and Versatile Classification Head", Ridnik et al., 2021 (arXiv 2111.12933).

    miil mldecoder recipes
    miil mldecoder train --recipe coco-tresnet-l-448 --data-format coco --data-root coco/ --out-dir runs/coco
    miil mldecoder validate --weights runs/coco            (the run's validation data and precision)
    miil mldecoder infer --weights runs/coco photos/ --json predictions.json
    miil mldecoder convert ML_Decoder_TResNet_L.pth tresnet_l_coco.safetensors --model tresnet_v2_l
    torchrun --nproc_per_node=8 -m miil.core.cli mldecoder train ...   (DDP)

Building these parsers imports no torch: the verbs load their modules (:mod:`miil.mldecoder.commands`) when they run.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from miil.core import cli_args as ca
from miil.core.cli import HelpFormatter, package_main
from miil.core.config import add_dataclass_arguments

from .recipes import RECIPES
from .sources import DATA_FORMATS, DEFAULT_SPLITS

__all__ = ["DEFAULT_RECIPE", "main", "register"]

DEFAULT_RECIPE = "coco-tresnet-l-448"
_SPLITS = ", ".join(f"{fmt}: {train} / {val}" for fmt, (train, val) in DEFAULT_SPLITS.items())


def _verb(name: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        from . import commands

        return getattr(commands, name)(args)

    run.__name__ = name
    return run


def _zero_shot_args(group, *, classes: bool = False) -> None:
    group.add_argument(
        "--word-vectors",
        metavar="FILE",
        default=None,
        help="zero-shot: class word vectors (.pth / .safetensors / .npy), rows in the class order "
        "(default: the run's, else DATA_ROOT/wordvec_array.pth)",
    )
    group.add_argument(
        "--zsl-split",
        metavar="FILE",
        default=None,
        help="zero-shot: JSON with 'train class' / 'test class' names (default: the run's, else "
        "DATA_ROOT/benchmark_81_v0.json)",
    )
    if classes:
        ca.add_classes(group, help="zero-shot: the classes to predict, one name per line (with --word-vectors)")


def register(parser: argparse.ArgumentParser) -> None:
    """Add the ``miil mldecoder`` verbs to ``parser``."""
    parser.description = __doc__
    parser.formatter_class = HelpFormatter
    sub = parser.add_subparsers(dest="subcommand", metavar="VERB")

    ca.add_recipes_verb(sub, RECIPES)

    p = sub.add_parser(
        "train",
        help="train with a paper recipe (DDP under torchrun)",
        description="Train a recipe on a dataset in its distributed layout. The recipe and the data are checked "
        f"against each other before the first step. Default splits per format: {_SPLITS}.",
    )
    ca.add_recipe(p, RECIPES, DEFAULT_RECIPE)
    data = ca.add_data_args(p, DATA_FORMATS, default_format="coco")
    _zero_shot_args(data)
    ca.add_strict(p)
    add_dataclass_arguments(
        p,
        RECIPES[DEFAULT_RECIPE],
        group="recipe fields (default: the --recipe's value; `miil mldecoder recipes NAME` prints them)",
        only_if_given=True,
        recipe_name=DEFAULT_RECIPE,
    )
    p.set_defaults(func=_verb("train"))

    p = sub.add_parser(
        "validate",
        help="mAP (top-1, ZSL mAP) and per-class P/R/F1 of trained weights",
        description="Score trained weights on validation data, by default the run's own validation data in the "
        "run's precision, so the number equals the one recorded in best.json.",
    )
    ca.add_weights(p)
    data = ca.add_data_args(p, DATA_FORMATS, splits=("val",))
    p.set_defaults(data_format=None)
    for action in data._group_actions:
        if action.dest == "data_format":
            action.help = "on-disk format of the dataset (default: the run's; its data too, unless --data-root)"
    _zero_shot_args(data)
    ca.add_threshold(p, help="threshold of the P/R/F1 report (default: the run's, 0.75)")
    ca.add_img_size(p, help="input resolution (default: the run's)")
    ca.add_eval_args(p, batch_size=32)
    p.set_defaults(func=_verb("validate"))

    p = sub.add_parser("infer", help="labels of image files and folders")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files and folders (searched recursively)")
    ca.add_weights(p)
    ca.add_threshold(p, help="multi-label score threshold (default: the run's, 0.75)")
    ca.add_top_k(p, 5)
    _zero_shot_args(p, classes=True)
    ca.add_img_size(p, help="input resolution (default: the run's)")
    ca.add_eval_args(p, batch_size=16)
    p.set_defaults(func=_verb("infer"))

    p = sub.add_parser("convert", help="original / timm ML-Decoder checkpoint -> miil weights (+ .json sidecar)")
    p.add_argument("source", metavar="SOURCE", help="checkpoint: .pth with tensors only, or .safetensors")
    p.add_argument("output", metavar="OUTPUT", help=".safetensors file to write (a .json sidecar is written beside)")
    ca.add_model(p, required=True, help="timm backbone name, e.g. tresnet_v2_l or resnet50")
    ca.add_model_kwargs(p)
    p.add_argument("--layout", choices=("auto", "original", "timm"), default="auto", help="source key layout")
    p.add_argument("--key", metavar="NAME", default=None, help="entry of the checkpoint holding the state dict")
    p.add_argument("--num-heads", metavar="N", type=int, default=8, help="decoder heads (not stored in checkpoints)")
    p.add_argument("--task", choices=("multilabel", "singlelabel"), default="multilabel", help="non-zero-shot task")
    ca.add_classes(p)
    ca.add_img_size(p, 448, help="input resolution stored for validate / infer")
    p.add_argument(
        "--normalize", action=ca.BoolAction, default=True, help="store the timm model's mean/std normalisation"
    )
    p.add_argument(
        "--filter-backbone",
        action=ca.BoolAction,
        default=True,
        help="pass backbone keys through the timm family's checkpoint_filter_fn (InplaceABN TResNets need it)",
    )
    p.set_defaults(func=_verb("convert"))


def main(argv: Sequence[str] | None = None) -> int:
    """``miil mldecoder ...`` without the ``miil`` front end (also ``python -m miil.mldecoder.cli``)."""
    return package_main("mldecoder", register, argv)


if __name__ == "__main__":
    sys.exit(main())
