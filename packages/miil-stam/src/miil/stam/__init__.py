"""miil-stam: STAM, "An Image is Worth 16x16 Words, What is a Video Worth?" (arXiv 2103.13915).

A timm ViT embeds every frame; a temporal transformer with its own CLS token and learnable temporal position
embedding aggregates the frames; a linear head classifies the video. With it: the original and TSN-style clip
sampling on decord (PyAV fallback) that never drops short videos, Kinetics / UCF-101 / CSV datasets, the recipes of
the paper's table, a strict converter of the original checkpoints and the ``miil stam`` command.
"""

import importlib.metadata

from .data import (
    MOTION_CLASSES,
    KineticsDataset,
    UCF101Dataset,
    UnreadableVideoError,
    VideoCSVDataset,
    VideoDataset,
    VideoFolderDataset,
    list_videos,
    load_clip,
    make_motion_videos,
    sample_video_paths,
)
from .layers import FrameAverage, TemporalTransformer, resize_temporal_pos_embed
from .models import (
    STAM,
    STAM_PRESETS,
    convert_original_checkpoint,
    convert_original_temporal,
    create_stam,
    preset_frame_rate,
    to_original_layout,
)
from .pipeline import DataSource, build_dataset, evaluate_videos, load_trained, train
from .recipes import RECIPES, STAM8, STAM16, STAM32, STAM64, STAMRecipe
from .video import (
    ClipSampling,
    VideoFile,
    VideoTransform,
    auto_backend,
    available_backends,
    open_video,
    read_frames,
    sample_frame_indices,
    write_video,
)

__version__ = importlib.metadata.version("miil-stam")  # written once, in pyproject.toml

__all__ = [
    "MOTION_CLASSES",
    "RECIPES",
    "STAM",
    "STAM8",
    "STAM16",
    "STAM32",
    "STAM64",
    "STAM_PRESETS",
    "ClipSampling",
    "DataSource",
    "FrameAverage",
    "KineticsDataset",
    "STAMRecipe",
    "TemporalTransformer",
    "UCF101Dataset",
    "UnreadableVideoError",
    "VideoCSVDataset",
    "VideoDataset",
    "VideoFile",
    "VideoFolderDataset",
    "VideoTransform",
    "auto_backend",
    "available_backends",
    "build_dataset",
    "convert_original_checkpoint",
    "convert_original_temporal",
    "create_stam",
    "evaluate_videos",
    "list_videos",
    "load_clip",
    "load_trained",
    "make_motion_videos",
    "open_video",
    "preset_frame_rate",
    "read_frames",
    "resize_temporal_pos_embed",
    "sample_frame_indices",
    "sample_video_paths",
    "to_original_layout",
    "train",
    "write_video",
]
