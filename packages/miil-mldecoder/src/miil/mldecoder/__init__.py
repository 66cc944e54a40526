"""miil-mldecoder: ML-Decoder, a scalable and versatile classification head, on any timm backbone.

Paper: "ML-Decoder: Scalable and Versatile Classification Head", T. Ridnik, G. Sharir, A. Ben-Cohen, E. Ben-Baruch,
A. Noy, 2021 (arXiv 2111.12933; WACV 2023). Reference code: https://github.com/Alibaba-MIIL/ML_Decoder.

- :class:`MLDecoder`: the head (query groups, decoder layer without self-attention, group fully-connected pooling).
- :class:`ZeroShotMLDecoder`, :class:`QueryAugmentation`, :func:`zsl_metrics`: word-vector queries for unseen classes.
- :func:`add_ml_decoder_head`, :func:`create_model`: the head on any timm family (ResNet, TResNet, ConvNeXt,
  EfficientNet, ViT, Swin, ...).
- :func:`convert_state_dict`, :func:`load_converted`: strict converters from the original and timm checkpoints.
- :data:`RECIPES`: the paper's training settings; ``miil mldecoder train|validate|infer|convert`` runs them.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from typing import TYPE_CHECKING

from miil.core.lazy import lazy_exports

__version__ = importlib.metadata.version("miil-mldecoder")  # written once, in pyproject.toml

# name -> submodule; names are imported on first use (PEP 562), so `import` of the package loads no torch.
_EXPORTS = {
    "convert_state_dict": ".convert",
    "detect_layout": ".convert",
    "head_config": ".convert",
    "load_converted": ".convert",
    "load_word_vectors": ".data",
    "NusWideDataset": ".data",
    "VOCDataset": ".data",
    "MLDecoderLayer": ".decoder_layer",
    "QueryCrossAttention": ".decoder_layer",
    "add_ml_decoder_head": ".factory",
    "create_model": ".factory",
    "MLDecoderClassifier": ".factory",
    "group_size": ".group_fc",
    "GroupFC": ".group_fc",
    "MLDecoder": ".ml_decoder",
    "resolve_num_groups": ".ml_decoder",
    "QueryAugmentation": ".query_augment",
    "CocoTResNetL448": ".recipes",
    "CocoTResNetM224": ".recipes",
    "ImageNetResNet50": ".recipes",
    "MLDecoderRecipe": ".recipes",
    "NusWideZslTResNetL224": ".recipes",
    "OpenImagesTResNetM224": ".recipes",
    "RECIPES": ".recipes",
    "ZeroShotMLDecoder": ".zero_shot",
    "load_zsl_split": ".zsl_metrics",
    "ZeroShotMeter": ".zsl_metrics",
    "zsl_metrics": ".zsl_metrics",
}

_SUBMODULES = {
    "convert",
    "data",
    "decoder_layer",
    "factory",
    "group_fc",
    "ml_decoder",
    "query_augment",
    "recipes",
    "zero_shot",
    "zsl_metrics",
}

if TYPE_CHECKING:
    from .convert import convert_state_dict, detect_layout, head_config, load_converted
    from .data import NusWideDataset, VOCDataset, load_word_vectors
    from .decoder_layer import MLDecoderLayer, QueryCrossAttention
    from .factory import MLDecoderClassifier, add_ml_decoder_head, create_model
    from .group_fc import GroupFC, group_size
    from .ml_decoder import MLDecoder, resolve_num_groups
    from .query_augment import QueryAugmentation
    from .recipes import (
        RECIPES,
        CocoTResNetL448,
        CocoTResNetM224,
        ImageNetResNet50,
        MLDecoderRecipe,
        NusWideZslTResNetL224,
        OpenImagesTResNetM224,
    )
    from .zero_shot import ZeroShotMLDecoder
    from .zsl_metrics import ZeroShotMeter, load_zsl_split, zsl_metrics


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, _SUBMODULES, shadowed=("zsl_metrics",))

__all__ = [
    "RECIPES",
    "CocoTResNetL448",
    "CocoTResNetM224",
    "GroupFC",
    "ImageNetResNet50",
    "MLDecoder",
    "MLDecoderClassifier",
    "MLDecoderLayer",
    "MLDecoderRecipe",
    "NusWideDataset",
    "NusWideZslTResNetL224",
    "OpenImagesTResNetM224",
    "QueryAugmentation",
    "QueryCrossAttention",
    "VOCDataset",
    "ZeroShotMLDecoder",
    "ZeroShotMeter",
    "add_ml_decoder_head",
    "convert_state_dict",
    "create_model",
    "detect_layout",
    "group_size",
    "head_config",
    "load_converted",
    "load_word_vectors",
    "load_zsl_split",
    "resolve_num_groups",
    "zsl_metrics",
]
