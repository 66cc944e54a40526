"""Clip preparation shared by every EAT dataset: peak normalisation and cropping / zero-padding to a fixed length.

Paper: Gazneli et al., 2022 (arXiv 2204.11479), Sec. 4. Every clip is scaled to a peak of 0.95, then cut to the
recipe's ``seq_len``: a random window when training, zero-padded on the right when shorter. Changed from the
original: evaluation takes the centre window of a long clip (the original cropped at random in validation too, so
its scores changed from run to run).
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["fit_length", "peak_normalize", "windows"]


def peak_normalize(x: np.ndarray | torch.Tensor, peak: float = 0.95):
    """Scale so that ``max |x| == peak``; a silent clip is returned unchanged.

    Args:
        x: Samples.
        peak: Target peak.
    """
    m = float(abs(x).max()) if len(x) else 0.0
    return x if m == 0.0 else x * (peak / m)


def fit_length(
    x: torch.Tensor, seq_len: int, *, random_crop: bool = False, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Crop or right-pad the last dimension of ``x`` to ``seq_len`` samples.

    Args:
        x: ``[..., L]`` samples.
        seq_len: Wanted length.
        random_crop: Take a random window of a longer clip (training); otherwise the centre window.
        generator: Random generator for the crop offset.
    """
    n = x.shape[-1]
    if n == seq_len:
        return x
    if n < seq_len:
        return torch.nn.functional.pad(x, (0, seq_len - n))
    start = (n - seq_len) // 2
    if random_crop:
        start = int(torch.randint(0, n - seq_len + 1, (1,), generator=generator))
    return x[..., start : start + seq_len]


def windows(x: torch.Tensor, seq_len: int) -> torch.Tensor:
    """Cut a clip into model inputs for inference: ``[W, seq_len]``.

    A short clip is zero-padded into one window; a long one is cut into windows of ``seq_len`` with 50 % overlap,
    the last one aligned with the clip's end, so every sample is seen.

    Args:
        x: ``[L]`` samples.
        seq_len: Window length.
    """
    n = x.shape[-1]
    if n <= seq_len:
        return torch.nn.functional.pad(x, (0, seq_len - n)).unsqueeze(0)
    hop = seq_len // 2
    starts = list(range(0, n - seq_len + 1, hop))
    if starts[-1] != n - seq_len:
        starts.append(n - seq_len)
    return torch.stack([x[s : s + seq_len] for s in starts])
