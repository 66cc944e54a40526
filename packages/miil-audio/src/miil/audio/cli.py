"""``miil audio``: recipes, train, validate, infer, convert, in the one ``miil`` dialect.

Paper: Gazneli et al., 2022 (arXiv 2204.11479). ``train`` runs a recipe (every recipe field is an option; the
resolved recipe is written into the run folder) through the core engine, so ``torchrun --nproc-per-node N -m
miil.core.cli audio train ...`` trains with DDP. ``validate`` scores a run (on its own validation data unless told
otherwise, in the precision its training validated in), ``infer`` prints the top classes of audio files and folders,
``convert`` turns an original checkpoint into safetensors. Unreadable inputs are skipped with a warning naming the
file and the reason, counted, listed in ``--json`` reports, and make the command exit with status 3; ``--strict``
stops at the first one.

    miil audio recipes
    miil audio train --recipe esc50-eat-s --data-root ESC-50-master --val-split 1 --out-dir runs/esc50/fold1
    miil audio validate --weights runs/esc50/fold1 --json fold1.json
    miil audio infer street.wav recordings/ --weights runs/esc50/fold1 --top-k 5
    miil audio convert best_model.pt eat_s.safetensors

This module imports no torch: the verbs' work lives in :mod:`miil.audio.commands`, imported when a verb runs.
"""

from __future__ import annotations

import argparse

from miil.core import cli_args as ca
from miil.core.cli import HelpFormatter, package_main
from miil.core.config import add_dataclass_arguments

from .recipes import DATA_FORMATS, RECIPES

__all__ = ["DEFAULT_RECIPE", "main", "register"]

DEFAULT_RECIPE = "esc50-eat-s"


def _run(verb: str):
    def call(args: argparse.Namespace) -> int:
        from . import commands

        return getattr(commands, verb)(args)

    call.__name__ = verb
    return call


def _add_model_weights(p: argparse.ArgumentParser) -> None:
    ca.add_weights(
        p,
        help="a run folder (its best.safetensors), a .safetensors file in a run or written by convert, or an "
        "original best_model.pt / chkpnt.pt",
    )
    p.add_argument(
        "--num-heads",
        type=int,
        metavar="N",
        default=None,
        help="attention heads of an original checkpoint (default: its args.yml, else the published sizes)",
    )


def _add_eval_options(p: argparse.ArgumentParser, *, progress: bool) -> None:
    ca.add_device(p)
    ca.add_amp(p, dtype=True, default=None, help="mixed precision (default: the precision the run validated in)")
    ca.add_num_workers(p)
    ca.add_progress(p, default=progress)
    ca.add_strict(p)
    ca.add_json(p)


def register(parser: argparse.ArgumentParser) -> None:
    """Add the ``miil audio`` verbs to ``parser``."""
    parser.description = "EAT: end-to-end audio classification from raw waveforms (arXiv 2204.11479)."
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    ca.add_recipes_verb(sub, RECIPES, help="list the paper's recipes, or show one recipe's values")

    p = sub.add_parser("train", help="train EAT with a recipe (DDP under torchrun)", formatter_class=HelpFormatter)
    ca.add_recipe(p, RECIPES, DEFAULT_RECIPE)
    add_dataclass_arguments(
        p,
        RECIPES[DEFAULT_RECIPE],
        group="recipe fields (default: the chosen recipe's value; `miil audio recipes NAME` shows them)",
        only_if_given=True,
        recipe_name=DEFAULT_RECIPE,
    )
    p.set_defaults(func=_run("train"))

    p = sub.add_parser(
        "validate",
        help="accuracy / mAP of trained weights, on the run's validation data by default",
        formatter_class=HelpFormatter,
    )
    _add_model_weights(p)
    g = p.add_argument_group("data (default: the run's)")
    ca.add_role(g, "data_format", choices=DATA_FORMATS, default=None, help="on-disk format of the dataset")
    ca.add_role(g, "data_root", default=None)
    ca.add_role(g, "val_split", default=None, help="held-out fold (ESC-50 1-5, UrbanSound8K 1-10), list or folder")
    ca.add_role(g, "val_labels", default=None)
    ca.add_batch_size(p, default=None, help="batch size per process (default: the run's validation batch)")
    _add_eval_options(p, progress=True)
    p.set_defaults(func=_run("validate"))

    p = sub.add_parser("infer", help="top classes of audio files (folders are searched)", formatter_class=HelpFormatter)
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="audio files or folders (any format, rate and length)")
    _add_model_weights(p)
    ca.add_classes(p, help="text file with one class name per line, for weights that carry no names")
    ca.add_top_k(p)
    _add_eval_options(p, progress=False)
    p.set_defaults(func=_run("infer"))

    p = sub.add_parser(
        "convert", help="original EAT checkpoint -> safetensors (strict key map)", formatter_class=HelpFormatter
    )
    p.add_argument("source", metavar="SOURCE", help="original best_model.pt or chkpnt.pt")
    p.add_argument("output", metavar="OUTPUT", help="the .safetensors file to write (a .json sidecar beside it)")
    p.add_argument(
        "--num-heads", type=int, metavar="N", default=None, help="attention heads (default: args.yml, published sizes)"
    )
    p.set_defaults(func=_run("convert"))


def main(argv: list[str] | None = None) -> int:
    """``python -m miil.audio.cli``: the ``miil audio`` command."""
    return package_main("audio", register, argv)


if __name__ == "__main__":
    raise SystemExit(main())
