"""``miil stam``: recipes, train, validate, infer, convert, in the one ``miil`` dialect.

Paper: STAM (arXiv 2103.13915).

    miil stam recipes
    miil stam train --recipe stam-16 --data-format kinetics --data-root k400 \\
        --init-checkpoint vit_base_in21k.safetensors --out-dir runs/stam16
    miil stam validate --weights runs/stam16 --eval-views 3 --json stam16.json
    miil stam infer video.mp4 clips/ --weights runs/stam16 --top-k 5
    miil stam convert stam_16.pth stam_16.safetensors --recipe stam-16 --classes kinetics400.txt
    torchrun --nproc_per_node=8 -m miil.core.cli stam train ...   (DDP)

Unreadable videos (missing, empty, cut short, not a video, a folder where a file belongs) are skipped with a warning
naming the file and the reason, counted, listed in the ``--json`` reports, and make the command exit with status 3;
``--strict`` stops at the first one. This module imports no torch: the verbs' work lives in
:mod:`miil.stam.commands`, imported when a verb runs.
"""

from __future__ import annotations

import argparse

from miil.core import cli_args as ca
from miil.core.cli import HelpFormatter, package_main
from miil.core.config import add_dataclass_arguments

from .recipes import DATA_FORMATS, RECIPES

__all__ = ["DEFAULT_RECIPE", "main", "register"]

DEFAULT_RECIPE = "stam-16"


def _run(verb: str):
    def call(args: argparse.Namespace) -> int:
        from . import commands

        return getattr(commands, verb)(args)

    call.__name__ = verb
    return call


def _add_weights(p: argparse.ArgumentParser) -> None:
    ca.add_weights(
        p,
        help="a run folder (its best.safetensors), a .safetensors file in a run or written by convert, or an "
        "original STAM .pth (with --recipe)",
    )
    ca.add_recipe(p, RECIPES, None, help="the table row of an original .pth checkpoint given as --weights")
    ca.add_classes(p, help="text file with one class name per line (default: the names stored with the weights)")


def _add_clip_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("clip options (default: the weights' recipe)")
    g.add_argument("--sampling", default=None, choices=["fixed_fps", "segment", "uniform"], help="frame sampling")
    g.add_argument("--eval-views", type=int, metavar="N", default=None, help="temporal views per video")
    g.add_argument("--spatial-views", type=int, default=None, choices=[1, 3], help="crops per view")
    g.add_argument(
        "--num-frames", type=int, metavar="T", default=None, help="frames per clip (position embedding interpolated)"
    )
    g.add_argument("--frame-rate", type=float, metavar="FPS", default=None, help="fixed_fps sampling rate")
    g.add_argument("--short-video", default=None, choices=["pad", "loop"], help="fixed_fps clips past the end")
    g.add_argument("--backend", default=None, choices=["auto", "decord", "pyav"], help="video decoder")


def _add_eval_options(p: argparse.ArgumentParser, *, batch_size: int | None, progress: bool) -> None:
    ca.add_batch_size(
        p, default=batch_size, help="videos per batch per process" + ("" if batch_size else " (default: the run's)")
    )
    ca.add_num_workers(p)
    ca.add_device(p)
    ca.add_amp(p, dtype=True, default=None, help="mixed precision (default: the precision the run validated in)")
    ca.add_progress(p, default=progress)
    ca.add_strict(p)
    ca.add_json(p)


def register(parser: argparse.ArgumentParser) -> None:
    """Add the ``recipes``, ``train``, ``validate``, ``infer`` and ``convert`` verbs to ``miil stam``."""
    parser.description = "STAM video classification (arXiv 2103.13915)"
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    ca.add_recipes_verb(sub, RECIPES, help="list the paper's Kinetics-400 rows, or show one recipe's values")

    p = sub.add_parser("train", help="train STAM on videos (DDP under torchrun)", formatter_class=HelpFormatter)
    ca.add_recipe(p, RECIPES, DEFAULT_RECIPE)
    ca.add_data_args(p, DATA_FORMATS, default_format="kinetics", root_required=True)
    ca.add_strict(p)
    add_dataclass_arguments(
        p,
        RECIPES[DEFAULT_RECIPE],
        group="recipe fields (default: the chosen recipe's value; `miil stam recipes NAME` shows them)",
        only_if_given=True,
        recipe_name=DEFAULT_RECIPE,
    )
    p.set_defaults(func=_run("train"))

    p = sub.add_parser(
        "validate",
        help="top-1 / top-5 of trained weights, on the run's validation data by default",
        formatter_class=HelpFormatter,
    )
    _add_weights(p)
    g = p.add_argument_group("data (default: the run's)")
    ca.add_role(g, "data_format", choices=DATA_FORMATS, default=None, help="on-disk format of the dataset")
    ca.add_role(g, "data_root", default=None)
    ca.add_role(g, "val_split", default=None)
    ca.add_role(g, "val_labels", default=None)
    _add_eval_options(p, batch_size=None, progress=True)
    _add_clip_options(p)
    p.set_defaults(func=_run("validate"))

    p = sub.add_parser("infer", help="top classes of video files (folders are searched)", formatter_class=HelpFormatter)
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="video files or folders of videos")
    _add_weights(p)
    ca.add_top_k(p)
    _add_eval_options(p, batch_size=4, progress=False)
    _add_clip_options(p)
    p.set_defaults(func=_run("infer"))

    p = sub.add_parser(
        "convert", help="original STAM checkpoint -> safetensors + sidecar", formatter_class=HelpFormatter
    )
    p.add_argument("source", metavar="SOURCE", help="the original file (torch.save of {'model': state_dict})")
    p.add_argument("output", metavar="OUTPUT", help="the .safetensors file to write (a .json sidecar beside it)")
    ca.add_recipe(p, RECIPES, DEFAULT_RECIPE, help="the model's table row")
    ca.add_classes(p, help="text file with one class name per line, in label order")
    add_dataclass_arguments(
        p,
        RECIPES[DEFAULT_RECIPE],
        group="recipe fields (the model's architecture)",
        only_if_given=True,
        recipe_name=DEFAULT_RECIPE,
    )
    p.set_defaults(func=_run("convert"))


def main(argv: list[str] | None = None) -> int:
    """``python -m miil.stam.cli``: the ``miil stam`` command."""
    return package_main("stam", register, argv)


if __name__ == "__main__":
    raise SystemExit(main())
