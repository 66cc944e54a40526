"""What to do with image files that cannot be decoded: skip them with a warning, or stop with a clear error.

Large scraped multi-label sets (OpenImages, the ML-Decoder/ASL training data) always contain a few missing,
truncated or corrupt files. ``UnreadablePolicy`` decodes an image fully (so truncation is caught at load time, not
somewhere inside a transform) and either raises ``UnreadableFileError`` (strict) or warns, records the path and
returns ``None``. ``skip_unreadable_collate`` then drops those ``None`` samples from a batch.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from typing import Any

from PIL import Image
from torch.utils.data import default_collate

__all__ = [
    "UnreadableFileError",
    "UnreadableFileWarning",
    "UnreadablePolicy",
    "skip_unreadable_collate",
]


class UnreadableFileError(OSError):
    """An image file is missing or could not be decoded.

    Packages reading other media subclass it and set ``kind`` ("audio", "video") so that the message names the
    right kind of file; ``except UnreadableFileError`` catches all of them.

    Args:
        path: The file that could not be read.
        error: The underlying exception.
    """

    kind = "image"

    def __init__(self, path: str | os.PathLike, error: BaseException | None = None):
        self.path = str(path)
        self.error = error
        if error is None:
            # Re-raised from a DataLoader worker, torch passes the whole formatted message as the only argument.
            super().__init__(self.path)
            return
        super().__init__(
            f"cannot read {self.kind} file {self.path}: {type(error).__name__}: {error}. "
            "Fix or remove the file, or use strict=False to skip unreadable files with a warning."
        )

    def __reduce__(self):
        # OSError pickles its args, not our (path, error) signature; DataLoader workers re-raise pickled errors.
        return type(self), (self.path, self.error)


class UnreadableFileWarning(UserWarning):
    """Emitted when an unreadable image file is skipped."""


class UnreadablePolicy:
    """Load images fully decoded, skipping (with a warning) or rejecting the ones that cannot be read.

    The counters (``count``, ``skipped``) live in the process that loads the image: with DataLoader workers each
    worker updates its own copy, so read them from the dataset in the main process only for single-process loading.

    Args:
        strict: Raise ``UnreadableFileError`` instead of warning and returning ``None``.
    """

    def __init__(self, *, strict: bool = False):
        self.strict = bool(strict)
        self.count = 0
        self.skipped: list[str] = []

    def load_image(self, path: str | os.PathLike, *, mode: str | None = "RGB") -> Image.Image | None:
        """Open, fully decode and convert one image.

        Args:
            path: Image file to read.
            mode: PIL mode to convert to; ``None`` keeps the file's own mode.

        Returns:
            The decoded image, or ``None`` when the file is unreadable and the policy is not strict.
        """
        try:
            with Image.open(path) as img:
                img.load()  # force a full decode so truncated data fails here
                out = img.convert(mode) if mode is not None and img.mode != mode else img.copy()
        except Exception as err:  # PIL raises OSError, SyntaxError, ValueError, EOFError, zlib/struct errors, ...
            if self.strict:
                raise UnreadableFileError(path, err) from err
            self.count += 1
            self.skipped.append(str(path))
            warnings.warn(f"skipping unreadable file {path}: {err}", UnreadableFileWarning, stacklevel=2)
            return None
        return out

    def reset(self) -> None:
        """Forget the files skipped so far."""
        self.count = 0
        self.skipped = []

    def __repr__(self) -> str:
        return f"{type(self).__name__}(strict={self.strict}, count={self.count})"


def skip_unreadable_collate(batch: Sequence[Any]) -> Any:
    """``default_collate`` after dropping the ``None`` samples that datasets return for unreadable files.

    Args:
        batch: Samples as returned by the dataset.

    Returns:
        The collated batch, or ``None`` when every sample in it was unreadable.
    """
    kept = [sample for sample in batch if sample is not None]
    if not kept:
        return None
    return default_collate(kept)
