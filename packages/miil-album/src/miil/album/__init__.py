"""miil-album: PETA, photo-album event recognition with a transformer over the album's images, and image importance.

Paper: "PETA: Photo Albums Event Recognition using Transformers Attention", Glaser, Ben-Baruch, Sharir, Zamir, Noy,
Zelnik-Manor, 2021 (arXiv 2109.12499). Original code: github.com/Alibaba-MIIL/PETA.

- :class:`PETA`: any timm backbone per photo -> :class:`AlbumTransformer` (CLS token, 6 post-norm layers, 8 heads,
  optional position embedding, key-padding masks for albums of any size) -> multi-label head.
- :class:`MeanOfPredictions`: the baseline, the mean of the per-photo predictions.
- Image importance: :func:`cls_attention`, :func:`image_importance`, :func:`attention_rollout`,
  :func:`importance_spearman`; per-album JSON reports with :func:`album_report`.
- Data: ``miil.album.data`` (ML-CUFED / CUFED / PEC layouts, K = 32 sampling, dataset, collate).
- Training with the core engine (ASL, mAP, top-1): :func:`build_model`, :func:`make_trainer`, recipes in
  ``miil.album.recipes``; :func:`load_peta_checkpoint` converts the original weights strictly,
  :func:`load_peta_aggregator_checkpoint` the original aggregator alone.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from typing import TYPE_CHECKING

from miil.core.lazy import lazy_exports

__version__ = importlib.metadata.version("miil-album")  # written once, in pyproject.toml

# name -> submodule; names are imported on first use (PEP 562), so `import` of the package loads no torch.
_EXPORTS = {
    "AlbumEncoderLayer": ".aggregator",
    "AlbumTransformer": ".aggregator",
    "convert_peta_aggregator_state_dict": ".convert",
    "convert_peta_state_dict": ".convert",
    "load_peta_aggregator_checkpoint": ".convert",
    "load_peta_checkpoint": ".convert",
    "peta_classes": ".convert",
    "album_report": ".export",
    "write_album_reports": ".export",
    "ImageEncoder": ".image_encoder",
    "attention_rollout": ".importance",
    "cls_attention": ".importance",
    "image_importance": ".importance",
    "importance_spearman": ".importance",
    "EventMeter": ".metrics",
    "top1_hit_rate": ".metrics",
    "embed_album_images": ".models",
    "MeanOfPredictions": ".models",
    "PETA": ".models",
    "PETARecipe": ".recipes",
    "RECIPES": ".recipes",
    "album_datasets": ".train",
    "build_model": ".train",
    "make_loss": ".train",
    "make_trainer": ".train",
}

_SUBMODULES = {
    "aggregator",
    "convert",
    "export",
    "image_encoder",
    "importance",
    "metrics",
    "models",
    "recipes",
    "train",
}

if TYPE_CHECKING:
    from .aggregator import AlbumEncoderLayer, AlbumTransformer
    from .convert import (
        convert_peta_aggregator_state_dict,
        convert_peta_state_dict,
        load_peta_aggregator_checkpoint,
        load_peta_checkpoint,
        peta_classes,
    )
    from .export import album_report, write_album_reports
    from .image_encoder import ImageEncoder
    from .importance import attention_rollout, cls_attention, image_importance, importance_spearman
    from .metrics import EventMeter, top1_hit_rate
    from .models import PETA, MeanOfPredictions, embed_album_images
    from .recipes import RECIPES, PETARecipe
    from .train import album_datasets, build_model, make_loss, make_trainer


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, _SUBMODULES)

__all__ = [
    "PETA",
    "RECIPES",
    "AlbumEncoderLayer",
    "AlbumTransformer",
    "EventMeter",
    "ImageEncoder",
    "MeanOfPredictions",
    "PETARecipe",
    "album_datasets",
    "album_report",
    "attention_rollout",
    "build_model",
    "cls_attention",
    "convert_peta_aggregator_state_dict",
    "convert_peta_state_dict",
    "embed_album_images",
    "image_importance",
    "importance_spearman",
    "load_peta_aggregator_checkpoint",
    "load_peta_checkpoint",
    "make_loss",
    "make_trainer",
    "peta_classes",
    "top1_hit_rate",
    "write_album_reports",
]
