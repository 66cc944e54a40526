"""Layers more than one miil package is built from."""

from .cls_transformer import (
    ClsEncoderLayer,
    ClsTransformer,
    check_token_mask,
    convert_original_aggregator,
    original_aggregator_rules,
    rename_legacy_encoder_keys,
    resize_pos_embed,
)

__all__ = [
    "ClsEncoderLayer",
    "ClsTransformer",
    "check_token_mask",
    "convert_original_aggregator",
    "original_aggregator_rules",
    "rename_legacy_encoder_keys",
    "resize_pos_embed",
]
