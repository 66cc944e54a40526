"""The convolutional blocks of EAT's waveform encoder: conv-BN-LeakyReLU, dilated residual block, down block.

Paper: Gazneli et al., 2022 (arXiv 2204.11479), Sec. 3.1. Every convolution reflection-pads its input so a block
keeps the length (the down block then divides it by its stride), and every activation is LeakyReLU(0.2).

- :class:`ConvNormAct1d`: reflection pad, bias-free ``Conv1d``, ``BatchNorm1d``, LeakyReLU.
- :class:`DilatedResBlock1d`: three parallel paths summed: a 1x1 convolution (with bias) as the shortcut, a
  depthwise dilated convolution (temporal context) and a pointwise convolution (channel mixing), each of the last
  two followed by BN and LeakyReLU. The original calls it ``ResBlock1dTF`` (time / frequency paths).
- :class:`DownBlock1d`: a ``(d + 1)``-tap convolution doubling the channels, then
  :class:`~miil.audio.layers.antialias.AADownsample1d` with stride ``d``.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .antialias import AADownsample1d

__all__ = ["ConvNormAct1d", "DilatedResBlock1d", "DownBlock1d", "LEAKY_SLOPE"]

LEAKY_SLOPE = 0.2


class ConvNormAct1d(nn.Module):
    """Reflection padding, bias-free ``Conv1d``, ``BatchNorm1d`` and LeakyReLU(0.2).

    Args:
        in_channels: Input channels.
        out_channels: Output channels.
        kernel_size: Convolution length.
        dilation: Convolution dilation.
        groups: Convolution groups (``in_channels`` for a depthwise convolution).
        padding: Reflection padding on each side; default ``dilation * (kernel_size // 2)`` (same length for odd
            kernels).
    """

    def __init__(
        self,
        *,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        dilation: int = 1,
        groups: int = 1,
        padding: int | None = None,
    ):
        super().__init__()
        self.padding = dilation * (kernel_size // 2) if padding is None else padding
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size, dilation=dilation, groups=groups, bias=False)
        self.bn = nn.BatchNorm1d(out_channels)
        self.act = nn.LeakyReLU(LEAKY_SLOPE, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.padding:
            if x.shape[-1] <= self.padding:
                raise ValueError(
                    f"a signal of {x.shape[-1]} samples is too short for reflection padding of {self.padding} at "
                    "this depth of the network; use longer clips (see EAT.min_length)"
                )
            x = F.pad(x, (self.padding, self.padding), mode="reflect")
        return self.act(self.bn(self.conv(x)))


class DilatedResBlock1d(nn.Module):
    """Shortcut 1x1 convolution + depthwise dilated path + pointwise path, summed.

    Args:
        channels: Channels in and out.
        dilation: Dilation of the depthwise convolution.
        kernel_size: Length of the depthwise convolution (15 in the paper).
    """

    def __init__(self, *, channels: int, dilation: int = 1, kernel_size: int = 15):
        super().__init__()
        self.temporal = ConvNormAct1d(
            in_channels=channels, out_channels=channels, kernel_size=kernel_size, dilation=dilation, groups=channels
        )
        self.pointwise = ConvNormAct1d(in_channels=channels, out_channels=channels, kernel_size=1)
        self.shortcut = nn.Conv1d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The three paths read the same input: out-of-place sums, since the activations are in-place.
        return self.shortcut(x) + self.pointwise(x) + self.temporal(x)


class DownBlock1d(nn.Module):
    """Channel-doubling ``(stride + 1)``-tap convolution, BN, LeakyReLU, then anti-aliased stride ``stride``.

    Args:
        channels: Input channels (the output has ``2 * channels``).
        stride: Down-sampling factor ``d``.
        filter_size: Blur length of the anti-aliased subsampling; the paper uses ``2 * stride + 1``.
    """

    def __init__(self, *, channels: int, stride: int, filter_size: int | None = None):
        super().__init__()
        kernel = stride + 1
        self.conv = ConvNormAct1d(
            in_channels=channels, out_channels=2 * channels, kernel_size=kernel, padding=kernel // 2
        )
        self.blur = AADownsample1d(channels=2 * channels, stride=stride, filter_size=filter_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blur(self.conv(x))
