"""Cut-short media files: what a container's header promises against what the file holds.

A download that stopped early or an interrupted copy leaves a file whose header is intact and whose payload is cut.
Decoders often read such a file without an error: libsndfile returns a cut WAV as a shorter clip, PyAV and decord
return the frames up to the cut (and a Matroska file's duration still promises the rest). So a cut file would be
scored as a shorter input instead of being reported. :func:`container_truncation` reads only the headers of the
containers whose structure states their own length, and says what is missing:

- RIFF (WAV, AVI): the RIFF size and, for WAVE, the ``data`` chunk size against the bytes present (in frames);
- ISO base media (MP4, MOV, M4A, 3GP): every top-level box must end inside the file, and a file with media data but
  no ``moov`` box lost the index that writers put at its end;
- EBML (Matroska, WebM): the size of the Segment element.

Unknown sizes that streaming writers leave (``0`` / ``0xFFFFFFFF`` in RIFF, unknown-size EBML elements, a last MP4
box of size 0) are not treated as truncation. Formats whose frame count comes from the decoder (FLAC's STREAMINFO, a
video stream's frame count) are compared by the packages that decode them; :class:`TruncatedFileError` is what both
raise, so :func:`~miil.core.data.describe_read_error` reports it as "truncated (...)".
"""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import BinaryIO

__all__ = ["TruncatedFileError", "container_truncation"]

_ISO_FIRST_BOXES = (b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot", b"styp")
_EBML_MAGIC = b"\x1a\x45\xdf\xa3"
_EBML_SEGMENT = 0x18538067
_RIFF_UNKNOWN_SIZES = (0, 0xFFFFFFFF)


class TruncatedFileError(EOFError):
    """A media file holds less than its header promises (an EOFError, reported as "truncated (...)")."""


def container_truncation(path: str | os.PathLike) -> str | None:
    """Why ``path`` is cut short, judged from its container's header; ``None`` when it is complete or unknown.

    Args:
        path: A media file (WAV, AVI, MP4/MOV/M4A, Matroska/WebM; other formats give ``None``).

    Returns:
        A sentence such as ``"the WAV header promises 88200 frames, the file holds 35280"``, or ``None``.
    """
    p = Path(path)
    with open(p, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        head = fh.read(12)
        if len(head) < 12:
            return None
        if head[:4] in (b"RIFF", b"RIFX"):
            return _riff(fh, head, size)
        if head[4:8] in _ISO_FIRST_BOXES:
            return _iso_bmff(fh, size)
        if head[:4] == _EBML_MAGIC:
            return _ebml(fh, size)
    return None


def _riff(fh: BinaryIO, head: bytes, size: int) -> str | None:
    endian = "<" if head[:4] == b"RIFF" else ">"
    declared = struct.unpack(endian + "I", head[4:8])[0]
    form = head[8:12]
    if form != b"WAVE":
        if declared not in _RIFF_UNKNOWN_SIZES and 8 + declared > size:
            name = form.decode("latin-1").strip() or "RIFF"
            return f"the {name} header promises {8 + declared} bytes, the file holds {size}"
        return None
    block_align = 0
    pos = 12
    while pos + 8 <= size:
        fh.seek(pos)
        chunk_id, chunk_size = struct.unpack(endian + "4sI", fh.read(8))
        if chunk_id == b"fmt " and chunk_size >= 14:
            block_align = struct.unpack(endian + "H", fh.read(14)[12:14])[0]
        elif chunk_id == b"data":
            if chunk_size in _RIFF_UNKNOWN_SIZES:
                return None
            present = size - (pos + 8)
            if present >= chunk_size:
                return None
            if block_align:
                return (
                    f"the WAV header promises {chunk_size // block_align} frames, "
                    f"the file holds {present // block_align}"
                )
            return f"the WAV header promises {chunk_size} bytes of samples, the file holds {present}"
        pos += 8 + chunk_size + (chunk_size & 1)
    if declared not in _RIFF_UNKNOWN_SIZES and 8 + declared > size:
        return f"the WAV header promises {8 + declared} bytes, the file holds {size} and no complete data chunk"
    return None


def _iso_bmff(fh: BinaryIO, size: int) -> str | None:
    pos, seen = 0, set()
    while pos + 8 <= size:
        fh.seek(pos)
        box_size, box_type = struct.unpack(">I4s", fh.read(8))
        if not all(32 <= b < 127 for b in box_type):
            return None  # not a box header: not ours to judge
        name = box_type.decode("ascii")
        if box_size == 1:
            extended = fh.read(8)
            if len(extended) < 8:
                return f"the '{name}' box header is cut at byte {size}"
            box_size = struct.unpack(">Q", extended)[0]
        elif box_size == 0:  # the last box runs to the end of the file
            seen.add(box_type)
            break
        if box_size < 8:
            return None
        seen.add(box_type)
        if pos + box_size > size:
            return f"the '{name}' box at byte {pos} declares {box_size} bytes, the file ends {size - pos} bytes later"
        pos += box_size
    if b"mdat" in seen and b"moov" not in seen and b"moof" not in seen:
        return "the file has media data but no 'moov' index (writers put it at the end, which is missing)"
    return None


def _vint(fh: BinaryIO, keep_marker: bool) -> tuple[int | None, int]:
    """An EBML variable-length integer: ``(value or None when all value bits are set, length in bytes)``."""
    first = fh.read(1)
    if not first:
        raise EOFError
    lead = first[0]
    length = 1
    while length <= 8 and not lead & (0x80 >> (length - 1)):
        length += 1
    if length > 8:
        raise ValueError("invalid EBML integer")
    rest = fh.read(length - 1)
    if len(rest) < length - 1:
        raise EOFError
    value = lead if keep_marker else lead & (0xFF >> length)
    for byte in rest:
        value = (value << 8) | byte
    unknown = not keep_marker and value == (1 << (7 * length)) - 1
    return (None if unknown else value), length


def _ebml(fh: BinaryIO, size: int) -> str | None:
    try:
        fh.seek(0)
        pos = 0
        for _ in range(2):  # the EBML header, then the Segment
            element, id_len = _vint(fh, keep_marker=True)
            body, size_len = _vint(fh, keep_marker=False)
            start = pos + id_len + size_len
            if element == _EBML_SEGMENT:
                if body is not None and start + body > size:
                    return f"the Matroska segment declares {body} bytes, the file holds {size - start}"
                return None
            if body is None:
                return None
            pos = start + body
            fh.seek(pos)
    except (EOFError, ValueError):
        return "the Matroska header is cut short"
    return None
