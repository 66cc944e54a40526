"""Video I/O for STAM: decoding (decord, PyAV fallback), clip sampling, frame transforms, encoding."""

from .encode import write_video
from .reader import BACKENDS, VIDEO_EXTENSIONS, VideoFile, available_backends, default_backend, open_video, read_frames
from .sampling import SAMPLING_MODES, SHORT_VIDEO_POLICIES, ClipSampling, sample_frame_indices
from .transforms import CROP_POLICIES, VideoTransform

__all__ = [
    "BACKENDS",
    "CROP_POLICIES",
    "SAMPLING_MODES",
    "SHORT_VIDEO_POLICIES",
    "VIDEO_EXTENSIONS",
    "ClipSampling",
    "VideoFile",
    "VideoTransform",
    "available_backends",
    "default_backend",
    "open_video",
    "read_frames",
    "sample_frame_indices",
    "write_video",
]
