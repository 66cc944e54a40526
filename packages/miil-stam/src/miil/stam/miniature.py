"""A miniature Kinetics-400 in its real on-disk format: the annotation CSVs and one encoded clip per row.

Paper: STAM (arXiv 2103.13915) reports Kinetics-400 top-1. Kinetics is distributed as annotation CSVs
(``label,youtube_id,time_start,time_end,split``) and clips downloaded from YouTube, saved by the usual downloaders
as ``<youtube_id>_<start:06d>_<end:06d>.<ext>``, flat per split (the CVDF archives) or in one folder per label (the
older download scripts). Real quirks kept here: labels with spaces, YouTube ids starting with ``-`` or containing
``_``, a clip in a ``.mkv`` container, clips shorter than their 10-second window, and (on request) rows whose video
could not be downloaded.

Content (DATA.md, "video"): each clip is a real handwritten digit moving across a real photograph
(:func:`miil.stam.data.motion_frames`); the class is the direction, and a leftward clip is a rightward one played
backwards, so only the frame order tells the classes apart and a temporal model is needed. Train clips use the
train digits, validation clips the disjoint test digits. The generator writes atomically, reuses a finished copy
made with the same settings, and gives the same content for the same seed.
"""

from __future__ import annotations

import os
import string
from pathlib import Path

import numpy as np

from miil.core.data import load_digits_split
from miil.core.miniature import build_miniature, csv_text, generator_settings

from .data.moving_images import MOTION_CLASSES, motion_frames
from .video import write_video

__all__ = ["KINETICS_MOTION_LABELS", "make_kinetics400"]

#: The miniature's labels (Kinetics labels are lower-case phrases with spaces); label ``k`` moves ``MOTION_CLASSES[k]``.
KINETICS_MOTION_LABELS = tuple(f"digit moving {d}" for d in MOTION_CLASSES)
_ID_CHARS = np.array(list(string.ascii_letters + string.digits + "-_"))


def _youtube_id(rng: np.random.Generator, first: str | None = None) -> str:
    chars = rng.choice(_ID_CHARS, size=11).tolist()
    if first is not None:
        chars[0] = first
    return "".join(chars)


def make_kinetics400(
    root: str | os.PathLike,
    *,
    seed: int = 0,
    train_per_class: int = 4,
    val_per_class: int = 2,
    class_folders: bool = False,
    missing_videos: int = 0,
    frame_size: int = 32,
    num_frames: int = 16,
    fps: float = 8.0,
) -> Path:
    """Write a miniature Kinetics-400 and return ``root``.

    Layout written::

        root/
          annotations/train.csv, annotations/validate.csv     label,youtube_id,time_start,time_end,split
          train/<youtube_id>_<start:06d>_<end:06d>.mp4        (class_folders: train/<label>/<...>.mp4)
          val/<youtube_id>_<start:06d>_<end:06d>.mp4

    ``split`` is ``train`` or ``val``. The first validation clip is a Matroska (``.mkv``) file; the last
    ``missing_videos`` rows of each CSV have no video, as downloads that failed.

    Args:
        root: Output folder (absent, empty, or an earlier miniature).
        seed: Seed of everything drawn.
        train_per_class: Training clips per label.
        val_per_class: Validation clips per label.
        class_folders: One folder per label (the older downloaders) instead of flat split folders.
        missing_videos: Rows per CSV whose video is not written.
        frame_size: Frame side in pixels (even).
        num_frames: Frames per clip (clips last ``num_frames / fps`` seconds, less than their 10 s window).
        fps: Frame rate of the clips.
    """
    params = generator_settings(locals())
    travel = frame_size // 2
    object_size = max(8, frame_size * 3 // 8)

    def build(out: Path) -> None:
        rng = np.random.default_rng([seed, 400])
        for split, folder, csv_name, per_class, digits_split in (
            ("train", "train", "train.csv", train_per_class, "train"),
            ("val", "val", "validate.csv", val_per_class, "test"),
        ):
            digits, _ = load_digits_split(digits_split)
            rows = [["label", "youtube_id", "time_start", "time_end", "split"]]
            order = rng.permutation([k for k in range(len(MOTION_CLASSES)) for _ in range(per_class)]).tolist()
            for i, k in enumerate(order):
                first = "-" if i == 0 else ("_" if i == 1 else None)
                ytid = _youtube_id(rng, first)
                start = int(rng.integers(0, 300))
                rows.append([KINETICS_MOTION_LABELS[k], ytid, start, start + 10, split])
                if i >= len(order) - missing_videos:
                    continue
                digit = digits[int(rng.integers(len(digits)))]
                frames = motion_frames(
                    digit,
                    MOTION_CLASSES[k],
                    rng,
                    frame_size=frame_size,
                    object_size=object_size,
                    num_frames=num_frames,
                    travel=travel,
                )
                ext = ".mkv" if (split == "val" and i == 0) else ".mp4"
                base = out / folder / (KINETICS_MOTION_LABELS[k] if class_folders else "")
                write_video(base / f"{ytid}_{start:06d}_{start + 10:06d}{ext}", frames, fps=fps)
            (out / "annotations").mkdir(parents=True, exist_ok=True)
            (out / "annotations" / csv_name).write_text(csv_text(rows), encoding="utf-8")

    return build_miniature(root, "kinetics400", params, build)
