"""Which frames of a video make a STAM clip: the original fixed-rate sampling, TSN segments, uniform, multi-view.

Paper: STAM (arXiv 2103.13915), sections 3-4. The released evaluation resamples a video to ``T / 10`` fps and
takes the first ``T`` frames (the first 10 s): 16 frames at 1.6 fps for STAM-16. Videos shorter than that span
were silently dropped by the original loader (about 40% of Kinetics-400 validation, STAM issue #7); here they are
completed instead: ``short="pad"`` repeats the last frame, ``short="loop"`` starts over from the first.

Modes (all return ``[views, T]`` frame indices):

- ``fixed_fps``: ``T`` frames ``fps / frame_rate`` source frames apart. Evaluation views start evenly over the
  video (one view: at frame 0, the original); training starts at a random frame.
- ``segment``: the video is cut into ``T`` equal segments (TSN); training takes a random frame in each, evaluation
  the centre frame (view ``v`` of ``V``: at ``(v + 0.5) / V`` of each segment).
- ``uniform``: ``T`` frames evenly spread from the first to the last frame; training shifts the grid randomly by up
  to half a step, evaluation views shift it evenly.

Segment and uniform sampling cover any length; a video with fewer than ``T`` frames repeats frames.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["SAMPLING_MODES", "SHORT_VIDEO_POLICIES", "ClipSampling", "sample_frame_indices"]

SAMPLING_MODES = ("fixed_fps", "segment", "uniform")
SHORT_VIDEO_POLICIES = ("pad", "loop")


def _uniform(generator: torch.Generator | None, *shape: int) -> np.ndarray:
    return torch.rand(shape, generator=generator, dtype=torch.float64).numpy()


def sample_frame_indices(
    video_frames: int,
    *,
    num_frames: int,
    mode: str = "fixed_fps",
    fps: float | None = None,
    frame_rate: float = 1.6,
    training: bool = False,
    num_views: int = 1,
    short: str = "pad",
    generator: torch.Generator | None = None,
) -> np.ndarray:
    """Frame indices of the clip(s) to decode from a video.

    Args:
        video_frames: Number of frames in the video (> 0).
        num_frames: Frames per clip ``T``.
        mode: ``"fixed_fps"``, ``"segment"`` or ``"uniform"``.
        fps: The video's frame rate (needed by ``fixed_fps``).
        frame_rate: Sampling rate of ``fixed_fps`` in frames per second (original: ``T / 10``).
        training: Random sampling (one view) instead of the deterministic evaluation views.
        num_views: Evaluation clips per video (temporal views); must be 1 when training.
        short: ``fixed_fps`` clips running past the end: ``"pad"`` (repeat the last frame) or ``"loop"``.
        generator: Random generator for training sampling (default: torch's global one, seeded per data-loader
            worker).

    Returns:
        ``int64 [num_views, num_frames]`` indices in ``[0, video_frames)``, non-decreasing within a view except
        where ``loop`` wraps around.
    """
    if video_frames < 1:
        raise ValueError(f"the video has no frames ({video_frames})")
    if num_frames < 1 or num_views < 1:
        raise ValueError(f"num_frames and num_views must be >= 1, got {num_frames} and {num_views}")
    if mode not in SAMPLING_MODES:
        raise ValueError(f"sampling mode must be one of {SAMPLING_MODES}, got {mode!r}")
    if short not in SHORT_VIDEO_POLICIES:
        raise ValueError(f"short-video policy must be one of {SHORT_VIDEO_POLICIES}, got {short!r}")
    if training and num_views != 1:
        raise ValueError(f"training samples one view per video, got num_views={num_views}")
    n, t = int(video_frames), int(num_frames)
    steps = np.arange(t, dtype=np.float64)
    if mode == "fixed_fps":
        if not fps or not math.isfinite(fps) or fps <= 0:
            raise ValueError(f"fixed_fps sampling needs the video's frame rate, got {fps!r}")
        if frame_rate <= 0:
            raise ValueError(f"frame_rate must be > 0, got {frame_rate}")
        step = fps / frame_rate
        span = (t - 1) * step + 1  # source frames covered by one clip
        room = max(0.0, n - span)
        if training:
            starts = np.floor(_uniform(generator, 1) * (room + 1))
        else:
            starts = np.floor(np.linspace(0.0, room, num_views)) if num_views > 1 else np.zeros(1)
        idx = np.floor(starts[:, None] + steps[None, :] * step + 1e-6).astype(np.int64)
        return np.minimum(idx, n - 1) if short == "pad" else idx % n
    if mode == "segment":
        seg = n / t
        if training:
            offsets = _uniform(generator, 1, t)
        else:
            offsets = np.broadcast_to(((np.arange(num_views) + 0.5) / num_views)[:, None], (num_views, t))
        idx = np.floor((steps[None, :] + offsets) * seg).astype(np.int64)
        return np.clip(idx, 0, n - 1)
    step = (n - 1) / (t - 1) if t > 1 else 0.0
    base = np.linspace(0.0, n - 1, t) if t > 1 else np.full(1, (n - 1) / 2)
    if training:
        shifts = (_uniform(generator, 1) - 0.5) * step
    else:
        shifts = ((np.arange(num_views) + 0.5) / num_views - 0.5) * step
    idx = np.rint(base[None, :] + shifts[:, None]).astype(np.int64)
    return np.clip(idx, 0, n - 1)


@dataclass(frozen=True)
class ClipSampling:
    """How a dataset turns a video into clips (see :func:`sample_frame_indices`).

    Args:
        num_frames: Frames per clip ``T``.
        mode: ``"fixed_fps"`` (original), ``"segment"`` or ``"uniform"``.
        frame_rate: ``fixed_fps`` sampling rate in frames per second.
        num_views: Temporal evaluation views per video.
        short: ``"pad"`` or ``"loop"`` for ``fixed_fps`` clips past the end of a short video.
    """

    num_frames: int = 16
    mode: str = "fixed_fps"
    frame_rate: float = 1.6
    num_views: int = 1
    short: str = "pad"

    def __post_init__(self) -> None:
        if self.mode not in SAMPLING_MODES:
            raise ValueError(f"sampling mode must be one of {SAMPLING_MODES}, got {self.mode!r}")
        if self.short not in SHORT_VIDEO_POLICIES:
            raise ValueError(f"short-video policy must be one of {SHORT_VIDEO_POLICIES}, got {self.short!r}")
        if self.num_frames < 1 or self.num_views < 1 or self.frame_rate <= 0:
            raise ValueError(f"invalid clip sampling {self}")

    def indices(self, video_frames: int, fps: float | None, *, training: bool = False) -> np.ndarray:
        """``[views, T]`` frame indices for one video (one view when training)."""
        return sample_frame_indices(
            video_frames,
            num_frames=self.num_frames,
            mode=self.mode,
            fps=fps,
            frame_rate=self.frame_rate,
            training=training,
            num_views=1 if training else self.num_views,
            short=self.short,
        )
