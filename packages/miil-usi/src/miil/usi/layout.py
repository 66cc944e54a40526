"""The dataset layout the USI commands read: an ImageNet-style root with one folder per split.

Paper: USI (arXiv 2204.03475) trains and validates on ImageNet-1K as timm and torchvision read it,
``ROOT/train/<wnid>/<image>`` and ``ROOT/val/<wnid>/<image>`` (the validation images moved into class folders, as
``miil.core.miniature.make_imagenet`` writes them). ``--data-root ROOT`` names the root, ``--train-split`` /
``--val-split`` the split folders. Imports no torch: the command-line parsers use it.
"""

from __future__ import annotations

import os
from pathlib import Path

from miil.core.errors import UserError

__all__ = ["DATA_FORMATS", "split_folder"]

# `folder`: ROOT/<split>/<class>/<image>, the ImageNet layout.
DATA_FORMATS = ("folder",)


def split_folder(
    data_root: str | os.PathLike | None,
    split: str | None,
    *,
    default: str,
    flag: str,
    required: bool = True,
) -> Path | None:
    """The folder of one split: ``ROOT/<split>`` (``split`` may also be an absolute folder).

    Args:
        data_root: ``--data-root``.
        split: ``--train-split`` / ``--val-split`` as given (``None``: the default).
        default: The format's folder name for the split ("train", "val").
        flag: The split's option, for messages.
        required: Raise when the folder is absent; otherwise an absent *default* split gives ``None`` (a split the
            user named must exist).

    Raises:
        UserError: ``--data-root`` is missing or not a folder, or the split folder does not exist.
    """
    if data_root is None:
        raise UserError(f"give --data-root ROOT (the dataset folder holding {default}/<class>/<image>)")
    root = Path(data_root)
    if not root.is_dir():
        raise UserError(f"--data-root {root} does not exist or is not a folder")
    name = split or default
    folder = root / name
    if folder.is_dir():
        return folder
    if split is None and not required:
        return None
    raise UserError(
        f"{folder} is not a folder: --data-root expects ROOT/{name}/<class>/<image> (the ImageNet layout); "
        f"give {flag} NAME to read another folder of the root"
    )
