"""Datasets for ML-Decoder: Pascal VOC and NUS-WIDE zero-shot.

MS-COCO 2014 (``CocoMultiLabelDataset``), the generic CSV format (``MultiLabelCSVDataset``) and the embedded digit
mosaics come from ``miil.core.data``; :mod:`miil.mldecoder.miniature` writes miniature VOC and NUS-WIDE copies.
"""

from .nus_wide import NusWideDataset, load_word_vectors, parse_label_list, read_nus_wide_csv
from .voc import VOC_CLASSES, VOCDataset, read_voc_split

__all__ = [
    "VOC_CLASSES",
    "NusWideDataset",
    "VOCDataset",
    "load_word_vectors",
    "parse_label_list",
    "read_nus_wide_csv",
    "read_voc_split",
]
