"""Videos whose class is the direction of motion: real handwritten digits moving over real photographs.

Built for the STAM demo and tests (DATA.md: "a class that needs temporal order tests the temporal model, not one
frame"). Each clip shows one of scikit-learn's real 8x8 digits (upscaled) moving in a straight line over a static
crop of one of scikit-learn's sample photographs (``china.jpg``, ``flower.jpg``). The class is the direction:
``left``, ``right``, ``up`` or ``down``. The start positions are drawn so that a leftward clip is, frame for frame,
a rightward clip played backwards: the *set* of frames carries no information about the sign of the motion, only
their order does, so a frame-averaging model can at best tell horizontal from vertical (50% accuracy), while a
temporal model can reach 100%.

Train and test clips use disjoint digit images (the core's seeded digit split) and independent random
backgrounds. Clips are written as real H.264 files with PyAV and read back through the normal decoding path.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from miil.core.data import load_digits_split
from miil.core.extras import require

from ..video import write_video

__all__ = ["MOTION_CLASSES", "make_motion_videos", "motion_frames"]

MOTION_CLASSES = ("left", "right", "up", "down")


@lru_cache(maxsize=1)
def _photos(scale: float = 0.25) -> tuple[np.ndarray, ...]:
    with require("sklearn", distribution="miil-stam", extra="demo", purpose="the moving-digit videos' backgrounds"):
        from sklearn.datasets import load_sample_images

    out = []
    for image in load_sample_images().images:
        pil = Image.fromarray(image)
        out.append(np.asarray(pil.resize((int(pil.width * scale), int(pil.height * scale)), Image.BILINEAR)))
    return tuple(out)


def motion_frames(
    digit: np.ndarray,
    direction: str,
    rng: np.random.Generator,
    *,
    frame_size: int = 32,
    object_size: int = 12,
    num_frames: int = 16,
    travel: int = 16,
    background_gain: float = 0.15,
) -> np.ndarray:
    """One clip: ``uint8 [num_frames, frame_size, frame_size, 3]``.

    Args:
        digit: ``uint8 [8, 8]`` grey digit (0..255).
        direction: One of :data:`MOTION_CLASSES`.
        rng: Random generator (background photo and crop, start position, colour).
        frame_size: Side of the square frames (even, for 4:2:0 video).
        object_size: Side of the moving digit in pixels.
        num_frames: Frames in the clip.
        travel: Pixels covered from the first to the last frame.
        background_gain: Brightness factor of the background photo (the digit stays bright).
    """
    if direction not in MOTION_CLASSES:
        raise ValueError(f"direction must be one of {MOTION_CLASSES}, got {direction!r}")
    room = frame_size - object_size
    if travel > room:
        raise ValueError(f"travel {travel} does not fit: frame {frame_size} - object {object_size} = {room}")
    photos = _photos()
    photo = photos[int(rng.integers(len(photos)))]
    top = int(rng.integers(photo.shape[0] - frame_size + 1))
    left = int(rng.integers(photo.shape[1] - frame_size + 1))
    background = photo[top : top + frame_size, left : left + frame_size].astype(np.float32) * background_gain
    sprite = np.asarray(Image.fromarray(digit).resize((object_size, object_size), Image.BILINEAR), np.float32) / 255
    colour = rng.uniform(180, 255, size=3).astype(np.float32)
    # Positions along the motion run over [a, a + travel] in both senses, so reversed clips share their frames.
    along = int(rng.integers(room - travel + 1))
    across = int(rng.integers(room + 1))
    ramp = np.rint(np.linspace(0, travel, num_frames)).astype(int)
    path = along + (ramp if direction in ("right", "down") else travel - ramp)
    frames = np.empty((num_frames, frame_size, frame_size, 3), np.uint8)
    alpha = sprite[..., None]
    for i, pos in enumerate(path):
        y, x = (across, pos) if direction in ("left", "right") else (pos, across)
        frame = background.copy()
        patch = frame[y : y + object_size, x : x + object_size]
        frame[y : y + object_size, x : x + object_size] = patch * (1 - alpha) + colour * alpha
        frames[i] = np.clip(np.rint(frame), 0, 255).astype(np.uint8)
    return frames


def make_motion_videos(
    out_dir: str | os.PathLike,
    *,
    split: str = "train",
    per_class: int = 100,
    seed: int = 0,
    frame_size: int = 32,
    num_frames: int = 16,
    fps: float = 8.0,
    object_size: int = 12,
    travel: int = 16,
    background_gain: float = 0.15,
) -> list[tuple[Path, int]]:
    """Write ``per_class`` clips of every direction as H.264 files under ``out_dir/<direction>/``.

    Args:
        out_dir: Output folder (class sub-folders are created).
        split: ``"train"`` or ``"test"``: which part of the digits (disjoint images) the clips use.
        per_class: Clips per direction.
        seed: Seed of the backgrounds, positions, colours and digit choice.
        frame_size: Frame side in pixels.
        num_frames: Frames per video.
        fps: Frame rate written into the files.
        object_size: Side of the moving digit in pixels.
        travel: Pixels covered by the digit from the first to the last frame.
        background_gain: Brightness factor of the background photo.

    Returns:
        ``(path, label)`` pairs, label = index in :data:`MOTION_CLASSES`.
    """
    digits, _ = load_digits_split(split)
    rng = np.random.default_rng([seed, 0 if split == "train" else 1])
    samples = []
    for label, direction in enumerate(MOTION_CLASSES):
        for i in range(per_class):
            digit = digits[int(rng.integers(len(digits)))]
            frames = motion_frames(
                digit,
                direction,
                rng,
                frame_size=frame_size,
                object_size=object_size,
                num_frames=num_frames,
                travel=travel,
                background_gain=background_gain,
            )
            path = write_video(Path(out_dir) / direction / f"{split}_{i:04d}.mp4", frames, fps=fps)
            samples.append((path, label))
    return samples
