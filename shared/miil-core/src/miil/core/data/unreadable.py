"""What to do with image files that cannot be decoded: skip them with a warning, or stop with a clear error.

Large scraped multi-label sets (OpenImages, the ML-Decoder/ASL training data) always contain a few missing,
truncated or corrupt files. ``UnreadablePolicy`` decodes an image fully (so truncation is caught at load time, not
somewhere inside a transform) and either raises ``UnreadableFileError`` (strict) or warns, records the path and
returns ``None``; a dataset then returns ``policy.skipped_sample(path)`` (a :class:`Skipped` record naming the file and
the reason) in place of the sample. ``skip_unreadable_collate`` drops those records (and plain ``None`` samples) from a
batch; :class:`SkippingCollate` also hands the records to the loop, which counts them and lists them in its report.
A sample made of several files (an album of photos) that lost some of them but is still usable comes as
:class:`PartlyRead`: the sample counts, and its skipped files are reported like any other.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from PIL import Image
from torch.utils.data import default_collate

__all__ = [
    "PartlyRead",
    "Skipped",
    "SkippingCollate",
    "UnreadableFileError",
    "UnreadableFileWarning",
    "UnreadablePolicy",
    "describe_read_error",
    "skip_unreadable_collate",
]


@dataclass(frozen=True)
class Skipped:
    """An input that could not be read and was skipped: the file and why (returned by a dataset instead of a sample).

    Args:
        file: The path of the input.
        reason: Short reason: "missing", "empty file", "a folder, not a file", "truncated: ...", "not a valid ...".
    """

    file: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


@dataclass(frozen=True)
class PartlyRead:
    """A sample read from several files, some of which could not be read and were left out of it.

    A dataset returns it when the sample is still usable without those files (an album without its broken photos);
    the collates unwrap ``sample`` and report ``skipped``. ``sample`` may itself be a :class:`Skipped` record when
    nothing usable was left.

    Args:
        sample: The sample built from the readable files (or a :class:`Skipped` record).
        skipped: One record per file left out.
    """

    sample: Any
    skipped: tuple[Skipped, ...] = ()


def _unwrap(samples: Sequence[Any]) -> tuple[list[Any], list[Skipped]]:
    """Samples with :class:`PartlyRead` unwrapped, and the skipped files those carried."""
    out: list[Any] = []
    carried: list[Skipped] = []
    for sample in samples:
        if isinstance(sample, PartlyRead):
            carried += sample.skipped
            sample = sample.sample
        out.append(sample)
    return out, carried


def describe_read_error(path: str | os.PathLike, error: BaseException | None = None, kind: str = "image") -> str:
    """A short, specific reason why ``path`` could not be read, from the file system first, then the decoder's error.

    Args:
        path: The input that failed.
        error: The exception the reader raised, if any.
        kind: What the file should be ("image", "audio", "video"), for the generic case.
    """
    p = Path(path)
    if not p.exists():
        return "missing" if not p.is_symlink() else "missing (a dangling symbolic link)"
    if p.is_dir():
        return "a folder, not a file"
    try:
        if p.stat().st_size == 0:
            return "empty file"
    except OSError as err:
        return f"cannot be opened ({err.strerror or err})"
    text = f"{error}" if error is not None else ""
    if "truncat" in text.lower() or isinstance(error, EOFError):
        return f"truncated ({text})" if text else "truncated"
    if error is None:
        return f"not a readable {kind} file"
    return f"not a readable {kind} file ({type(error).__name__}: {text})"


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
            "Fix or remove the file, or run without --strict (or with --strict false; strict=False in Python) to skip "
            "unreadable files with a warning."
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
        self.reasons: dict[str, str] = {}

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
            self.record(path, describe_read_error(path, err, "image"))
            return None
        return out

    def record(self, path: str | os.PathLike, reason: str) -> None:
        """Count a skipped input and warn once, in one line naming the file and the reason (non-strict policies)."""
        self.count += 1
        self.skipped.append(str(path))
        self.reasons[str(path)] = reason
        warnings.warn(f"skipping unreadable file {path}: {reason}", UnreadableFileWarning, stacklevel=3)

    def skipped_sample(self, path: str | os.PathLike) -> Skipped:
        """The record a dataset returns in place of the sample of ``path`` after a load returned ``None``."""
        return Skipped(str(path), self.reasons.get(str(path), "unreadable"))

    def reset(self) -> None:
        """Forget the files skipped so far."""
        self.count = 0
        self.skipped = []
        self.reasons = {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(strict={self.strict}, count={self.count})"


def _is_skipped(sample: Any) -> bool:
    return sample is None or isinstance(sample, Skipped)


def skip_unreadable_collate(batch: Sequence[Any]) -> Any:
    """``default_collate`` after dropping the samples that datasets return for unreadable files.

    Args:
        batch: Samples as returned by the dataset (``None`` or a :class:`Skipped` record for an unreadable input;
            :class:`PartlyRead` samples are unwrapped).

    Returns:
        The collated batch, or ``None`` when every sample in it was unreadable.
    """
    samples, _ = _unwrap(batch)
    kept = [sample for sample in samples if not _is_skipped(sample)]
    if not kept:
        return None
    return default_collate(kept)


class SkippingCollate:
    """Collate that drops unreadable samples and returns ``(batch or None, [Skipped, ...])`` for the loop to count.

    Args:
        collate: The collate function for the readable samples (default: ``default_collate``).
    """

    def __init__(self, collate: Callable | None = None):
        self.collate = collate or default_collate

    def __call__(self, samples: Sequence[Any]) -> tuple[Any, list[Skipped]]:
        samples, carried = _unwrap(samples)
        kept = [s for s in samples if not _is_skipped(s)]
        skipped = [s if isinstance(s, Skipped) else Skipped("?", "unreadable") for s in samples if _is_skipped(s)]
        return (self.collate(kept) if kept else None), carried + skipped
