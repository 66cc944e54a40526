"""The ``--data-format`` names of ``miil album`` and how a format's root, splits and label files are found.

Paper: PETA (arXiv 2109.12499), section 4: ML-CUFED, CUFED and PEC. The formats (layouts in
:mod:`miil.album.data.layouts`):

* ``ml-cufed``: ``<root>/images/<album_id>/``, ``<root>/event_type.json`` (several events per album) and
  ``<root>/image_importance.json`` (human importance per photo), as ML-CUFED is distributed;
* ``cufed``: the same layout, one event per album (the single-label CUFED);
* ``pec``: ``<root>/<event>/<album_id>/`` (PEC's event folders);
* ``folder``: the same event folders for any other collection (PETA's ``albums/``).

A split (``--train-split`` / ``--val-split``) is ``all``, a split file listing one album per line, or a name ``S``
meaning ``<root>/S_split.txt`` (the miniatures of :mod:`miil.album.miniature` write ``train_split.txt`` and
``test_split.txt``). Without one, training reads ``train_split.txt`` when the root has it (else every album) and
validates on ``val_split.txt`` or ``test_split.txt`` when the root has one (else nothing); ``validate`` reads the same
validation split (else every album). Mistakes in the choice of format, split or label file are user errors
that name the flag to change, raised before anything is trained. This module imports no torch (the parsers read
:data:`DATA_FORMATS`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from miil.core.errors import UserError

if TYPE_CHECKING:
    from .data.layouts import AlbumRecord

__all__ = [
    "CUFED_FORMATS",
    "DATA_FORMATS",
    "EVENT_FOLDER_FORMATS",
    "default_importance_file",
    "read_albums",
    "resolve_split",
]

CUFED_FORMATS = ("ml-cufed", "cufed")
EVENT_FOLDER_FORMATS = ("pec", "folder")
DATA_FORMATS = (*CUFED_FORMATS, *EVENT_FOLDER_FORMATS)
_DEFAULT_SPLITS = {"train": ("train",), "val": ("val", "test")}
LABELS_FILE = "event_type.json"
IMPORTANCE_FILE = "image_importance.json"


def _split_file(root: Path, name: str) -> Path:
    return root / f"{name}_split.txt"


def resolve_split(root: str | os.PathLike, split: str | None, part: str) -> Path | None:
    """The split file a ``--<part>-split`` value means, or ``None`` for every album.

    Args:
        root: The dataset root.
        split: The flag's value (``None``: the default of ``part``).
        part: ``"train"`` or ``"val"``.

    Returns:
        The split file, or ``None`` (every album; for the default validation split of training: no validation).
    """
    root = Path(root)
    if split is None:
        for name in _DEFAULT_SPLITS[part]:
            if _split_file(root, name).is_file():
                return _split_file(root, name)
        return None
    if split == "all":
        return None
    for candidate in (Path(split), _split_file(root, split)):
        if candidate.is_file():
            return candidate
    raise UserError(
        f"--{part}-split {split!r}: neither a split file nor a split name of {root} (no {_split_file(root, split)}); "
        "give a file listing one album per line, a name S for <root>/S_split.txt, or 'all'"
    )


def _check_layout(root: Path, data_format: str) -> None:
    if not root.is_dir():
        raise UserError(f"--data-root {root} does not exist or is not a folder")
    has_images = (root / "images").is_dir()
    if data_format in CUFED_FORMATS and not has_images:
        raise UserError(
            f"{root} has no images/ folder, which --data-format {data_format} expects (<root>/images/<album_id>/ and "
            f"<root>/{LABELS_FILE}); for albums in event folders (<root>/<event>/<album_id>/) use --data-format pec "
            "or folder"
        )
    if data_format in EVENT_FOLDER_FORMATS and has_images and (root / LABELS_FILE).is_file():
        raise UserError(
            f"{root} holds images/ and {LABELS_FILE}, the ML-CUFED / CUFED layout, not event folders: use "
            "--data-format ml-cufed (or cufed)"
        )


def _labels_path(root: Path, labels: str | None, part: str) -> Path:
    path = Path(labels) if labels else root / LABELS_FILE
    if not path.is_file():
        where = f"--{part}-labels {labels}" if labels else f"the labels file {path}"
        raise UserError(
            f"{where} does not exist; ML-CUFED and CUFED keep {LABELS_FILE} ({{album_id: [event, ...]}}) at the root: "
            f"pass --{part}-labels FILE if yours is elsewhere"
        )
    return path


def read_albums(
    data_format: str,
    root: str | os.PathLike,
    *,
    split: Path | None,
    labels: str | None = None,
    part: str = "train",
) -> list[AlbumRecord]:
    """The albums of one split of a dataset in a ``--data-format``.

    Args:
        data_format: One of :data:`DATA_FORMATS`.
        root: The dataset root.
        split: The split file (from :func:`resolve_split`) or ``None`` for every album.
        labels: ``--<part>-labels``: the album-to-events JSON (CUFED formats: default ``<root>/event_type.json``;
            event folders: optional, replaces the folder's event by a list).
        part: ``"train"`` or ``"val"``, for the flags named in messages.

    Raises:
        UserError: The root does not have the format's layout, a label file is missing, an album of ``cufed`` has
            several events, or the split names albums the root does not have.
    """
    from .data.layouts import load_event_labels, read_album_list, read_cufed, read_event_folders

    if data_format not in DATA_FORMATS:
        raise UserError(f"unknown --data-format {data_format!r}; known: {', '.join(DATA_FORMATS)}")
    root = Path(root)
    _check_layout(root, data_format)
    try:
        albums: Sequence[str] | None = read_album_list(split) if split is not None else None
        if data_format in CUFED_FORMATS:
            records = read_cufed(root, labels_file=_labels_path(root, labels, part).resolve(), albums=albums)
        else:
            mapping = load_event_labels(labels) if labels else None
            records = read_event_folders(root, labels=mapping, albums=albums)
    except (KeyError, FileNotFoundError, ValueError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
        raise UserError(f"{message} (--data-format {data_format}, --data-root {root})") from None
    if data_format == "cufed":
        several = [r for r in records if len(r.labels) > 1]
        if several:
            first = several[0]
            raise UserError(
                f"album {first.album_id} has {len(first.labels)} events ({', '.join(first.labels)}) but --data-format "
                f"cufed is single-label CUFED ({len(several)} such albums): use --data-format ml-cufed"
            )
    return records


def default_importance_file(root: str | os.PathLike | None) -> Path | None:
    """``<root>/image_importance.json`` (ML-CUFED's human importance scores) when the root has it."""
    if root is None:
        return None
    path = Path(root) / IMPORTANCE_FILE
    return path if path.is_file() else None
