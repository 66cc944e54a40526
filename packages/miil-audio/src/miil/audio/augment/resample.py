"""Band-limited resampling of waveform batches on any device, and EAT's random batch resampling augmentation.

Paper: Gazneli et al., 2022 (arXiv 2204.11479), Sec. 3.3: with probability 0.5 a whole batch is resampled by a
factor from {0.8, 0.9, 1.1, 1.2} (played back at the original rate it is slower/lower or faster/higher) and cut or
zero-padded back to the clip length. The original used a Kaiser-windowed sinc resampler on the GPU;
:class:`SincResampler` is such a resampler written as one strided ``conv1d``.

For a rational rate change ``up / down`` (in lowest terms), output sample ``m`` sits at input time ``m * down / up``;
writing ``m = q * up + j`` the output of phase ``j`` in block ``q`` is an FIR filter over the inputs around
``q * down``. The ``up`` phase filters are the rows of the convolution kernel and the convolution's stride is
``down``. The low-pass cut-off is ``rolloff * min(1, up / down)`` of the input Nyquist frequency.
"""

from __future__ import annotations

import math
from fractions import Fraction

import torch
import torch.nn.functional as F

from ._random import as_batch, rand, randint, restore

__all__ = ["RandomResample", "SincResampler"]


class SincResampler:
    """Resample ``[B, L]`` or ``[B, 1, L]`` signals by ``up / down`` with a Kaiser-windowed sinc filter.

    Args:
        up: Output rate (any unit; only the ratio matters).
        down: Input rate.
        zeros: Zero crossings of the sinc on each side (filter length / quality).
        rolloff: Cut-off as a fraction of the lower Nyquist frequency (anti-aliasing margin).
        beta: Kaiser window shape.
    """

    def __init__(self, up: int, down: int, *, zeros: int = 64, rolloff: float = 0.95, beta: float = 14.0):
        if up <= 0 or down <= 0:
            raise ValueError(f"up and down must be positive, got {up} / {down}")
        g = math.gcd(int(up), int(down))
        self.up, self.down = int(up) // g, int(down) // g
        self.zeros, self.rolloff, self.beta = zeros, rolloff, beta
        self.cutoff = rolloff * min(1.0, self.up / self.down)
        self.width = math.ceil(zeros / self.cutoff)
        self._kernels: dict[tuple, torch.Tensor] = {}

    @classmethod
    def from_factor(cls, factor: float, **kwargs) -> SincResampler:
        """A resampler changing the length by ``factor`` (e.g. 1.1 = 11 / 10).

        Args:
            factor: Output length / input length.
            **kwargs: Filter options of the constructor.
        """
        ratio = Fraction(factor).limit_denominator(1000)
        return cls(ratio.numerator, ratio.denominator, **kwargs)

    def kernel(self, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        """The ``[up, 1, 2 * width + down]`` polyphase filter bank."""
        key = (device, dtype)
        if key not in self._kernels:
            taps = torch.arange(2 * self.width + self.down, dtype=torch.float64) - self.width
            phase = torch.arange(self.up, dtype=torch.float64).unsqueeze(1) * self.down / self.up
            tau = taps.unsqueeze(0) - phase  # input offset of each tap from each output's position
            span = self.zeros / self.cutoff
            inside = tau.abs() <= span
            ratio = (1 - (tau / span).clamp(-1, 1) ** 2).sqrt()
            window = torch.special.i0(self.beta * ratio) / torch.special.i0(
                torch.tensor(self.beta, dtype=torch.float64)
            )
            h = self.cutoff * torch.sinc(self.cutoff * tau) * window * inside
            self._kernels[key] = h.unsqueeze(1).to(device=device, dtype=dtype)
        return self._kernels[key]

    def output_length(self, length: int) -> int:
        return -(-length * self.up // self.down)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.up == self.down:
            return x.clone()
        flat, shape = as_batch(x)
        n = flat.shape[-1]
        blocks = -(-n // self.down)
        weight = self.kernel(flat.device, torch.float32)
        right = (blocks - 1) * self.down + weight.shape[-1] - n - self.width
        padded = F.pad(flat.float().unsqueeze(1), (self.width, max(right, 0)))
        y = F.conv1d(padded, weight, stride=self.down)  # [B, up, blocks]
        y = y.transpose(1, 2).reshape(flat.shape[0], -1)[:, : self.output_length(n)]
        return restore(y.to(x.dtype), shape)

    def __repr__(self) -> str:
        return f"SincResampler(up={self.up}, down={self.down}, zeros={self.zeros}, rolloff={self.rolloff})"


class RandomResample:
    """With probability ``p``, resample the whole batch by one factor from ``factors``, then restore the length.

    A longer result is cropped at a random offset per sample, a shorter one zero-padded on the right.

    Args:
        factors: Length factors to choose from (0.8, 0.9, 1.1, 1.2 in the paper).
        p: Probability per batch.
        zeros: Sinc zero crossings of the resampling filter.
    """

    def __init__(self, *, factors: tuple[float, ...] = (0.8, 0.9, 1.1, 1.2), p: float = 0.5, zeros: int = 64):
        if any(f <= 0 for f in factors):
            raise ValueError(f"resampling factors must be positive, got {factors}")
        self.factors = tuple(factors)
        self.p = p
        self.resamplers = [SincResampler.from_factor(f, zeros=zeros) for f in self.factors]

    def __call__(self, x: torch.Tensor, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """Augment a batch ``[B, L]`` or ``[B, 1, L]``; returns a tensor of the same shape."""
        cpu = torch.device("cpu")
        if not self.factors or float(rand(1, generator=generator, device=cpu)) >= self.p:
            return x
        which = int(randint(0, len(self.factors), (1,), generator=generator, device=cpu))
        flat, shape = as_batch(x)
        n = flat.shape[-1]
        y = self.resamplers[which](flat)
        if y.shape[-1] < n:
            y = F.pad(y, (0, n - y.shape[-1]))
        elif y.shape[-1] > n:
            start = randint(0, y.shape[-1] - n + 1, (y.shape[0],), generator=generator, device=y.device)
            idx = start.unsqueeze(1) + torch.arange(n, device=y.device).unsqueeze(0)
            y = y.gather(1, idx)
        return restore(y, shape)

    def __repr__(self) -> str:
        return f"RandomResample(factors={self.factors}, p={self.p})"
