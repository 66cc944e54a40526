"""What the ``miil hardcore`` and ``miil iqnas`` verbs share between parsing and running: dataset splits, the run's
image size, the latency target as a fraction of the table's range and lazy verb functions (skipped-input warnings
and the evaluation precision are miil-core's: ``miil.core.cli.run_command``, ``miil.core.evaluate.choose_precision``).

Not a paper section: the command-line dialect of miil-core's README applied to HardCoRe-NAS (arXiv 2102.11646) data,
which is an ImageNet-style folder ``<data-root>/<split>/<class>/<image>`` (``miil.core.miniature.make_imagenet``
writes that layout; the defaults ``--train-split train`` and ``--val-split val`` read it without further flags).
This module imports no torch at module level, so parsers that use it stay cheap.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from miil.core.errors import UserError

__all__ = [
    "DATA_FORMATS",
    "add_latency_fraction",
    "latency_target",
    "lazy_verb",
    "split_folder",
    "with_run_img_size",
]

# The one on-disk format the HardCoRe and IQNAS commands read: ImageNet-style class folders.
DATA_FORMATS = ("folder",)


def lazy_verb(module: str, name: str) -> Callable[[argparse.Namespace], int]:
    """A verb function that imports ``module`` (torch, timm...) only when the verb runs, not when parsers are built."""

    def run(args: argparse.Namespace) -> int:
        return getattr(importlib.import_module(module), name)(args)

    run.__name__ = name
    return run


def split_folder(args: argparse.Namespace, split: str, *, required: bool = True) -> Path | None:
    """The folder of one split: ``--data-root`` / ``--<split>-split`` (default: the split's own name).

    Args:
        args: Parsed options with ``data_root`` and ``<split>_split``.
        split: ``"train"`` or ``"val"``.
        required: Without it, a missing default split (``<root>/val``) means "no such split" (``None``); a split the
            user named must exist either way.

    Raises:
        UserError: The root or a required / named split is not a folder; the message names the layout and the flags.
    """
    root = Path(args.data_root)
    if not root.is_dir():
        raise UserError(f"--data-root {root} is not a folder: give the dataset folder that holds train/ and val/")
    named = getattr(args, f"{split}_split", None)
    folder = root / (named or split)
    if folder.is_dir():
        return folder
    if required or named is not None:
        raise UserError(
            f"no {split} split at {folder}: --data-root holds {split}/<class>/<image> (the ImageNet folder layout, "
            f"as miil.core.miniature.make_imagenet writes it); name another sub-folder with --{split}-split"
        )
    return None


def with_run_img_size(recipe: Any, args: argparse.Namespace, info: Mapping[str, Any], run: str | os.PathLike):
    """``recipe`` with the image size of the trained run ``info`` came from, unless ``--img-size`` was given.

    A supernet trained at 16 px is searched, estimated and fine-tuned at 16 px; the recipe's own size (224 px for
    the ImageNet recipes) applies only when the run does not record one (issue: search ignored it, 210 s vs 30 s).

    Args:
        recipe: The resolved recipe (has ``img_size``).
        args: The parsed command line (recipe fields are present only when given).
        info: The run's sidecar ``run_info`` (or a search result's ``{"img_size": ...}``).
        run: The run's path, for the message.
    """
    if "img_size" in vars(args) or "img_size" not in info:
        return recipe
    size = int(info["img_size"])
    if size != recipe.img_size and int(os.environ.get("RANK", "0")) == 0:
        print(f"image size {size} px, as {run} records it (--img-size overrides)")
    return dataclasses.replace(recipe, img_size=size)


def latency_target(recipe: Any, args: argparse.Namespace, table: Any) -> tuple[Any, float | None]:
    """``recipe`` with its ``latency_ms`` taken from ``--latency-fraction`` of ``table``'s range, when given.

    ``search --latency-fraction F`` sets the target to ``lightest + F (heaviest - lightest)`` of the latency table
    (:meth:`miil.hardcore.LatencyTable.latency_at`), the paper's targets placed on a device's own range.

    Args:
        recipe: The resolved search recipe (has ``latency_ms``).
        args: The parsed command line (``latency_fraction``; recipe fields are present only when given).
        table: The latency table the search runs on.

    Returns:
        The recipe (its ``latency_ms`` replaced when a fraction was given) and the fraction (``None`` when not given).

    Raises:
        UserError: Both ``--latency-ms`` and ``--latency-fraction`` were given, or the fraction is outside [0, 1].
    """
    fraction = getattr(args, "latency_fraction", None)
    if fraction is None:
        return recipe, None
    if "latency_ms" in vars(args):
        raise UserError(
            "give either --latency-ms (ms per sample) or --latency-fraction (of the table's range), not both"
        )
    if not 0.0 <= fraction <= 1.0:
        raise UserError(
            f"--latency-fraction must be in [0, 1] (0: the lightest network, 1: the heaviest), got {fraction}"
        )
    target = table.latency_at(fraction)
    if int(os.environ.get("RANK", "0")) == 0:
        print(
            f"latency target {target:.4f} ms: {fraction:g} of the way from the table's lightest to its heaviest network"
        )
    return dataclasses.replace(recipe, latency_ms=target), float(fraction)


def add_latency_fraction(p: argparse.ArgumentParser) -> None:
    """``--latency-fraction F``: the search target as a fraction of the latency table's range (see above)."""
    p.add_argument(
        "--latency-fraction",
        type=float,
        default=None,
        metavar="F",
        help="latency target as a fraction of the table's range, lightest + F (heaviest - lightest), in place of "
        "--latency-ms (the paper's targets are ms on an Intel Xeon; this places a target on your device's range)",
    )
