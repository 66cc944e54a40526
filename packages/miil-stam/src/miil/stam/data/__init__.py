"""Datasets for STAM: Kinetics (folders or CSV), UCF-101 splits, generic folders and CSV, demo clips, samples."""

from .kinetics import KineticsDataset, read_kinetics_csv
from .moving_images import MOTION_CLASSES, make_motion_videos, motion_frames
from .sample_videos import sample_video_paths
from .ucf101 import UCF101Dataset, read_ucf101_classes
from .videos import (
    UnreadableVideoError,
    VideoCSVDataset,
    VideoDataset,
    VideoFolderDataset,
    class_indices,
    list_video_inputs,
    list_videos,
    load_clip,
    sorted_class_names,
)

__all__ = [
    "MOTION_CLASSES",
    "KineticsDataset",
    "UCF101Dataset",
    "UnreadableVideoError",
    "VideoCSVDataset",
    "VideoDataset",
    "VideoFolderDataset",
    "class_indices",
    "list_video_inputs",
    "list_videos",
    "load_clip",
    "make_motion_videos",
    "motion_frames",
    "read_kinetics_csv",
    "read_ucf101_classes",
    "sample_video_paths",
    "sorted_class_names",
]
