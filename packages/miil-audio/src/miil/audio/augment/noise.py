"""EAT's noise augmentations: coloured Gaussian noise, uniform noise, a low-frequency sine and STFT phase noise.

Paper: Gazneli et al., 2022 (arXiv 2204.11479), Sec. 3.3. A sample that is augmented receives *one* noise, chosen
at random among the enabled kinds, at a signal-to-noise ratio drawn from ``snr_db`` (30 dB in the paper, where the
range collapsed to one value). The signal power is the mean square of the whole clip.

Kinds (the original's names in brackets):

- ``white`` (awgn), ``pink`` (apgn, power ~ 1/f), ``red`` (argn, Brownian, ~ 1/f^2), ``blue`` (abgn, ~ f),
  ``violet`` (avgn, ~ f^2): Gaussian noise shaped in the FFT domain;
- ``uniform`` (aun): uniform noise;
- ``sine`` (sine): a sine of about 0-50 Hz with a random phase (hum);
- ``phase`` (phn): the STFT phase is perturbed by ``U(0, s)`` radians, ``s ~ U(0.01, 0.02)``; no SNR applies.

Every additive noise is normalised to exactly the wanted power (zero mean, unit RMS before scaling), so the SNR is
the target one; the original scaled unnormalised noise and added the noise's mean instead of removing it.
"""

from __future__ import annotations

import math

import torch

from ..kinds import NOISE_KINDS
from ._random import as_batch, rand, randint, randn, restore
from .stft import istft, stft, stft_settings

__all__ = ["NOISE_KINDS", "RandomNoise", "colored_noise", "snr_db"]

# Exponent of the power spectral density, ~ f ** exponent.
_COLORS = {"white": 0.0, "pink": -1.0, "red": -2.0, "blue": 1.0, "violet": 2.0}


def _unit_power(w: torch.Tensor) -> torch.Tensor:
    w = w - w.mean(dim=-1, keepdim=True)
    return w / w.pow(2).mean(dim=-1, keepdim=True).sqrt().clamp_min(1e-12)


def colored_noise(
    batch: int, length: int, *, exponent: float, generator: torch.Generator | None = None, device=None
) -> torch.Tensor:
    """Zero-mean, unit-power Gaussian noise ``[batch, length]`` whose power spectrum goes as ``f ** exponent``.

    Args:
        batch: Number of signals.
        length: Samples per signal.
        exponent: 0 white, -1 pink, -2 red, 1 blue, 2 violet.
        generator: Random generator.
        device: Device of the result.
    """
    device = torch.device(device or "cpu")
    w = randn((batch, length), generator=generator, device=device)
    if exponent != 0.0:
        spec = torch.fft.rfft(w, dim=-1)
        k = torch.arange(1, spec.shape[-1] + 1, device=device, dtype=w.dtype)  # DC keeps its level, as the original
        w = torch.fft.irfft(spec * k.pow(exponent / 2), n=length, dim=-1)
    return _unit_power(w)


def snr_db(clean: torch.Tensor, noisy: torch.Tensor) -> torch.Tensor:
    """Per-row signal-to-noise ratio in dB of ``noisy`` against ``clean`` (``[B, L]``)."""
    signal = clean.float().pow(2).mean(-1)
    noise = (noisy.float() - clean.float()).pow(2).mean(-1)
    return 10 * torch.log10(signal / noise)


class RandomNoise:
    """Add one randomly chosen noise per sample, with probability ``p``, at an SNR drawn from ``snr_db``.

    Args:
        sample_rate: Sampling rate (sine frequency, STFT sizes of the phase noise).
        kinds: Enabled kinds, a subset of :data:`NOISE_KINDS`.
        snr_db: ``(low, high)`` SNR range in dB, drawn uniformly per sample.
        p: Probability per sample.
        max_sine_hz: Upper end of the hum frequencies.
        phase_noise: ``(low, high)`` of the phase-noise scale in radians.
    """

    def __init__(
        self,
        *,
        sample_rate: int,
        kinds: tuple[str, ...] = NOISE_KINDS,
        snr_db: tuple[float, float] = (30.0, 30.0),
        p: float = 0.5,
        max_sine_hz: float = 50.0,
        phase_noise: tuple[float, float] = (0.01, 0.02),
    ):
        unknown = [k for k in kinds if k not in NOISE_KINDS]
        if unknown:
            raise ValueError(f"unknown noise kinds {unknown}; known: {', '.join(NOISE_KINDS)}")
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p must be in [0, 1], got {p}")
        low, high = snr_db
        if low > high:
            raise ValueError(f"snr_db must be (low, high) with low <= high, got {snr_db}")
        self.sample_rate = sample_rate
        self.kinds = tuple(kinds)
        self.snr_db = (float(low), float(high))
        self.p = p
        self.max_sine_hz = max_sine_hz
        self.phase_noise = phase_noise

    def _additive(self, x: torch.Tensor, kind: str, generator) -> torch.Tensor:
        b, n = x.shape
        dev = x.device
        if kind in _COLORS:
            return colored_noise(b, n, exponent=_COLORS[kind], generator=generator, device=dev)
        if kind == "uniform":
            return _unit_power(2 * rand((b, n), generator=generator, device=dev) - 1)
        # sine: frequency ~ max_hz * U + 3 * N (Hz), random phase in [0, pi)
        freq = self.max_sine_hz * rand(b, generator=generator, device=dev) + 3 * randn(
            b, generator=generator, device=dev
        )
        phase = math.pi * rand(b, generator=generator, device=dev)
        t = torch.arange(n, device=dev, dtype=torch.float32) / self.sample_rate
        wave = torch.sin(2 * math.pi * freq.unsqueeze(1) * t.unsqueeze(0) + phase.unsqueeze(1))
        return _unit_power(wave)

    def _phase(self, x: torch.Tensor, generator) -> torch.Tensor:
        settings = stft_settings(self.sample_rate)
        n_fft, hop = settings[int(randint(0, len(settings), (1,), generator=generator, device=torch.device("cpu")))]
        spec = stft(x.float(), n_fft, hop)
        lo, hi = self.phase_noise
        scale = lo + (hi - lo) * rand((x.shape[0], 1, 1), generator=generator, device=x.device)
        jitter = scale * rand(spec.shape, generator=generator, device=x.device)
        spec = spec * torch.polar(torch.ones_like(jitter), jitter)
        return istft(spec, n_fft, hop, x.shape[-1]).to(x.dtype)

    def __call__(self, x: torch.Tensor, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """Augment a batch ``[B, L]`` or ``[B, 1, L]``; returns a new tensor of the same shape."""
        flat, shape = as_batch(x)
        b = flat.shape[0]
        if not self.kinds:
            return x.clone()
        chosen = rand(b, generator=generator, device=flat.device) < self.p
        kind_of = randint(0, len(self.kinds), (b,), generator=generator, device=flat.device)
        low, high = self.snr_db
        snr = low + (high - low) * rand(b, generator=generator, device=flat.device)
        out = flat.clone()
        for k, kind in enumerate(self.kinds):
            rows = chosen & (kind_of == k)
            if not rows.any():
                continue
            xs = flat[rows]
            if kind == "phase":
                out[rows] = self._phase(xs, generator)
                continue
            sigma = xs.float().pow(2).mean(-1).sqrt() * torch.pow(10.0, -snr[rows] / 20)
            out[rows] = (xs.float() + sigma.unsqueeze(1) * self._additive(xs, kind, generator)).to(x.dtype)
        return restore(out, shape)

    def __repr__(self) -> str:
        return f"RandomNoise(kinds={self.kinds}, snr_db={self.snr_db}, p={self.p})"
