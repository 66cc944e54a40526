"""Datasets for ML-Decoder: MS-COCO 2014, Pascal VOC, NUS-WIDE zero-shot and the embedded digit mosaics.

The core's ``MultiLabelCSVDataset`` (``miil.core.data``) covers the generic CSV format.
"""

from .coco import CocoMultiLabelDataset, read_coco_instances
from .mosaic import DigitMosaicDataset, make_digit_mosaics
from .nus_wide import NusWideDataset, load_word_vectors, parse_label_list, read_nus_wide_csv
from .voc import VOC_CLASSES, VOCDataset, read_voc_split

__all__ = [
    "VOC_CLASSES",
    "CocoMultiLabelDataset",
    "DigitMosaicDataset",
    "NusWideDataset",
    "VOCDataset",
    "load_word_vectors",
    "make_digit_mosaics",
    "parse_label_list",
    "read_coco_instances",
    "read_nus_wide_csv",
    "read_voc_split",
]
