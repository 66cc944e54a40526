"""Datasets of the CSL paper's formats (COCO-2014, OpenImages V6, LVIS) and the embedded digit mosaics."""

from .base import MultiLabelImageDataset, SparseLabels
from .coco import CocoMultiLabelDataset, read_coco_labels
from .lvis import LVISFederatedDataset, read_lvis_labels
from .mosaic import DigitMosaicDataset, make_digit_mosaics
from .openimages import (
    OPENIMAGES_V6_TRAINABLE_CLASSES,
    OpenImagesDataset,
    read_openimages_classes,
    read_openimages_labels,
)

__all__ = [
    "OPENIMAGES_V6_TRAINABLE_CLASSES",
    "CocoMultiLabelDataset",
    "DigitMosaicDataset",
    "LVISFederatedDataset",
    "MultiLabelImageDataset",
    "OpenImagesDataset",
    "SparseLabels",
    "make_digit_mosaics",
    "read_coco_labels",
    "read_lvis_labels",
    "read_openimages_classes",
    "read_openimages_labels",
]
