"""The same set of bad input files for every package's bad-input tests (and for users checking their own pipeline).

The bad-input contract (core README): an unreadable input is skipped with one warning line naming the file and the
reason, counted in the summary and the ``--json`` report, and the command exits with status 3; ``--strict`` makes the
first one fatal. ``write_bad_inputs`` writes the five kinds of bad file every package must survive, next to a real
file of the right kind: truncated, empty, wrong type (text with a media extension), missing (a path that does not
exist) and a folder where a file belongs.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

__all__ = ["BAD_INPUT_KINDS", "write_bad_inputs", "write_real_image"]

BAD_INPUT_KINDS = ("truncated", "empty", "wrong_type", "missing", "folder")


def write_real_image(path: str | os.PathLike, *, index: int = 0, size: int = 64) -> Path:
    """Write a real handwritten digit (scikit-learn's embedded set) upscaled to ``size`` as a JPEG or PNG."""
    from .data.embedded import digits_pil_images

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image = digits_pil_images("train", image_size=size, channels=3)[index][0]
    image.save(path, quality=95) if path.suffix.lower() in (".jpg", ".jpeg") else image.save(path)
    return path


def write_bad_inputs(folder: str | os.PathLike, *, good: str | os.PathLike | None = None) -> dict[str, Path]:
    """Write one bad input of each kind into ``folder`` and return ``{kind: path}`` (``missing`` is not created).

    Args:
        folder: Where to write them (created).
        good: A real, readable file of the media the package reads (a JPEG, a WAV, an MP4); its suffix is used for
            every bad file and its first bytes make the truncated one. Default: a real digit JPEG.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    good = Path(good) if good is not None else write_real_image(folder / "real-digit.jpg")
    data = good.read_bytes()
    suffix = good.suffix
    out = {kind: folder / f"{kind}{suffix}" for kind in BAD_INPUT_KINDS}
    # Keep the header and cut the payload: decoders read the header and then run out of data.
    out["truncated"].write_bytes(data[: max(len(data) * 2 // 5, 64)])
    out["empty"].write_bytes(b"")
    out["wrong_type"].write_bytes(io.BytesIO(b"this is a text file, not a media file\n" * 8).getvalue())
    out["folder"].mkdir(exist_ok=True)
    (out["folder"] / "note.txt").write_text("a folder where a file belongs\n")
    return out
