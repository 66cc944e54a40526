"""Video decoding for STAM: decord first, PyAV as the fallback, frames fetched in one batch per clip.

Paper: STAM (arXiv 2103.13915) samples a few frames spread over seconds of video. The original code read videos
through torchvision's ``Kinetics400`` (PyAV), which decodes every frame up to the clip and silently dropped the
videos it could not cut a full clip from. Here a clip's frames are requested by index in one batch: with decord,
each frame is reached by jumping to the key frame before it when one lies ahead, else by decoding forward without
colour-converting the skipped frames (cheaper than ``get_batch``, which seeks for every frame); PyAV decodes
sequentially up to the last requested frame.

``backend="auto"`` picks per clip, from where its frames lie: PyAV when the last one is among the first
:data:`AUTO_SEQUENTIAL_FRAMES` frames of the video (about one x264 group of pictures; the original's evaluation clip,
the first 10 s, and whole short videos such as Kinetics' 10 s clips), decord otherwise (random access into a long
video). Measured by ``tools/bench/stam_decode.py`` on a 64 s clip with one decoder thread: sequential PyAV decoding
of the first 10 s beat decord by about 1.2x (decord builds a frame index when it opens a file), while clips spread
over the video or starting at a random point decoded 2.5-5x faster with decord. PyAV is also the fallback when decord
is not installed (it ships x86-64 wheels only) or fails on a file.

Both return ``uint8`` arrays ``[N, H, W, 3]`` (RGB) in the order of the requested indices (repeats allowed).

A file cut short (an interrupted download) is refused as truncated instead of being read as a shorter video: the
container's own size fields are checked when the file is opened (:func:`miil.core.data.container_truncation`: an MP4
box or a Matroska segment that runs past the end of the file), and PyAV's decoding is compared with the frame count
the stream header states, so a clip is never silently filled with repeats of the last frame that decoded.
"""

from __future__ import annotations

import importlib.util
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from miil.core.data import TruncatedFileError, container_truncation

__all__ = [
    "AUTO_SEQUENTIAL_FRAMES",
    "BACKENDS",
    "VIDEO_EXTENSIONS",
    "VideoFile",
    "auto_backend",
    "available_backends",
    "default_backend",
    "open_video",
    "read_frames",
]

BACKENDS = ("decord", "pyav")
# Clips ending before this frame decode faster sequentially (PyAV) than by decord's seeks; see the module docstring.
AUTO_SEQUENTIAL_FRAMES = 300
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v", ".mpg", ".mpeg", ".flv", ".wmv", ".3gp")


def available_backends() -> list[str]:
    """The installed decoding backends, preferred first."""
    found = []
    if importlib.util.find_spec("decord") is not None:
        found.append("decord")
    if importlib.util.find_spec("av") is not None:
        found.append("pyav")
    return found


def default_backend() -> str:
    """decord when installed, else PyAV."""
    found = available_backends()
    if not found:
        raise ImportError("no video decoder installed: pip install decord (x86-64) or av (PyAV)")
    return found[0]


def auto_backend(last_frame: int) -> str:
    """The backend ``"auto"`` uses for a clip whose last frame index is ``last_frame`` (installed backends only).

    Args:
        last_frame: The largest frame index the clip needs.
    """
    found = available_backends()
    if not found:
        raise ImportError("no video decoder installed: pip install decord (x86-64) or av (PyAV)")
    if "pyav" in found and (last_frame < AUTO_SEQUENTIAL_FRAMES or "decord" not in found):
        return "pyav"
    return found[0]


def _resolve_backend(backend: str) -> str:
    if backend == "auto":
        return default_backend()
    if backend not in BACKENDS:
        raise ValueError(f"video backend must be 'auto' or one of {BACKENDS}, got {backend!r}")
    if backend not in available_backends():
        package = "decord" if backend == "decord" else "av"
        raise ImportError(f"video backend {backend!r} is not installed (pip install {package})")
    return backend


