"""Datasets of the CSL paper's formats: OpenImages V6 and LVIS (COCO-2014 and the digit mosaics: ``miil.core.data``)."""

from .base import MultiLabelImageDataset, SparseLabels
from .lvis import LVISFederatedDataset, read_lvis_labels
from .openimages import (
    OPENIMAGES_V6_TRAINABLE_CLASSES,
    OpenImagesDataset,
    read_openimages_classes,
    read_openimages_labels,
)

__all__ = [
    "OPENIMAGES_V6_TRAINABLE_CLASSES",
    "LVISFederatedDataset",
    "MultiLabelImageDataset",
    "OpenImagesDataset",
    "SparseLabels",
    "read_lvis_labels",
    "read_openimages_classes",
    "read_openimages_labels",
]
