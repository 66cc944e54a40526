"""Anti-aliased strided downsampling of 1-D signals: a fixed triangular blur, then subsampling.

Paper: "End-to-End Audio Strikes Back: Boosting Augmentations Towards An Efficient Audio Classification Network",
Gazneli et al., 2022 (arXiv 2204.11479), Sec. 3.1 (EAT's down-sampling stages). A stride-``d`` stage low-pass
filters every channel with the normalised triangle ``[1, 2, ..., d+1, ..., 2, 1]`` (length ``2d + 1``) before
keeping every ``d``-th sample, the 1-D form of Zhang's anti-aliased CNNs. The filter is fixed: it is kept as a
non-persistent buffer, so it never appears in our checkpoints (the original stored one copy per channel; the
converter checks those copies and drops them).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["AADownsample1d", "triangle_filter"]


def triangle_filter(size: int) -> torch.Tensor:
    """The normalised triangular low-pass filter of odd length ``size``: ``[1, ..., size//2 + 1, ..., 1] / sum``.

    Args:
        size: Filter length (odd, >= 1).
    """
    if size < 1 or size % 2 == 0:
        raise ValueError(f"the blur filter length must be odd and >= 1, got {size}")
    half = torch.arange(1, size // 2 + 2, dtype=torch.float32)
    taps = torch.cat([half, half.flip(0)[1:]])
    return taps / taps.sum()


class AADownsample1d(nn.Module):
    """Depthwise triangular blur with reflection padding, then stride ``stride`` subsampling.

    The output has ``ceil(L / stride)`` samples for an input of ``L`` samples.

    Args:
        channels: Number of channels (the blur is applied to each channel separately).
        stride: Subsampling factor ``d``.
        filter_size: Blur length; the paper's stages use ``2 * stride + 1``.
    """

    def __init__(self, *, channels: int, stride: int, filter_size: int | None = None):
        super().__init__()
        filter_size = 2 * stride + 1 if filter_size is None else filter_size
        self.channels = channels
        self.stride = stride
        self.filter_size = filter_size
        taps = triangle_filter(filter_size)
        self.register_buffer("filter", taps.view(1, 1, -1).repeat(channels, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pad = self.filter_size // 2
        x = F.pad(x, (pad, pad), mode="reflect")
        return F.conv1d(x, self.filter.to(x.dtype), stride=self.stride, groups=self.channels)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, stride={self.stride}, filter_size={self.filter_size}"
