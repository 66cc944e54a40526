"""STAM models and the converter of the original checkpoints."""

from .convert import convert_original_checkpoint, convert_original_temporal, to_original_layout
from .stam import STAM, STAM_PRESETS, create_stam, preset_frame_rate

__all__ = [
    "STAM",
    "STAM_PRESETS",
    "convert_original_checkpoint",
    "convert_original_temporal",
    "create_stam",
    "preset_frame_rate",
    "to_original_layout",
]
