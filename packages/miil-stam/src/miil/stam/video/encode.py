"""Writing short videos with PyAV (its wheels bundle FFmpeg): test clips and the demo's clips of moving real images.

Not part of the paper; it lets tests and the demo exercise the real decoding path (decord / PyAV reading an
encoded file) on real image content without downloading videos.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

__all__ = ["write_video"]


def write_video(
    path: str | os.PathLike,
    frames: np.ndarray | Iterable[np.ndarray],
    *,
    fps: float = 25.0,
    codec: str = "libx264",
    crf: int = 18,
    keyframe_interval: int | None = None,
) -> Path:
    """Encode RGB frames into a video file (container from the extension, e.g. ``.mp4``).

    Args:
        path: Output file.
        frames: ``uint8 [N, H, W, 3]`` frames, or an iterable of ``uint8 [H, W, 3]`` frames (a long video need not
            be held in memory); ``H`` and ``W`` must be even (4:2:0 chroma subsampling) and equal for every frame.
        fps: Frame rate written into the stream.
        codec: FFmpeg encoder name (``"libx264"``; ``"mpeg4"`` when the FFmpeg build lacks x264).
        crf: x264 constant rate factor (lower: better quality); for ``mpeg4`` it is used as the quantiser scale.
        keyframe_interval: Largest distance between key frames (the GOP size); None keeps the encoder's default
            (250 for x264), which is what random access into a long video has to seek through.

    Returns:
        The written path.
    """
    from fractions import Fraction

    import av

    if isinstance(frames, np.ndarray):
        if frames.ndim != 4:
            raise ValueError(f"expected uint8 [N, H, W, 3] frames, got {frames.dtype} {frames.shape}")
        frames = iter(frames)
    frames = iter(frames)
    first = next(frames, None)
    if first is None:
        raise ValueError("frames must be non-empty")
    first = np.asarray(first)
    if first.ndim != 3 or first.shape[-1] != 3 or first.dtype != np.uint8:
        raise ValueError(f"expected uint8 [H, W, 3] frames, got {first.dtype} {first.shape}")
    height, width = first.shape[:2]
    if height % 2 or width % 2:
        raise ValueError(f"frames must have an even height and width, got {first.shape}")
    if codec == "libx264" and "libx264" not in av.codecs_available:
        codec = "mpeg4"
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    rate = Fraction(fps).limit_denominator(1001)
    # bitexact: no creation date or random container ids (Matroska), so the same frames give the same file
    with av.open(str(out), mode="w", options={"fflags": "+bitexact"}) as container:
        stream = container.add_stream(codec, rate=rate)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"
        if codec == "libx264":
            stream.options = {"crf": str(crf), "preset": "veryfast"}
        else:
            stream.options = {"qscale": str(max(1, min(31, crf // 6 or 1)))}
            stream.codec_context.qscale = max(1, min(31, crf // 6 or 1))
        if keyframe_interval is not None:
            stream.codec_context.gop_size = int(keyframe_interval)
        for frame in itertools.chain([first], frames):
            frame = np.asarray(frame)
            if frame.shape != first.shape or frame.dtype != np.uint8:
                raise ValueError(f"every frame must be uint8 {first.shape}, got {frame.dtype} {frame.shape}")
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return out
