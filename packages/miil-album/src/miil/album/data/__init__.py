"""Album data: the ML-CUFED / CUFED / PEC layouts, K-image sampling, the album dataset and its collate."""

from .dataset import (
    AUGMENTATIONS,
    AlbumDataset,
    album_eval_transform,
    album_train_transform,
    collate_albums,
    collate_named_albums,
)
from .layouts import (
    ML_CUFED_EVENTS,
    AlbumRecord,
    album_classes,
    list_album_images,
    load_event_labels,
    load_importance_scores,
    read_album_list,
    read_cufed,
    read_event_folders,
)
from .sampling import PAD_MODES, eval_album_indices, sample_album_indices, train_album_indices

__all__ = [
    "AUGMENTATIONS",
    "ML_CUFED_EVENTS",
    "PAD_MODES",
    "AlbumDataset",
    "AlbumRecord",
    "album_classes",
    "album_eval_transform",
    "album_train_transform",
    "collate_albums",
    "collate_named_albums",
    "eval_album_indices",
    "list_album_images",
    "load_event_labels",
    "load_importance_scores",
    "read_album_list",
    "read_cufed",
    "read_event_folders",
    "sample_album_indices",
    "train_album_indices",
]
