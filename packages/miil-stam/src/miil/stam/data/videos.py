"""Video classification datasets: a list of ``(video file, label)`` turned into STAM clips, nothing dropped.

Paper: STAM (arXiv 2103.13915). Each sample is decoded with one batched read of the frames its clip(s) need
(:func:`miil.stam.video.read_frames`), transformed with one crop for all frames, and returned as
``(clip, label)``: ``clip`` is ``float [T, 3, S, S]`` for one view or ``[V, T, 3, S, S]`` for multi-view
evaluation (temporal views x spatial crops). A video that cannot be read (missing, empty, cut short, not a video, a
folder) gives a :class:`~miil.core.data.Skipped` record naming the file and the reason, with one warning, which the
training engine and the evaluation loop count and report, or raises :class:`UnreadableVideoError` naming the file
when ``strict``. Short videos are never dropped (see :mod:`miil.stam.video.sampling`).

``VideoFolderDataset`` reads ``root/<class>/<video>``; ``VideoCSVDataset`` a ``path,label`` table.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from miil.core.data import (
    Skipped,
    UnreadableFileError,
    UnreadablePolicy,
    describe_read_error,
    resolve_under_root,
)

from ..video import VIDEO_EXTENSIONS, ClipSampling, VideoTransform, read_frames

__all__ = [
    "UnreadableVideoError",
    "VideoCSVDataset",
    "VideoDataset",
    "VideoFolderDataset",
    "list_video_inputs",
    "list_videos",
    "load_clip",
]


class UnreadableVideoError(UnreadableFileError):
    """A video file is missing or could not be decoded.

    Args:
        path: The file that could not be read.
        error: The underlying exception.
    """

    kind = "video"


def list_videos(root: str | os.PathLike, extensions: Sequence[str] = VIDEO_EXTENSIONS) -> list[Path]:
    """Video files under ``root`` (recursively), sorted; a single file is returned as is.

    Args:
        root: A folder or one video file.
        extensions: Accepted file extensions (lower case, with the dot).
    """
    base = Path(root)
    if base.is_file():
        return [base]
    if not base.is_dir():
        raise FileNotFoundError(f"no such video file or folder: {base}")
    exts = {e.lower() for e in extensions}
    return sorted(p for p in base.rglob("*") if p.is_file() and p.suffix.lower() in exts)


def load_clip(
    path: str | os.PathLike,
    *,
    sampling: ClipSampling,
    transform: VideoTransform,
    training: bool = False,
    backend: str = "auto",
    num_threads: int = 0,
) -> torch.Tensor:
    """Decode and transform the clip(s) of one video.

    Args:
        path: The video file.
        sampling: Which frames (and how many temporal views).
        transform: Frame transform (crop, spatial views, normalisation).
        training: Random sampling and crops.
        backend: ``"auto"`` (decord, PyAV fallback), ``"decord"`` or ``"pyav"``.
        num_threads: Decoder threads.

    Returns:
        ``[T, 3, S, S]`` for a single view, else ``[V, T, 3, S, S]`` with ``V`` = temporal x spatial views.
    """
    frames, indices, _ = read_frames(
        path,
        lambda n, fps: sampling.indices(n, fps, training=training),
        backend=backend,
        num_threads=num_threads,
    )
    _, first, inverse = np.unique(indices.reshape(-1), return_index=True, return_inverse=True)
    return _assemble(frames[first], inverse, indices.shape, transform)


def _assemble(unique_frames: np.ndarray, inverse: np.ndarray, shape: tuple[int, int], transform) -> torch.Tensor:
    """Transform a video's distinct frames once (one crop for all its clips), then gather each view's frames."""
    views, t = shape
    pixels = transform(unique_frames)
    gather = torch.from_numpy(inverse.reshape(-1).astype(np.int64))
    # index_select, not advanced indexing: the latter wakes every OpenMP thread even for a few small frames.
    if pixels.ndim == 4:  # one spatial view: [U, 3, S, S] -> [V, T, 3, S, S]
        clips = pixels.index_select(0, gather).unflatten(0, (views, t))
    else:  # crops: [C, U, 3, S, S] -> [V * C, T, 3, S, S]
        clips = pixels.index_select(1, gather).unflatten(1, (views, t)).transpose(0, 1).flatten(0, 1)
    return clips[0] if clips.shape[0] == 1 else clips


class VideoDataset(Dataset):
    """``(video path, class index)`` samples as STAM clips.

    Args:
        samples: ``(path, label)`` pairs; files that are missing stay in the list and count as unreadable.
        classes: Class names, indexed by label.
        sampling: Clip sampling (frames, mode, views).
        transform: Frame transform; default: centre crop 224 without normalisation.
        training: Random clip sampling and crops.
        backend: ``"auto"``, ``"decord"`` or ``"pyav"``.
        strict: Raise :class:`UnreadableVideoError` for unreadable videos instead of skipping them.
        decode_threads: Decoder threads per video (1 suits data-loader workers).
        cache_frames: Decode every frame of a video once and keep them in memory (per process), sampling each
            epoch's clips from the cache: for small sets of short videos (demos, tests), not for Kinetics.
    """

    def __init__(
        self,
        samples: Sequence[tuple[str | os.PathLike, int]],
        classes: Sequence[str],
        *,
        sampling: ClipSampling | None = None,
        transform: VideoTransform | None = None,
        training: bool = False,
        backend: str = "auto",
        strict: bool = False,
        decode_threads: int = 1,
        cache_frames: bool = False,
    ):
        self.samples = [(Path(p), int(y)) for p, y in samples]
        self.classes = list(classes)
        bad = [y for _, y in self.samples if not 0 <= y < len(self.classes)]
        if bad:
            raise ValueError(f"labels {sorted(set(bad))[:5]} outside 0..{len(self.classes) - 1}")
        self.targets = [y for _, y in self.samples]
        self.sampling = sampling or ClipSampling()
        self.transform = transform or VideoTransform()
        self.training = training
        self.backend = backend
        self.strict = strict
        self.policy = UnreadablePolicy(strict=strict)
        self.decode_threads = decode_threads
        self.cache_frames = cache_frames
        self._cache: dict[int, tuple[np.ndarray, float]] = {}

    def _cached_clip(self, index: int, path: Path) -> torch.Tensor:
        if index not in self._cache:
            frames, _, video = read_frames(
                path, lambda n, fps: np.arange(n), backend=self.backend, num_threads=self.decode_threads
            )
            self._cache[index] = (frames, video.fps)
        frames, fps = self._cache[index]
        indices = self.sampling.indices(len(frames), fps, training=self.training)
        unique, inverse = np.unique(indices.reshape(-1), return_inverse=True)
        return _assemble(frames[unique], inverse, indices.shape, self.transform)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int] | Skipped:
        path, label = self.samples[index]
        try:
            if self.cache_frames:
                return self._cached_clip(index, path), label
            clip = load_clip(
                path,
                sampling=self.sampling,
                transform=self.transform,
                training=self.training,
                backend=self.backend,
                num_threads=self.decode_threads,
            )
        except Exception as err:  # missing files and every decoder error
            if self.strict:
                raise UnreadableVideoError(path, err) from err
            self.policy.record(path, describe_read_error(path, err, "video"))
            return self.policy.skipped_sample(path)
        return clip, label

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(videos={len(self)}, classes={len(self.classes)}, sampling={self.sampling}, "
            f"training={self.training})"
        )


class VideoFolderDataset(VideoDataset):
    """``root/<class>/**/<video>``: one folder per class (Kinetics as extracted, UCF-101, HMDB-51 ...).

    Args:
        root: The folder of class folders.
        classes: Class names to use (and their order); default: the sorted sub-folder names.
        kwargs: :class:`VideoDataset` options.
    """

    def __init__(self, root: str | os.PathLike, *, classes: Sequence[str] | None = None, **kwargs):
        base = Path(root)
        if not base.is_dir():
            raise FileNotFoundError(f"video folder {base} does not exist")
        names = list(classes) if classes is not None else sorted(p.name for p in base.iterdir() if p.is_dir())
        if not names:
            raise ValueError(f"{base} has no class sub-folders (expected root/<class>/<video>)")
        samples = []
        for label, name in enumerate(names):
            folder = base / name
            if not folder.is_dir():
                raise FileNotFoundError(f"class folder {folder} does not exist")
            samples += [(p, label) for p in list_videos(folder)]
        if not samples:
            raise ValueError(f"no video files ({', '.join(VIDEO_EXTENSIONS)}) under {base}")
        self.root = base
        super().__init__(samples, names, **kwargs)


def _read_label_table(path: Path, path_columns: Sequence[str]) -> list[tuple[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        header = [c.strip().lower() for c in reader.fieldnames or []]
        path_col = next((c for c in path_columns if c in header), None)
        if path_col is None or "label" not in header:
            raise ValueError(
                f"{path}: expected a header with a path column ({' or '.join(path_columns)}) and 'label', "
                f"got {reader.fieldnames}"
            )
        rows = []
        for line, row in enumerate(reader, start=2):
            row = {k.strip().lower(): (v or "").strip() for k, v in row.items() if k is not None}
            if not row[path_col] or not row["label"]:
                raise ValueError(f"{path}:{line}: empty {path_col!r} or 'label'")
            rows.append((row[path_col], row["label"]))
    if not rows:
        raise ValueError(f"{path} lists no videos")
    return rows


def sorted_class_names(labels: Sequence[str]) -> list[str]:
    unique = set(labels)
    if all(lab.isdigit() for lab in unique):
        return sorted(unique, key=int)
    return sorted(unique)


def class_indices(labels: Sequence[str], classes: Sequence[str], source: str | os.PathLike) -> list[int]:
    """Labels to indices in ``classes``, with an error naming the unknown labels and ``source``."""
    lookup = {c: i for i, c in enumerate(classes)}
    unknown = sorted({lab for lab in labels if lab not in lookup})
    if unknown:
        raise ValueError(f"{source}: labels not among the {len(classes)} classes: {unknown[:10]}")
    return [lookup[lab] for lab in labels]


class VideoCSVDataset(VideoDataset):
    """A ``path,label`` CSV (``video`` is accepted for ``path``); paths relative to ``root``, labels class names.

    Args:
        csv_file: The table.
        root: Folder the paths are relative to (they must stay inside it).
        classes: Class names in label order; default: the sorted labels of the table (numerically when all digits).
        kwargs: :class:`VideoDataset` options.
    """

    def __init__(
        self,
        csv_file: str | os.PathLike,
        root: str | os.PathLike,
        *,
        classes: Sequence[str] | None = None,
        **kwargs,
    ):
        table = Path(csv_file)
        if not table.is_file():
            raise FileNotFoundError(f"no such CSV file: {table}")
        rows = _read_label_table(table, ("path", "video"))
        names = list(classes) if classes is not None else sorted_class_names([lab for _, lab in rows])
        labels = class_indices([lab for _, lab in rows], names, table)
        samples = [(resolve_under_root(root, rel), y) for (rel, _), y in zip(rows, labels)]
        self.root = Path(root)
        super().__init__(samples, names, **kwargs)


def list_video_inputs(inputs: Sequence[str | os.PathLike], extensions: Sequence[str] = VIDEO_EXTENSIONS) -> list[Path]:
    """The videos to classify: each input as given, folders searched (recursively, sorted) for video files.

    Inputs that do not exist, and entries with a video name that are not files (a folder called ``x.mp4``), are kept,
    so that reading them reports why they were skipped.

    Args:
        inputs: Files and folders from the command line.
        extensions: Accepted file extensions (lower case, with the dot).
    """
    exts = {e.lower() for e in extensions}
    found: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir() and path.suffix.lower() not in exts:
            found += sorted(p for p in path.rglob("*") if p.suffix.lower() in exts)
        else:
            found.append(path)
    return list(dict.fromkeys(found))
