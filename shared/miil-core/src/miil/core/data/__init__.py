"""Data: image datasets, MIIL multi-label transforms, unreadable-file handling and embedded real data."""

from .datasets import (
    IMAGE_EXTENSIONS,
    ImageFolderDataset,
    ImageTargetsDataset,
    MultiLabelCSVDataset,
    PathEscapeError,
    resolve_under_root,
    write_multilabel_csv,
)
from .embedded import DigitsDataset, digits_pil_images, load_digits_split
from .transforms import (
    CutoutPIL,
    SquishResize,
    floor_posterize_bits,
    multilabel_eval_transform,
    multilabel_train_transform,
    rand_augment,
    timm_augment_ops,
)
from .unreadable import (
    Skipped,
    SkippingCollate,
    UnreadableFileError,
    UnreadableFileWarning,
    UnreadablePolicy,
    describe_read_error,
    skip_unreadable_collate,
)

__all__ = [
    "IMAGE_EXTENSIONS",
    "CutoutPIL",
    "DigitsDataset",
    "ImageFolderDataset",
    "ImageTargetsDataset",
    "MultiLabelCSVDataset",
    "PathEscapeError",
    "Skipped",
    "SkippingCollate",
    "SquishResize",
    "UnreadableFileError",
    "UnreadableFileWarning",
    "UnreadablePolicy",
    "describe_read_error",
    "digits_pil_images",
    "floor_posterize_bits",
    "load_digits_split",
    "multilabel_eval_transform",
    "multilabel_train_transform",
    "rand_augment",
    "resolve_under_root",
    "skip_unreadable_collate",
    "timm_augment_ops",
    "write_multilabel_csv",
]
