"""EAT's label-preserving waveform augmentations, batched: each sample draws its own parameters.

Paper: Gazneli et al., 2022 (arXiv 2204.11479), Sec. 3.3 (the ``amp``, ``neg``, ``tshift``, ``tmask``,
``ampsegment`` and ``cycshift`` augmentations). The original applied them one clip at a time in the data-loader
workers; here each transform takes a ``[B, L]`` or ``[B, 1, L]`` batch on any device, applies itself to each
sample with probability ``p`` (0.5 in the paper) and draws every random quantity for all samples at once, from an
optional ``torch.Generator`` (seeded, reproducible) or from torch's global RNG.

Changed from the original: the integer time shift is uniform over ``[-max, max]`` (the original drew only even
shifts), the masked segment is set to zero (the original wrote 1e-6 noise) and the segment of the segment gain
starts anywhere in the clip (the original's started within its first ``length`` samples).
"""

from __future__ import annotations

import torch

from ._random import as_batch, rand, randint, restore

__all__ = [
    "RandomCyclicShift",
    "RandomGain",
    "RandomPolarity",
    "RandomSegmentGain",
    "RandomTimeMask",
    "RandomTimeShift",
    "fractional_delay",
    "integer_delay",
]


def integer_delay(x: torch.Tensor, delay: torch.Tensor, *, cyclic: bool = False) -> torch.Tensor:
    """Delay each row of ``x [B, L]`` by ``delay[b]`` samples (negative: advance), zero-filling or wrapping around.

    Args:
        x: Signals.
        delay: ``[B]`` integer delays.
        cyclic: Wrap around (circular shift) instead of zero-filling.
    """
    n = x.shape[-1]
    src = torch.arange(n, device=x.device).unsqueeze(0) - delay.long().unsqueeze(1)
    if cyclic:
        return x.gather(1, src.remainder(n))
    valid = (src >= 0) & (src < n)
    return x.gather(1, src.clamp(0, n - 1)) * valid


def fractional_delay(x: torch.Tensor, delay: torch.Tensor) -> torch.Tensor:
    """Delay each row of ``x [B, L]`` by a fraction of a sample with a linear phase in the FFT domain (circular).

    Args:
        x: Signals.
        delay: ``[B]`` delays in samples.
    """
    n = x.shape[-1]
    spec = torch.fft.rfft(x.float(), dim=-1)
    omega = 2 * torch.pi * torch.arange(spec.shape[-1], device=x.device) / n
    phase = torch.polar(torch.ones_like(spec.real), -omega.unsqueeze(0) * delay.float().unsqueeze(1))
    return torch.fft.irfft(spec * phase, n=n, dim=-1).to(x.dtype)


class _PerSample:
    """Base: apply ``_apply(x[mask], generator)`` to the samples chosen with probability ``p``."""

    def __init__(self, p: float):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"{type(self).__name__}: p must be in [0, 1], got {p}")
        self.p = p

    def _apply(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        raise NotImplementedError

    def __call__(self, x: torch.Tensor, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """Augment a batch ``[B, L]`` or ``[B, 1, L]``; returns a new tensor of the same shape."""
        flat, shape = as_batch(x)
        chosen = rand(flat.shape[0], generator=generator, device=flat.device) < self.p
        out = flat.clone()
        if chosen.any():
            out[chosen] = self._apply(flat[chosen], generator)
        return restore(out, shape)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


class RandomGain(_PerSample):
    """Multiply by a gain drawn from ``U(low, high)`` (``amp``).

    Args:
        low: Smallest gain.
        high: Largest gain.
        p: Probability per sample.
    """

    def __init__(self, *, low: float = 0.5, high: float = 1.3, p: float = 0.5):
        super().__init__(p)
        self.low, self.high = low, high

    def _apply(self, x, generator):
        gain = self.low + (self.high - self.low) * rand(x.shape[0], generator=generator, device=x.device)
        return x * gain.to(x.dtype).unsqueeze(1)


class RandomPolarity(_PerSample):
    """Flip the sign of the waveform (``neg``, a 180-degree phase shift).

    Args:
        p: Probability per sample.
    """

    def __init__(self, *, p: float = 0.5):
        super().__init__(p)

    def _apply(self, x, generator):
        return -x


class RandomTimeShift(_PerSample):
    """Shift by a whole number of samples in ``[-max_shift, max_shift]`` (zero fill) plus a fraction in
    ``[-0.5, 0.5]`` rounded to 0.01 (FFT phase) (``tshift``).

    Args:
        max_shift: Largest integer shift in samples (0.1 s in the paper: ``int(0.1 * sample_rate)``).
        fractional: Also apply the fractional part.
        p: Probability per sample.
    """

    def __init__(self, *, max_shift: int, fractional: bool = True, p: float = 0.5):
        super().__init__(p)
        if max_shift < 0:
            raise ValueError(f"max_shift must be >= 0, got {max_shift}")
        self.max_shift, self.fractional = int(max_shift), fractional

    def _apply(self, x, generator):
        b = x.shape[0]
        shift = randint(-self.max_shift, self.max_shift + 1, (b,), generator=generator, device=x.device)
        out = integer_delay(x, shift)
        if self.fractional:
            frac = torch.round(100 * (rand(b, generator=generator, device=x.device) - 0.5)) / 100
            out = fractional_delay(out, frac)
        return out


class RandomTimeMask(_PerSample):
    """Zero a segment of ``length`` samples at a random position (``tmask``).

    Args:
        length: Segment length in samples (0.1 s in the paper).
        p: Probability per sample.
    """

    def __init__(self, *, length: int, p: float = 0.5):
        super().__init__(p)
        self.length = int(length)

    def _apply(self, x, generator):
        n = x.shape[-1]
        m = min(self.length, n)
        start = randint(0, n - m + 1, (x.shape[0],), generator=generator, device=x.device)
        t = torch.arange(n, device=x.device).unsqueeze(0)
        inside = (t >= start.unsqueeze(1)) & (t < (start + m).unsqueeze(1))
        return x.masked_fill(inside, 0.0)


class RandomSegmentGain(_PerSample):
    """Multiply a random segment of ``length`` samples by a gain from ``U(low, high)`` (``ampsegment``).

    Args:
        length: Segment length in samples (0.1 s in the paper).
        low: Smallest gain.
        high: Largest gain.
        p: Probability per sample.
    """

    def __init__(self, *, length: int, low: float = 0.5, high: float = 1.3, p: float = 0.5):
        super().__init__(p)
        self.length, self.low, self.high = int(length), low, high

    def _apply(self, x, generator):
        b, n = x.shape
        m = min(self.length, n)
        start = randint(0, n - m + 1, (b,), generator=generator, device=x.device)
        gain = self.low + (self.high - self.low) * rand(b, generator=generator, device=x.device)
        t = torch.arange(n, device=x.device).unsqueeze(0)
        inside = (t >= start.unsqueeze(1)) & (t < (start + m).unsqueeze(1))
        return torch.where(inside, x * gain.to(x.dtype).unsqueeze(1), x)


class RandomCyclicShift(_PerSample):
    """Rotate the clip by a random number of samples in ``[0, L)`` (``cycshift``).

    Args:
        p: Probability per sample.
    """

    def __init__(self, *, p: float = 0.5):
        super().__init__(p)

    def _apply(self, x, generator):
        shift = randint(0, x.shape[-1], (x.shape[0],), generator=generator, device=x.device)
        return integer_delay(x, shift, cyclic=True)
