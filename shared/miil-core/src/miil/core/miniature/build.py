"""Where miniature datasets are written, and how: once, atomically, and again only when their settings change.

A generator builds its dataset in a hidden sibling folder and renames it to ``root`` when it is complete, with a
manifest (``root/.miniature.json``: format, settings, version) that makes a second call with the same settings return
at once. A folder with a manifest of other settings is a miniature too and is rebuilt; a non-empty folder without a
manifest may be a user's real dataset and is never touched.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "MANIFEST",
    "MINIATURE_VERSION",
    "build_miniature",
    "cached_miniature",
    "csv_text",
    "generator_settings",
    "miniature_cache_dir",
    "miniature_digest",
]

#: Bumped when any generator's output changes, so that cached copies are rebuilt.
MINIATURE_VERSION = 1
MANIFEST = ".miniature.json"


def miniature_cache_dir() -> Path:
    """The user cache folder for miniatures: ``$MIIL_CACHE_DIR/miniature``, else ``$XDG_CACHE_HOME/miil/miniature``
    (``~/.cache/miil/miniature``)."""
    if os.environ.get("MIIL_CACHE_DIR"):
        return Path(os.environ["MIIL_CACHE_DIR"]) / "miniature"
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "miil" / "miniature"


def _manifest(fmt: str, params: Mapping[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps({"format": fmt, "version": MINIATURE_VERSION, "settings": dict(params)}, default=str))


def _read_manifest(root: Path) -> dict[str, Any] | None:
    try:
        return json.loads((root / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def build_miniature(
    root: str | os.PathLike, fmt: str, params: Mapping[str, Any], build: Callable[[Path], None]
) -> Path:
    """Write a miniature dataset to ``root`` with ``build`` unless ``root`` already holds it with these settings.

    Args:
        root: Output folder (created; must be absent, empty, or an earlier miniature).
        fmt: Name of the format (e.g. ``"coco2014"``).
        params: The generator's settings (JSON-serialisable); they decide whether an existing copy is reused.
        build: Writes the dataset into the folder it is given.

    Returns:
        ``root``.
    """
    root = Path(root)
    want = _manifest(fmt, params)
    if _read_manifest(root) == want:
        return root
    if root.exists():
        if not root.is_dir():
            raise FileExistsError(f"cannot write a miniature {fmt} dataset to {root}: it is a file")
        if _read_manifest(root) is not None:
            shutil.rmtree(root)  # our own miniature with other settings or an older version
        elif any(root.iterdir()):
            raise FileExistsError(
                f"cannot write a miniature {fmt} dataset to {root}: the folder is not empty and holds no miniature "
                "(it may be real data); give an empty or new folder"
            )
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = root.parent / f".{root.name}.partial-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        build(tmp)
        (tmp / MANIFEST).write_text(json.dumps(want, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        try:
            os.rename(tmp, root)  # replaces an empty folder; fails if another process finished first
        except OSError:
            if _read_manifest(root) != want:
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return root


def cached_miniature(make: Callable[..., Path], /, *, cache_dir: str | os.PathLike | None = None, **kwargs) -> Path:
    """Call a generator on a folder of the user cache named after its settings (built on first use).

    Args:
        make: A generator, e.g. ``miil.core.miniature.make_coco2014``.
        cache_dir: Cache folder (default :func:`miniature_cache_dir`).
        kwargs: The generator's keyword arguments.

    Returns:
        The generator's output folder.
    """
    key = json.dumps({"make": f"{make.__module__}.{make.__qualname__}", **kwargs}, sort_keys=True, default=str)
    digest = hashlib.sha1(key.encode()).hexdigest()[:12]
    base = Path(cache_dir) if cache_dir is not None else miniature_cache_dir()
    return make(base / f"{make.__name__.removeprefix('make_')}-{digest}", **kwargs)


def miniature_digest(root: str | os.PathLike) -> str:
    """SHA-1 over the relative paths and bytes of every file under ``root`` (the manifest included): equal digests
    mean identical datasets."""
    root = Path(root)
    h = hashlib.sha1()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(path.relative_to(root).as_posix().encode() + b"\0")
        h.update(hashlib.sha1(path.read_bytes()).digest())
    return h.hexdigest()


def csv_text(rows: Iterable[Sequence[object]]) -> str:
    """Rows as CSV text with ``\\n`` line ends (the datasets' label files are Unix text), quoting cells as needed."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue()


def generator_settings(arguments: Mapping[str, Any]) -> dict[str, Any]:
    """A generator's settings: its arguments but ``root``, from ``locals()`` taken first thing in its body."""
    return {k: v for k, v in arguments.items() if k != "root"}