class VideoFile:
    """An open video: its frame count, frame rate and frames by index. Use :func:`open_video` to create one.

    Args:
        path: The video file.
        backend: ``"decord"`` or ``"pyav"``.
        num_threads: Decoder threads (0: the decoder's choice).
    """

    def __init__(self, path: str | os.PathLike, *, backend: str, num_threads: int = 0):
        self.path = Path(path)
        self.backend = backend
        self.num_threads = int(num_threads)
        if not self.path.is_file():
            raise FileNotFoundError(f"no such video file: {self.path}")
        cut = container_truncation(self.path)
        if cut is not None:
            raise TruncatedFileError(cut)
        self.exact_count = backend == "decord"  # decord counts the frames it indexed; PyAV may only estimate
        if backend == "decord":
            import decord

            self._reader = decord.VideoReader(str(self.path), ctx=decord.cpu(0), num_threads=self.num_threads)
            self.num_frames = len(self._reader)
            self.fps = float(self._reader.get_avg_fps())
        else:
            self._reader = None
            self.num_frames, self.fps, self.exact_count = _pyav_probe(self.path, exact=True)
        if self.num_frames <= 0:
            raise ValueError(f"{self.path} has no video frames")

    @property
    def duration(self) -> float:
        """Length in seconds (``num_frames / fps``; NaN when the rate is unknown)."""
        return self.num_frames / self.fps if self.fps > 0 else math.nan

    def get_batch(self, indices: Sequence[int]) -> np.ndarray:
        """Frames at ``indices`` (each in ``[0, num_frames)``), as ``uint8 [N, H, W, 3]`` RGB.

        Args:
            indices: Frame indices in any order; repeats are allowed.
        """
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        if idx.size == 0:
            raise ValueError("get_batch needs at least one frame index")
        if idx.min() < 0 or idx.max() >= self.num_frames:
            raise IndexError(f"frame indices {idx.min()}..{idx.max()} outside 0..{self.num_frames - 1} in {self.path}")
        unique, inverse = np.unique(idx, return_inverse=True)
        if self.backend == "decord":
            frames = _decord_decode(self._reader, unique)
        else:
            frames = _pyav_decode(
                self.path, unique, self.num_threads, promised=self.num_frames if self.exact_count else None
            )
        return frames[inverse]

    def close(self) -> None:
        self._reader = None

    def __enter__(self) -> VideoFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"VideoFile({str(self.path)!r}, backend={self.backend!r}, frames={self.num_frames}, fps={self.fps:.3f})"


def open_video(path: str | os.PathLike, *, backend: str = "auto", num_threads: int = 0) -> VideoFile:
    """Open a video file for frame access.

    Args:
        path: The video file.
        backend: ``"auto"`` (decord, else PyAV), ``"decord"`` or ``"pyav"``.
        num_threads: Decoder threads (0: the decoder's choice; 1 inside data-loader workers avoids oversubscription).
    """
    return VideoFile(path, backend=_resolve_backend(backend), num_threads=num_threads)


def read_frames(
    path: str | os.PathLike,
    indices_fn: Callable[[int, float], np.ndarray],
    *,
    backend: str = "auto",
    num_threads: int = 0,
) -> tuple[np.ndarray, np.ndarray, VideoFile]:
    """Open a video, choose frame indices from its length and rate, and decode them in one batch.

    With ``backend="auto"`` the backend is chosen from the clip's last frame (:func:`auto_backend`), and a file the
    first backend cannot decode is retried with the other before giving up, so a decoder quirk does not cost a
    video.

    Args:
        path: The video file.
        indices_fn: ``f(num_frames, fps) -> int array`` of frame indices (any shape, e.g. ``[views, T]``).
        backend: ``"auto"``, ``"decord"`` or ``"pyav"``.
        num_threads: Decoder threads.

    Returns:
        ``(frames [N, H, W, 3] uint8 for the flattened indices, the indices array, the opened VideoFile)``.
    """
    chosen = _resolve_backend(backend)
    tries = [chosen]
    if backend == "auto" and chosen == "decord" and "pyav" in available_backends():
        tries.append("pyav")
    planned = None
    if Path(path).is_file():
        cut = container_truncation(path)  # before any decoder: a cut file is reported as such, by every backend
        if cut is not None:
            raise TruncatedFileError(cut)
    if len(tries) == 2 and Path(path).is_file():
        # The clip's reach decides the order: probe the header (cheap), draw the indices once, keep them if the
        # decoder that opens the file agrees on its length and rate.
        try:
            n, fps = _pyav_probe(Path(path))
            planned = (n, fps, np.asarray(indices_fn(n, fps), dtype=np.int64))
        except Exception as err:  # a file PyAV cannot probe: decord first, as without the plan
            if _not_a_container(err):
                # FFmpeg found no container at all (text, an empty or cut file): decord, on FFmpeg too, would fail
                # the same way after printing its own error lines, so the file is reported once, from here.
                raise
            planned = None
        if planned is not None and auto_backend(int(planned[2].max())) == "pyav":
            tries = ["pyav", "decord"]
    error: BaseException | None = None
    for name in tries:
        try:
            video = VideoFile(path, backend=name, num_threads=num_threads)
            if planned is not None and planned[0] == video.num_frames and math.isclose(planned[1], video.fps):
                indices = planned[2]
            else:
                indices = np.asarray(indices_fn(video.num_frames, video.fps), dtype=np.int64)
            frames = video.get_batch(indices.reshape(-1))
            video.close()
            return frames, indices, video
        except (FileNotFoundError, TruncatedFileError):  # no other decoder can read what is not there
            raise
        except Exception as err:  # decoders raise their own types (DECORDError, av.error.*, RuntimeError)
            error = error or err
    raise error


