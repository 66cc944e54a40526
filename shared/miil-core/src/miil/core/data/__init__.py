"""Data: image datasets (folders, CSV, COCO, OpenImages V6 with partial labels), MIIL transforms, unreadable-file
handling, embedded real data."""

from .coco import CocoLabels, CocoMultiLabelDataset, read_coco_labels
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
from .mosaic import DigitMosaicDataset, MosaicDigit, make_digit_mosaics, plan_digit_mosaics
from .openimages import (
    OPENIMAGES_V6_TRAINABLE_CLASSES,
    OpenImagesDataset,
    read_openimages_classes,
    read_openimages_labels,
)
from .partial import MultiLabelImageDataset, SparseLabels
from .transforms import (
    CutoutPIL,
    SquishResize,
    floor_posterize_bits,
    multilabel_eval_transform,
    multilabel_train_transform,
    rand_augment,
    timm_augment_ops,
)
from .truncation import TruncatedFileError, container_truncation
from .unreadable import (
    PartlyRead,
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
    "OPENIMAGES_V6_TRAINABLE_CLASSES",
    "CocoLabels",
    "CocoMultiLabelDataset",
    "CutoutPIL",
    "DigitMosaicDataset",
    "DigitsDataset",
    "ImageFolderDataset",
    "ImageTargetsDataset",
    "MosaicDigit",
    "MultiLabelCSVDataset",
    "MultiLabelImageDataset",
    "OpenImagesDataset",
    "PartlyRead",
    "PathEscapeError",
    "Skipped",
    "SkippingCollate",
    "SparseLabels",
    "SquishResize",
    "TruncatedFileError",
    "UnreadableFileError",
    "UnreadableFileWarning",
    "UnreadablePolicy",
    "container_truncation",
    "describe_read_error",
    "digits_pil_images",
    "floor_posterize_bits",
    "load_digits_split",
    "make_digit_mosaics",
    "multilabel_eval_transform",
    "multilabel_train_transform",
    "plan_digit_mosaics",
    "rand_augment",
    "read_coco_labels",
    "read_openimages_classes",
    "read_openimages_labels",
    "resolve_under_root",
    "skip_unreadable_collate",
    "timm_augment_ops",
    "write_multilabel_csv",
]
