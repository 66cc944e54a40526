"""Datasets of the CSL paper's formats: LVIS here; OpenImages V6 (shared with miil-mldecoder), COCO-2014 and the digit
mosaics live in ``miil.core.data``, whose OpenImages names are re-exported."""

from miil.core.data import (
    OPENIMAGES_V6_TRAINABLE_CLASSES,
    MultiLabelImageDataset,
    OpenImagesDataset,
    SparseLabels,
    read_openimages_classes,
    read_openimages_labels,
)

from .lvis import LVISFederatedDataset, read_lvis_labels

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
