"""Kinetics-400/600/700 for STAM: extracted class folders, or the official annotation CSV.

Paper: STAM (arXiv 2103.13915) reports Kinetics-400 top-1. The official annotations are CSV files with the header
``label,youtube_id,time_start,time_end,split`` (``is_cc`` in some releases); the usual downloaders save each clip
as ``<youtube_id>_<start:06d>_<end:06d>.<ext>``, in one folder per label or all in one folder. Videos listed in the
CSV but absent from ``root`` stay in the dataset and count as unreadable (the original loader dropped them,
together with every video shorter than its clip, without a word: STAM issue #7).
"""

from __future__ import annotations

import csv
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

from miil.core.data import resolve_under_root

from ..video import VIDEO_EXTENSIONS
from .videos import VideoDataset, VideoFolderDataset, class_indices, sorted_class_names

__all__ = ["KineticsDataset", "read_kinetics_csv"]

_REQUIRED = ("label", "youtube_id", "time_start", "time_end")


def read_kinetics_csv(csv_file: str | os.PathLike) -> list[dict[str, str]]:
    """Rows of an official Kinetics annotation CSV (``label,youtube_id,time_start,time_end[,split,...]``).

    Args:
        csv_file: The annotation file.
    """
    path = Path(csv_file)
    if not path.is_file():
        raise FileNotFoundError(f"no such Kinetics CSV: {path}")
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        header = [c.strip() for c in reader.fieldnames or []]
        missing = [c for c in _REQUIRED if c not in header]
        if missing:
            raise ValueError(
                f"{path}: not a labelled Kinetics CSV, columns {missing} are missing (header: {header}); "
                "the expected header is label,youtube_id,time_start,time_end,split"
            )
        rows = [{k.strip(): (v or "").strip() for k, v in row.items() if k is not None} for row in reader]
    if not rows:
        raise ValueError(f"{path} lists no videos")
    return rows


def _clip_stem(row: dict[str, str]) -> str:
    start, end = int(float(row["time_start"])), int(float(row["time_end"]))
    return f"{row['youtube_id']}_{start:06d}_{end:06d}"


class KineticsDataset(VideoDataset):
    """Kinetics videos with labels from class folders (``csv_file=None``) or from the official CSV.

    Args:
        root: Folder with the videos (class sub-folders, or flat).
        csv_file: Official annotation CSV; without it ``root/<label>/<video>`` folders give the labels.
        classes: Class names in label order (use the training set's on validation); default: sorted labels.
        kwargs: :class:`VideoDataset` options (sampling, transform, training, backend, strict ...).
    """

    def __init__(
        self,
        root: str | os.PathLike,
        *,
        csv_file: str | os.PathLike | None = None,
        classes: Sequence[str] | None = None,
        **kwargs,
    ):
        base = Path(root)
        self.root = base
        self.missing: list[Path] = []
        if csv_file is None:
            folder = VideoFolderDataset(base, classes=classes)
            super().__init__(folder.samples, folder.classes, **kwargs)
            return
        if not base.is_dir():
            raise FileNotFoundError(f"Kinetics video folder {base} does not exist")
        rows = read_kinetics_csv(csv_file)
        labels = [row["label"] for row in rows]
        names = list(classes) if classes is not None else sorted_class_names(labels)
        targets = class_indices(labels, names, csv_file)
        by_stem: dict[str, Path] = {}
        # every entry with a video name, files or not: a folder where a clip belongs is reported as such
        exts = {e.lower() for e in VIDEO_EXTENSIONS}
        for path in sorted(p for p in base.rglob("*") if p.suffix.lower() in exts):
            by_stem.setdefault(path.stem, path)
        samples = []
        for row, target in zip(rows, targets):
            stem = _clip_stem(row)
            path = by_stem.get(stem) or by_stem.get(row["youtube_id"])
            if path is None:
                # where a download would have put it, read as "missing"; label and id come from the CSV
                path = resolve_under_root(base, f"{row['label']}/{stem}.mp4")
                self.missing.append(path)
            samples.append((path, target))
        if self.missing:
            warnings.warn(
                f"{len(self.missing)} of {len(rows)} videos listed in {csv_file} are not under {base}; "
                "they stay in the dataset and count as unreadable",
                stacklevel=2,
            )
        super().__init__(samples, names, **kwargs)
