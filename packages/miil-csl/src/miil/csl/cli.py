"""``miil csl``: recipes, train (both stages), validate, infer and convert, in the ``miil`` dialect (core README).

Paper: "Multi-label Classification with Partial Annotations using Class-aware Selective Loss" (arXiv 2110.10955).

    miil csl recipes
    miil csl train --recipe coco-fpc1000-csl --data-root coco/ --out-dir runs/csl
    miil csl validate --weights runs/csl                     (the run's validation data and precision)
    miil csl infer --weights runs/csl photos/ --json predictions.json
    miil csl convert Open_ImagesV6_TRresNet_L_448.pth asl_openimages.safetensors --model tresnet_l
    torchrun --nproc_per_node=8 -m miil.core.cli csl train ...   (DDP)

``train`` with a selective recipe and no ``--prior-path`` runs the paper's two stages in one command: a temporary
``ignore`` model (``OUT_DIR/stage1_ignore``), its class prior (``OUT_DIR/prior.csv``), then the target model.
Building these parsers imports no torch: the verbs load :mod:`miil.csl.commands` when they run.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from miil.core import cli_args as ca
from miil.core.cli import HelpFormatter, package_main
from miil.core.config import add_dataclass_arguments

from .recipes import DEFAULT_RECIPE, RECIPES, describe_recipe
from .sources import DATA_FORMATS, DEFAULT_SPLITS

__all__ = ["main", "register"]

_SPLITS = ", ".join(f"{fmt}: {train} / {val}" for fmt, (train, val) in DEFAULT_SPLITS.items() if fmt != "mosaic")


def _verb(name: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        from . import commands

        return getattr(commands, name)(args)

    run.__name__ = name
    return run


def _data_args(p: argparse.ArgumentParser, splits: tuple[str, ...], fmt_help: str) -> None:
    group = ca.add_data_args(p, DATA_FORMATS, splits=splits)
    p.set_defaults(data_format=None)
    for action in group._group_actions:
        if action.dest == "data_format":
            action.help = fmt_help
    ca.add_classes(
        group,
        help="OpenImages class list: trainable MIDs .txt, class descriptions .csv or mid_to_classes.pth "
        "(default: the one in --data-root)",
    )


def register(parser: argparse.ArgumentParser) -> None:
    """Add the ``miil csl`` verbs to ``parser``."""
    parser.description = __doc__
    parser.formatter_class = HelpFormatter
    sub = parser.add_subparsers(dest="subcommand", metavar="VERB")

    ca.add_recipes_verb(sub, RECIPES, describe=describe_recipe)

    p = sub.add_parser(
        "train",
        help="train a recipe (selective: temporary ignore model -> class prior -> target model)",
        description="Train a recipe on a dataset in its distributed layout; a selective recipe without --prior-path "
        "first trains the temporary ignore model and estimates the class prior (one command, also under torchrun). "
        f"The recipe and the data are checked against each other first. Default splits per format: {_SPLITS}.",
    )
    ca.add_recipe(p, RECIPES, DEFAULT_RECIPE)
    _data_args(p, ("train", "val"), "on-disk format of the dataset (default: the recipe's data_format)")
    ca.add_strict(p)
    add_dataclass_arguments(
        p,
        RECIPES[DEFAULT_RECIPE],
        exclude=("data_format",),
        group="recipe fields (default: the --recipe's value; `miil csl recipes NAME` prints them)",
        only_if_given=True,
        recipe_name=DEFAULT_RECIPE,
    )
    p.set_defaults(func=_verb("train"))

    p = sub.add_parser(
        "validate",
        help="mAP (partial-label mAP on partial labels) and CP..OF1 of trained weights",
        description="Score trained weights on validation data, by default the run's own validation data in the "
        "run's precision, so the number equals the one recorded in best.json.",
    )
    ca.add_weights(p)
    _data_args(p, ("val",), "on-disk format of the dataset (default: the run's; its data too, unless --data-root)")
    ca.add_threshold(p, help="probability threshold of CP/CR/CF1/OP/OR/OF1 (default: the run's prf_threshold)")
    ca.add_eval_args(p, batch_size=64)
    p.set_defaults(func=_verb("validate"))

    p = sub.add_parser("infer", help="labels of image files and folders")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files and folders (searched recursively)")
    ca.add_weights(p)
    ca.add_threshold(p, 0.5, help="report classes with a probability of at least this")
    ca.add_top_k(p, 5, help="most classes reported per image, the most likely first (0: no limit)")
    ca.add_eval_args(p, batch_size=32)
    p.set_defaults(func=_verb("infer"))

    p = sub.add_parser(
        "convert",
        help="original CSL / ASL TResNet checkpoint -> miil weights (+ .json sidecar) for validate / infer",
    )
    p.add_argument(
        "source", metavar="SOURCE", help="original .pth ({'model', 'num_classes', 'idx_to_class'} or weights)"
    )
    p.add_argument("output", metavar="OUTPUT", help=".safetensors file to write (a .json sidecar is written beside)")
    ca.add_model(p, "tresnet_l", help="timm TResNet variant of the checkpoint")
    ca.add_model_kwargs(p)
    ca.add_img_size(p, 448, help="input resolution the checkpoint was trained at")
    p.set_defaults(func=_verb("convert"))


def main(argv: Sequence[str] | None = None) -> int:
    """``miil csl ...`` without the ``miil`` front end (also ``python -m miil.csl.cli``)."""
    return package_main("csl", register, argv)


if __name__ == "__main__":
    sys.exit(main())
