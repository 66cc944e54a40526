"""EAT's augmentations (arXiv 2204.11479, Sec. 3.3) as seeded, batched torch transforms."""

from .mix import MIX_KINDS, MixTargets, bc_mixup, freq_mix, phase_mix, time_mix
from .noise import NOISE_KINDS, RandomNoise, colored_noise, snr_db
from .pipeline import SIGNAL_KINDS, AugmentConfig, BatchAugment, WaveformAugment
from .resample import RandomResample, SincResampler
from .signal import (
    RandomCyclicShift,
    RandomGain,
    RandomPolarity,
    RandomSegmentGain,
    RandomTimeMask,
    RandomTimeShift,
    fractional_delay,
    integer_delay,
)
from .stft import stft_settings

__all__ = [
    "MIX_KINDS",
    "NOISE_KINDS",
    "SIGNAL_KINDS",
    "AugmentConfig",
    "BatchAugment",
    "MixTargets",
    "RandomCyclicShift",
    "RandomGain",
    "RandomNoise",
    "RandomPolarity",
    "RandomResample",
    "RandomSegmentGain",
    "RandomTimeMask",
    "RandomTimeShift",
    "SincResampler",
    "WaveformAugment",
    "bc_mixup",
    "colored_noise",
    "fractional_delay",
    "freq_mix",
    "integer_delay",
    "phase_mix",
    "snr_db",
    "stft_settings",
    "time_mix",
]
