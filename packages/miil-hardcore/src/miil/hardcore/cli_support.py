"""What the ``miil hardcore`` and ``miil iqnas`` verbs share between parsing and running: dataset splits, the run's
image size and precision, lazy verb functions and one-line warnings for unreadable inputs.

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
import sys
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from miil.core.errors import UserError

__all__ = [
    "DATA_FORMATS",
    "lazy_verb",
    "one_line_warnings",
    "run_precision",
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


def run_precision(amp: bool | None, stored: str | None, device_type: str) -> str:
    """The evaluation precision: the run's (``eval_precision`` of its sidecar) unless ``--amp`` says otherwise.

    Args:
        amp: ``--amp`` (``None`` when not given).
        stored: The precision the run validated in (``fp32`` when unknown).
        device_type: ``"cuda"`` or ``"cpu"``: ``--amp`` means fp16 on CUDA, bf16 on the CPU.
    """
    if amp is None:
        return stored or "fp32"
    if not amp:
        return "fp32"
    return "fp16" if device_type == "cuda" else "bf16"


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


@contextmanager
def one_line_warnings() -> Iterator[None]:
    """Show each skipped unreadable input as one line, ``warning: skipping unreadable file F: reason``, on stderr.

    Python's default format adds the source line of the ``warnings.warn`` call (a second line per file); the line is
    written above a running tqdm bar. Other warnings keep their format. DataLoader workers started by fork inherit
    the setting.
    """
    from tqdm.auto import tqdm

    from miil.core.data import UnreadableFileWarning

    shown = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, UnreadableFileWarning):
            tqdm.write(f"warning: {message}", file=sys.stderr)  # above a running progress bar, not inside it
        else:
            shown(message, category, filename, lineno, file, line)

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = shown
