"""The on-disk layouts of the photo-album event datasets: ML-CUFED, CUFED and PEC.

Paper: PETA (arXiv 2109.12499), section 4 evaluates on ML-CUFED (1,883 albums, 23 events, multi-label, with
per-image human importance scores; Wang et al., BMVC 2017), CUFED (the single-label version) and PEC (807 albums,
14 events; Bossard et al., ECCV 2013). Two layouts are read:

* **event folders** ``<root>/<event>/<album_id>/<photo>.jpg``: the PETA repository's ``albums/`` folder, PEC, and
  CUFED/ML-CUFED sorted by event. The event is the folder name; a labels file (below) may give several per album.
* **CUFED** ``<root>/images/<album_id>/<photo>.jpg`` with ``<root>/event_type.json``: ML-CUFED and CUFED as
  distributed. ``event_type.json`` maps an album id to its list of events; ``image_importance.json`` maps an album
  id to ``[[index, "<album_id>/<photo>", score], ...]`` (the photo without its extension).

A split file lists one album per line (``<album_id>`` or ``<event>/<album_id>``; blank lines and ``#`` comments are
ignored). Album ids and photo names must be plain names inside the data root.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from miil.core.data import IMAGE_EXTENSIONS, resolve_under_root

__all__ = [
    "ML_CUFED_EVENTS",
    "AlbumRecord",
    "album_classes",
    "list_album_images",
    "load_event_labels",
    "load_importance_scores",
    "read_album_list",
    "read_cufed",
    "read_event_folders",
]

#: The 23 event types of CUFED / ML-CUFED, in the order the published ML-CUFED code indexes them.
ML_CUFED_EVENTS = (
    "Architecture",
    "BeachTrip",
    "Birthday",
    "BusinessActivity",
    "CasualFamilyGather",
    "Christmas",
    "Cruise",
    "Graduation",
    "GroupActivity",
    "Halloween",
    "Museum",
    "NatureTrip",
    "PersonalArtActivity",
    "PersonalMusicActivity",
    "PersonalSports",
    "Protest",
    "ReligiousActivity",
    "Show",
    "Sports",
    "ThemePark",
    "UrbanTrip",
    "Wedding",
    "Zoo",
)


@dataclass(frozen=True)
class AlbumRecord:
    """One album: where its photos are, their file names (sorted) and its events.

    Args:
        album_id: The album's id (its folder name).
        folder: Folder holding the photos.
        images: Photo file names inside ``folder``, sorted.
        labels: Event names of the album (one for single-label datasets).
    """

    album_id: str
    folder: Path
    images: tuple[str, ...]
    labels: tuple[str, ...]

    def paths(self) -> list[Path]:
        return [self.folder / name for name in self.images]


def _plain_name(name: str, what: str, source: str | os.PathLike) -> str:
    if not name or name in (".", "..") or "/" in name or "\\" in name:
        raise ValueError(f"{what} {name!r} in {source} is not a plain folder or file name")
    return name


def list_album_images(folder: str | os.PathLike) -> tuple[str, ...]:
    """Sorted names of the photos (``IMAGE_EXTENSIONS``, any case; hidden entries skipped) directly in ``folder``.

    Every entry named like a photo is listed, also one that cannot be a readable photo (a folder named ``x.jpg``, a
    dangling link): reading it then reports it as a skipped input instead of leaving it out unseen.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"album folder {folder} does not exist or is not a folder")
    return tuple(
        sorted(f.name for f in folder.iterdir() if not f.name.startswith(".") and f.suffix.lower() in IMAGE_EXTENSIONS)
    )


def read_album_list(path: str | os.PathLike) -> list[str]:
    """Album entries of a split file (one per line; blank lines and ``#`` comments skipped)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"album split file {path} does not exist")
    entries = []
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            entries.append(line.replace("\\", "/").strip("/"))
    if not entries:
        raise ValueError(f"album split file {path} lists no albums")
    return entries


def load_event_labels(path: str | os.PathLike) -> dict[str, tuple[str, ...]]:
    """Read an album-to-events JSON file (ML-CUFED's ``event_type.json``): ``{album_id: [event, ...]}``.

    A single event may also be given as a string.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"event labels file {path} does not exist")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"event labels file {path} is not valid JSON: {err}") from None
    if not isinstance(data, dict):
        raise ValueError(f"event labels file {path} must hold a JSON object {{album_id: [events]}}")
    out = {}
    for album, events in data.items():
        if isinstance(events, str):
            events = [events]
        if not isinstance(events, list) or not events or not all(isinstance(e, str) and e for e in events):
            raise ValueError(f"album {album!r} in {path}: events must be a non-empty list of names, got {events!r}")
        out[str(album)] = tuple(dict.fromkeys(events))
    return out


def _photo_key(name: str) -> str:
    return os.path.splitext(name.replace("\\", "/").rsplit("/", 1)[-1])[0]


