"""STAM's layers: the temporal transformer and the frame-averaging baseline."""

from .frame_average import FrameAverage
from .temporal_transformer import TemporalTransformer, resize_temporal_pos_embed

__all__ = ["FrameAverage", "TemporalTransformer", "resize_temporal_pos_embed"]