# --------------------------------------------------------------------------------------------------- decord


def _decord_decode(reader, unique: np.ndarray) -> np.ndarray:
    """Sorted distinct frames, each reached the cheaper way: decode forward from the current position (skipping the
    colour conversion of unwanted frames), or jump to the key frame before it when one lies ahead.

    ``get_batch`` seeks for every frame, re-decoding from the previous key frame each time: for a clip's frames a
    fraction of a second apart inside one group of pictures that costs more than reading on.
    """
    keys = np.asarray(reader.get_key_indices(), dtype=np.int64)
    reader.seek(0)
    position, frames = 0, []
    for index in unique.tolist():
        key = int(keys[np.searchsorted(keys, index, side="right") - 1]) if keys.size else 0
        if key > position:
            reader.seek_accurate(index)
        elif index > position:
            reader.skip_frames(index - position)
        frame = reader.next().asnumpy()
        if frame.ndim != 3 or frame.shape[-1] != 3 or (frames and frame.shape != frames[0].shape):
            # decord 0.6 mis-copies some row alignments (e.g. 48-pixel-wide video) into wrongly shaped arrays.
            raise RuntimeError(f"decord returned a malformed frame of shape {frame.shape}")
        frames.append(frame)
        position = index + 1
    return np.stack(frames)


# --------------------------------------------------------------------------------------------------- PyAV


def _stream_fps(stream) -> float:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate:
            return float(rate)
    return 0.0


def _not_a_container(err: BaseException) -> bool:
    import av

    return isinstance(err, av.error.InvalidDataError)


def _pyav_probe(path: Path, *, exact: bool = False) -> tuple[int, float] | tuple[int, float, bool]:
    """``(frames, fps)`` from the header; with ``exact``, also whether the count is stated (not estimated)."""
    import av

    with av.open(str(path)) as container:
        if not container.streams.video:
            raise ValueError(f"{path} has no video stream")
        stream = container.streams.video[0]
        fps = _stream_fps(stream)
        if stream.frames:
            found = int(stream.frames), fps, True
        else:
            # Containers without a frame count in the header (mkv, webm): estimate from the duration.
            seconds = None
            if stream.duration is not None and stream.time_base is not None:
                seconds = float(stream.duration * stream.time_base)
            elif container.duration is not None:
                seconds = container.duration / 1_000_000
            if seconds and fps:
                found = max(1, int(round(seconds * fps))), fps, False
            else:
                found = sum(1 for _ in container.decode(stream)), fps, True
    return found if exact else found[:2]


def _allowed_shortfall(promised: int) -> int:
    # Header counts can overshoot the decodable frames by a frame or two (edit lists, a dropped last frame).
    return max(2, promised // 50)


def _pyav_decode(path: Path, unique: np.ndarray, num_threads: int, *, promised: int | None = None) -> np.ndarray:
    """Decode sequentially up to the last wanted frame; frames past the true end repeat the last decoded one.

    With ``promised`` (the header's stated frame count), a stream that ends more than a frame or two before it is
    truncated, and raises instead of repeating its last frame.
    """
    import av

    wanted = {int(i): k for k, i in enumerate(unique.tolist())}
    last = int(unique[-1])
    out: list[np.ndarray | None] = [None] * len(unique)
    count = 0
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        if num_threads > 0:
            stream.codec_context.thread_count = num_threads
        for position, frame in enumerate(container.decode(stream)):
            count = position + 1
            if position in wanted:
                out[wanted[position]] = frame.to_ndarray(format="rgb24")
            if position >= last:
                break
    if promised is not None and count <= last and promised - count > _allowed_shortfall(promised):
        raise TruncatedFileError(f"the video stream promises {promised} frames, {count} decode")
    decoded = [f for f in out if f is not None]
    if not decoded:
        raise ValueError(f"{path}: PyAV decoded no frame up to index {last}")
    # Header frame counts can overshoot the decodable frames by a few; those repeat the last decoded frame.
    return np.stack([f if f is not None else decoded[-1] for f in out])
