"""The inputs of an ``infer`` verb: files and folders named on the command line, read under the bad-input contract.

Not part of a paper. ``infer INPUT ...`` takes image files and folders (searched recursively for images). Every named
path that is not a folder of images is kept as one input, whether it exists or not, so that a missing, empty,
truncated or wrong-type file, or a folder where an image file belongs, is skipped with its reason (one warning line,
counted in the summary and the ``--json`` report) instead of stopping the command; ``strict`` makes the first one fatal.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from ..errors import UserError
from .datasets import IMAGE_EXTENSIONS
from .unreadable import Skipped, UnreadablePolicy

__all__ = ["ImageFilesDataset", "list_inputs"]


def _found_in(folder: Path, extensions: Sequence[str]) -> list[Path]:
    found = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        found += [
            Path(dirpath) / f
            for f in filenames
            if not f.startswith(".") and os.path.splitext(f)[1].lower() in extensions
        ]
    return sorted(found)


def list_inputs(inputs: Iterable[str | os.PathLike], extensions: Sequence[str] = IMAGE_EXTENSIONS) -> list[Path]:
    """The input files of ``infer``: folders are searched (recursively, sorted); any other path is one input.

    A folder whose name has one of ``extensions`` (``photo.jpg/``) stands where a file belongs and is kept as an input
    (its reader reports it). Paths that do not exist are kept too: the reader reports them as missing.

    Args:
        inputs: Paths from the command line.
        extensions: File extensions (lower case, with the dot) of the media the verb reads.

    Raises:
        UserError: No inputs, or a folder that holds no file with one of ``extensions``.
    """
    files: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir() and path.suffix.lower() not in extensions:
            found = _found_in(path, extensions)
            if not found:
                raise UserError(f"input folder {path} holds no files with the extensions {', '.join(extensions)}")
            files += found
        else:
            files.append(path)
    if not files:
        raise UserError("no inputs: name files or folders to read")
    return files


class ImageFilesDataset(Dataset):
    """Image files for inference: a sample is ``(image, index)``, or a :class:`Skipped` record for an unreadable one.

    Args:
        paths: The image files (e.g. from :func:`list_inputs`).
        transform: Applied to the RGB PIL image.
        strict: Raise :class:`~miil.core.data.UnreadableFileError` at the first unreadable file instead.
    """

    def __init__(self, paths: Sequence[str | os.PathLike], transform: Callable | None = None, *, strict: bool = False):
        self.paths = [str(p) for p in paths]
        self.transform = transform
        self.policy = UnreadablePolicy(strict=strict)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[Any, int] | Skipped:
        img = self.policy.load_image(self.paths[index])
        if img is None:
            return self.policy.skipped_sample(self.paths[index])
        return (self.transform(img) if self.transform is not None else img), index
