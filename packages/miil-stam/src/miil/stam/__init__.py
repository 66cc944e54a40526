"""miil-stam: STAM, "An Image is Worth 16x16 Words, What is a Video Worth?" (arXiv 2103.13915).

A timm ViT embeds every frame; a temporal transformer with its own CLS token and learnable temporal position
embedding aggregates the frames; a linear head classifies the video. With it: the original and TSN-style clip
sampling on decord (PyAV fallback) that never drops short videos, Kinetics / UCF-101 / CSV datasets, the recipes of
the paper's table, a strict converter of the original checkpoints and the ``miil stam`` command.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from typing import TYPE_CHECKING

from miil.core.lazy import lazy_exports

__version__ = importlib.metadata.version("miil-stam")  # written once, in pyproject.toml

# name -> submodule; names are imported on first use (PEP 562), so `import` of the package loads no torch.
_EXPORTS = {
    "KineticsDataset": ".data",
    "list_video_inputs": ".data",
    "list_videos": ".data",
    "load_clip": ".data",
    "make_motion_videos": ".data",
    "MOTION_CLASSES": ".data",
    "sample_video_paths": ".data",
    "UCF101Dataset": ".data",
    "UnreadableVideoError": ".data",
    "VideoCSVDataset": ".data",
    "VideoDataset": ".data",
    "VideoFolderDataset": ".data",
    "FrameAverage": ".layers",
    "resize_temporal_pos_embed": ".layers",
    "TemporalTransformer": ".layers",
    "convert_original_checkpoint": ".models",
    "convert_original_temporal": ".models",
    "create_stam": ".models",
    "preset_frame_rate": ".models",
    "STAM": ".models",
    "STAM_PRESETS": ".models",
    "to_original_layout": ".models",
    "build_dataset": ".pipeline",
    "data_source": ".pipeline",
    "DataSource": ".pipeline",
    "evaluate_videos": ".pipeline",
    "load_trained": ".pipeline",
    "load_weights": ".pipeline",
    "train": ".pipeline",
    "TrainedSTAM": ".pipeline",
    "DATA_FORMATS": ".recipes",
    "RECIPES": ".recipes",
    "STAM16": ".recipes",
    "STAM32": ".recipes",
    "STAM64": ".recipes",
    "STAM8": ".recipes",
    "STAMRecipe": ".recipes",
    "auto_backend": ".video",
    "available_backends": ".video",
    "ClipSampling": ".video",
    "open_video": ".video",
    "read_frames": ".video",
    "sample_frame_indices": ".video",
    "VideoFile": ".video",
    "VideoTransform": ".video",
    "write_video": ".video",
}

_SUBMODULES = {
    "commands",
    "data",
    "layers",
    "models",
    "pipeline",
    "recipes",
    "video",
}

if TYPE_CHECKING:
    from .data import (
        MOTION_CLASSES,
        KineticsDataset,
        UCF101Dataset,
        UnreadableVideoError,
        VideoCSVDataset,
        VideoDataset,
        VideoFolderDataset,
        list_video_inputs,
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
    from .pipeline import (
        DataSource,
        TrainedSTAM,
        build_dataset,
        data_source,
        evaluate_videos,
        load_trained,
        load_weights,
        train,
    )
    from .recipes import DATA_FORMATS, RECIPES, STAM8, STAM16, STAM32, STAM64, STAMRecipe
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


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, _SUBMODULES)

__all__ = [
    "DATA_FORMATS",
    "TrainedSTAM",
    "load_weights",
    "data_source",
    "list_video_inputs",
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
