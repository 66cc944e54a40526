"""Video I/O for STAM: decoding (decord or PyAV, chosen per clip), clip sampling, frame transforms, encoding."""

from .encode import write_video
from .reader import (
    AUTO_SEQUENTIAL_FRAMES,
    BACKENDS,
    VIDEO_EXTENSIONS,
    VideoFile,
    auto_backend,
    available_backends,
    default_backend,
    open_video,
    read_frames,
)
from .sampling import SAMPLING_MODES, SHORT_VIDEO_POLICIES, ClipSampling, sample_frame_indices
from .transforms import CROP_POLICIES, VideoTransform

__all__ = [
    "AUTO_SEQUENTIAL_FRAMES",
    "BACKENDS",
    "CROP_POLICIES",
    "SAMPLING_MODES",
    "SHORT_VIDEO_POLICIES",
    "VIDEO_EXTENSIONS",
    "ClipSampling",
    "VideoFile",
    "VideoTransform",
    "auto_backend",
    "available_backends",
    "default_backend",
    "open_video",
    "read_frames",
    "sample_frame_indices",
    "write_video",
]
