"""The layers EAT is made of (arXiv 2204.11479, Sec. 3)."""

from .aggregator import TransformerAggregator, interpolate_pos_embed
from .antialias import AADownsample1d, triangle_filter
from .blocks import ConvNormAct1d, DilatedResBlock1d, DownBlock1d

__all__ = [
    "AADownsample1d",
    "ConvNormAct1d",
    "DilatedResBlock1d",
    "DownBlock1d",
    "TransformerAggregator",
    "interpolate_pos_embed",
    "triangle_filter",
]