def load_importance_scores(path: str | os.PathLike) -> dict[str, dict[str, float]]:
    """Read human image-importance scores (ML-CUFED's ``image_importance.json``).

    Accepted per album: ``[[index, "<album_id>/<photo>", score], ...]`` (ML-CUFED), ``[["<photo>", score], ...]``
    or ``{"<photo>": score}``.

    Returns:
        ``{album_id: {photo: score}}`` with photos named without folder and extension.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image importance file {path} does not exist")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"image importance file {path} is not valid JSON: {err}") from None
    if not isinstance(data, dict):
        raise ValueError(f"image importance file {path} must hold a JSON object {{album_id: scores}}")
    out: dict[str, dict[str, float]] = {}
    for album, entries in data.items():
        scores: dict[str, float] = {}
        items = entries.items() if isinstance(entries, dict) else entries
        if not isinstance(items, Iterable) or isinstance(items, str | bytes):
            raise ValueError(f"album {album!r} in {path}: expected a list of [.., photo, score] or a dict")
        for entry in items:
            if isinstance(entry, list | tuple) and len(entry) in (2, 3) and isinstance(entry[-2], str):
                photo, score = entry[-2], entry[-1]
            else:
                raise ValueError(
                    f"album {album!r} in {path}: entry {entry!r} is not [index, 'album/photo', score] or [photo, score]"
                )
            try:
                scores[_photo_key(photo)] = float(score)
            except (TypeError, ValueError):
                raise ValueError(f"album {album!r} in {path}: score {score!r} of {photo!r} is not a number") from None
        out[str(album)] = scores
    return out


def _split_filter(albums: Sequence[str] | None) -> tuple[set[str], set[str]] | None:
    if albums is None:
        return None
    ids, qualified = set(), set()
    for entry in albums:
        (qualified if "/" in entry else ids).add(entry)
    return ids, qualified


def _wanted(filt: tuple[set[str], set[str]] | None, event: str | None, album: str) -> bool:
    if filt is None:
        return True
    ids, qualified = filt
    return album in ids or (event is not None and f"{event}/{album}" in qualified)


def _check_found(filt: tuple[set[str], set[str]] | None, found: set[str], root: Path) -> None:
    if filt is None:
        return
    ids, qualified = filt
    missing = sorted((ids | qualified) - found)
    if missing:
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise FileNotFoundError(f"{len(missing)} album(s) of the split are not under {root}: {shown}")


def read_event_folders(
    root: str | os.PathLike,
    *,
    labels: Mapping[str, Sequence[str]] | None = None,
    albums: Sequence[str] | None = None,
) -> list[AlbumRecord]:
    """Albums laid out as ``<root>/<event>/<album_id>/<photo>`` (PETA's ``albums/``, PEC, CUFED by event).

    Args:
        root: The data root.
        labels: Optional ``{album_id: events}`` (e.g. from :func:`load_event_labels`) replacing the folder's event,
            for multi-label datasets stored by their main event.
        albums: Optional split: album ids or ``<event>/<album_id>`` entries to keep (all must exist).

    Returns:
        Records sorted by event folder and album id; albums without photos are skipped.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"album root {root} does not exist or is not a folder")
    filt = _split_filter(albums)
    records, seen, found = [], {}, set()
    events = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not events:
        raise FileNotFoundError(f"no event folders in {root}; expected {root}/<event>/<album_id>/<photo>.jpg")
    for event in events:
        for album_dir in sorted(d for d in (root / event).iterdir() if d.is_dir() and not d.name.startswith(".")):
            album = album_dir.name
            if not _wanted(filt, event, album):
                continue
            found.update({album, f"{event}/{album}"})
            if album in seen:
                raise ValueError(
                    f"album id {album!r} appears under two event folders ({seen[album]} and {album_dir}); give "
                    "multi-label albums once, with their events in a labels file"
                )
            seen[album] = album_dir
            images = list_album_images(album_dir)
            if not images:
                continue
            if labels is not None:
                if album not in labels:
                    raise KeyError(f"album {album!r} ({album_dir}) has no entry in the labels file")
                events_of = tuple(labels[album])
            else:
                events_of = (event,)
            records.append(AlbumRecord(album, album_dir, images, events_of))
    _check_found(filt, found, root)
    if not records:
        raise FileNotFoundError(f"no albums with photos under {root}")
    return records


def read_cufed(
    root: str | os.PathLike,
    *,
    labels_file: str | os.PathLike = "event_type.json",
    images_dir: str = "images",
    albums: Sequence[str] | None = None,
) -> list[AlbumRecord]:
    """ML-CUFED / CUFED as distributed: ``<root>/images/<album_id>/<photo>`` and ``<root>/event_type.json``.

    Args:
        root: The dataset root.
        labels_file: Album-to-events JSON, relative to ``root`` (or absolute).
        images_dir: Folder of the album folders, relative to ``root``.
        albums: Optional split of album ids to keep (default: every album in the labels file).

    Returns:
        Records in the order of ``albums`` (or sorted by album id); albums without photos are skipped.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"dataset root {root} does not exist or is not a folder")
    labels_path = Path(labels_file) if Path(labels_file).is_absolute() else root / labels_file
    labels = load_event_labels(labels_path)
    image_root = root / images_dir
    if not image_root.is_dir():
        raise FileNotFoundError(f"photo folder {image_root} does not exist; expected {image_root}/<album_id>/")
    ids = [a.rsplit("/", 1)[-1] for a in albums] if albums is not None else sorted(labels)
    records = []
    for album in ids:
        _plain_name(album, "album id", labels_path)
        if album not in labels:
            raise KeyError(f"album {album!r} of the split has no entry in {labels_path}")
        folder = resolve_under_root(image_root, album)
        if not folder.is_dir():
            raise FileNotFoundError(f"album {album!r} listed in {labels_path} has no folder {folder}")
        images = list_album_images(folder)
        if images:
            records.append(AlbumRecord(album, folder, images, labels[album]))
    if not records:
        raise FileNotFoundError(f"no albums with photos under {image_root}")
    return records


def album_classes(records: Iterable[AlbumRecord]) -> list[str]:
    """Sorted names of all events the records use."""
    return sorted({event for r in records for event in r.labels})
