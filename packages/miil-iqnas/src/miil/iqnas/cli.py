"""``miil iqnas ...``: IQNAS on a miil-hardcore supernet and latency table from the command line, in the ``miil``
dialect.

Paper: IQNAS / BINAS (arXiv 2110.12399). The steps, after ``miil hardcore lut`` and ``miil hardcore train-supernet``
(``imagenet/`` holds ``train/<class>/<image>`` and ``val/<class>/<image>``)::

    miil iqnas estimate --weights runs/hardcore/multipath --data-root imagenet/ --output estimator.json
    miil iqnas search --estimator estimator.json --lut lut.json --latency-ms 40 [--params-m 5] --output arch.json \\
        [--weights runs/hardcore/multipath --export child.safetensors]
    miil iqnas explain --estimator estimator.json --output contributions.png --json contributions.json
    miil iqnas train --init-checkpoint runs/hardcore/multipath --arch arch.json --data-root imagenet/ --out-dir runs/ft
    miil iqnas validate --weights runs/ft --data-root imagenet/
    miil iqnas infer --weights child.safetensors photo.jpg

``train``, ``validate`` and ``infer`` are miil-hardcore's ``finetune``, ``validate`` and ``infer`` (the paper fine-tunes
the chosen network exactly as HardCoRe-NAS does), with the same flags. ``estimate`` runs under ``torchrun``
(accuracies are summed over processes). This module builds the parsers only (no torch); :mod:`.commands` runs them.
"""

from __future__ import annotations

import argparse

from miil.core import cli_args as ca
from miil.core.cli import HelpFormatter
from miil.hardcore import cli as hardcore_cli
from miil.hardcore.cli_support import DATA_FORMATS, lazy_verb

from .recipes import ALL_RECIPES, ESTIMATE_RECIPES, SEARCH_RECIPES

__all__ = ["register"]

_COMMANDS = "miil.iqnas.commands"


def _verb(sub, name: str, help: str) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=help, description=help, formatter_class=HelpFormatter)
    p.set_defaults(func=lazy_verb(_COMMANDS, name))
    return p


def register(parser: argparse.ArgumentParser) -> None:
    """Add the ``miil iqnas`` subcommands to ``parser``."""
    parser.description = "IQNAS / BINAS (arXiv 2110.12399): measured accuracy estimator, exact integer program."
    sub = parser.add_subparsers(dest="subcommand", metavar="SUBCOMMAND")
    ca.add_recipes_verb(sub, ALL_RECIPES)

    p = _verb(sub, "estimate", "measure the accuracy estimator on a supernet")
    ca.add_weights(p, metavar="RUN", help="the multipath supernet run of miil hardcore train-supernet")
    ca.add_data_args(p, DATA_FORMATS, splits=("train",), labels=False, root_required=True)
    ca.add_role(p, "output", default="estimator.json", help="the estimator JSON to write")
    ca.add_device(p)
    ca.add_progress(p)
    hardcore_cli.add_recipe_overrides(p, ESTIMATE_RECIPES, "binas-imagenet")

    p = _verb(sub, "search", "exact search under latency / params / FLOPs limits")
    p.add_argument("--estimator", required=True, metavar="FILE", help="estimator JSON from `miil iqnas estimate`")
    p.add_argument("--lut", required=True, metavar="FILE", help="latency table JSON from `miil hardcore lut`")
    p.add_argument("--num-classes", type=int, default=1000, metavar="N", help="classifier outputs (params / FLOPs)")
    ca.add_role(p, "output", default="arch.json", help="result JSON (arch_def, its space, predicted accuracy, ...)")
    ca.add_weights(p, required=False, metavar="RUN", help="with --export: the supernet run the child inherits from")
    p.add_argument("--export", default=None, metavar="FILE", help="also write the child (.safetensors + .json)")
    ca.add_progress(p)
    hardcore_cli.add_recipe_overrides(p, SEARCH_RECIPES, "binas-b")

    p = _verb(sub, "explain", "contribution of each design choice")
    p.add_argument("--estimator", required=True, metavar="FILE", help="estimator JSON")
    p.add_argument("--reference", default=None, choices=("base", "depth"), help="override the estimator's reference")
    ca.add_output(p, help="also draw the contributions figure into FILE (PNG)")
    ca.add_json(p, help="also write the contribution table and the insights to FILE")

    # Training, validating and using the chosen network are miil-hardcore's child commands (finetune is "train").
    hardcore_cli.add_child_commands(sub, names={"finetune": "train", "validate": "validate", "infer": "infer"})
