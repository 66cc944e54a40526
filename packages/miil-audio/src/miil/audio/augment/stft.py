"""The STFT settings EAT's spectral augmentations (phase noise, frequency mix, phase mix) choose from.

Paper: Gazneli et al., 2022 (arXiv 2204.11479), Sec. 3.3. Each application picks one of three window lengths at
random; the lengths depend on the sample rate (the original's tables for 8, 16 and 22.05 kHz). Other rates use
the table of the nearest listed rate scaled to the closest powers of two. Hann windows are used throughout (the
original left some transforms with PyTorch's default rectangular window).
"""

from __future__ import annotations

import math

import torch

__all__ = ["istft", "stft", "stft_settings"]

_TABLES = {
    8000: ((128, 32), (256, 64), (512, 128)),
    16000: ((256, 64), (512, 128), (1024, 256)),
    22050: ((512, 128), (1024, 256), (2048, 1024)),
}


def stft_settings(sample_rate: int) -> tuple[tuple[int, int], ...]:
    """The ``(n_fft, hop)`` pairs for ``sample_rate``.

    Args:
        sample_rate: Sampling rate in Hz.
    """
    if sample_rate in _TABLES:
        return _TABLES[sample_rate]
    ref = min(_TABLES, key=lambda r: abs(math.log(sample_rate / r)))
    scale = 2 ** round(math.log2(sample_rate / ref))
    return tuple((max(16, int(n * scale)), max(4, int(h * scale))) for n, h in _TABLES[ref])


def stft(x: torch.Tensor, n_fft: int, hop: int) -> torch.Tensor:
    """Complex STFT ``[B, n_fft // 2 + 1, frames]`` of ``[B, L]`` signals (Hann window, centred frames)."""
    window = torch.hann_window(n_fft, device=x.device, dtype=x.dtype)
    return torch.stft(x, n_fft=n_fft, hop_length=hop, window=window, center=True, return_complex=True)


def istft(spec: torch.Tensor, n_fft: int, hop: int, length: int) -> torch.Tensor:
    """Inverse of :func:`stft` with ``length`` output samples."""
    window = torch.hann_window(n_fft, device=spec.device, dtype=spec.real.dtype)
    return torch.istft(spec, n_fft=n_fft, hop_length=hop, window=window, center=True, length=length)
