"""EAT's full augmentation pipeline as one batch transform: per-sample signal and noise augmentations, batch
resampling, and label mixing once mixing has started.

Paper: Gazneli et al., 2022 (arXiv 2204.11479), Sec. 3.3; the order and probabilities are the original trainer's:

1. per sample, each enabled signal augmentation with probability ``p`` (0.5), in a random order (drawn per batch;
   the original drew it per clip), then one noise from the enabled kinds with probability ``p``;
2. with probability ``resample_p`` (0.5), the batch is resampled by one of ``resample_factors``;
3. from epoch ``mix_start_epoch`` on (0-based; the original's ``epoch > epoch_mix`` with 1-based epochs), with
   probability ``mix_p`` (1.0), one mix chosen at random among the enabled ones.

Every stage can be switched off from the recipe (empty tuples, zero probabilities). The transform plugs into
``miil.core.train.Trainer`` as ``batch_transform``: it maps ``(x, y, ...)`` to ``(x, y, mix)`` with ``mix`` a
:class:`~miil.audio.augment.mix.MixTargets` or ``None``; :meth:`BatchAugment.set_epoch` is called through
:class:`~miil.audio.data.EpochAwareSampler`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..kinds import SIGNAL_KINDS
from ._random import rand, randint, randperm
from .mix import MIX_KINDS, MixTargets, bc_mixup, freq_mix, phase_mix, time_mix
from .noise import NOISE_KINDS, RandomNoise
from .resample import RandomResample
from .signal import (
    RandomCyclicShift,
    RandomGain,
    RandomPolarity,
    RandomSegmentGain,
    RandomTimeMask,
    RandomTimeShift,
)

__all__ = ["AugmentConfig", "BatchAugment", "SIGNAL_KINDS", "WaveformAugment"]


@dataclass(frozen=True)
class AugmentConfig:
    """Which augmentations run and how strongly (the paper's defaults).

    Args:
        signal: Enabled per-sample signal augmentations, from :data:`SIGNAL_KINDS`.
        noise: Enabled noise kinds, from :data:`~miil.audio.augment.noise.NOISE_KINDS` (one is drawn per sample).
        p: Probability of each per-sample augmentation.
        snr_db: ``(low, high)`` SNR of the added noise.
        segment_s: Length in seconds of the time shift range, the time mask and the gain segment.
        gain_range: ``(low, high)`` of the random gains.
        resample_factors: Factors of the batch resampling.
        resample_p: Probability of resampling a batch.
        mix: Enabled mixes, from :data:`~miil.audio.augment.mix.MIX_KINDS`.
        mix_p: Probability of mixing a batch once mixing has started.
        mix_start_epoch: First (0-based) epoch with mixing.
    """

    signal: tuple[str, ...] = SIGNAL_KINDS
    noise: tuple[str, ...] = NOISE_KINDS
    p: float = 0.5
    snr_db: tuple[float, float] = (30.0, 30.0)
    segment_s: float = 0.1
    gain_range: tuple[float, float] = (0.5, 1.3)
    resample_factors: tuple[float, ...] = (0.8, 0.9, 1.1, 1.2)
    resample_p: float = 0.5
    mix: tuple[str, ...] = MIX_KINDS
    mix_p: float = 1.0
    mix_start_epoch: int = 12

    def __post_init__(self):
        for name, given, known in (
            ("signal", self.signal, SIGNAL_KINDS),
            ("noise", self.noise, NOISE_KINDS),
            ("mix", self.mix, MIX_KINDS),
        ):
            unknown = [k for k in given if k not in known]
            if unknown:
                raise ValueError(f"unknown {name} augmentations {unknown}; known: {', '.join(known)}")

    @classmethod
    def off(cls) -> AugmentConfig:
        """Everything disabled (the no-augmentation baseline)."""
        return cls(signal=(), noise=(), resample_factors=(), resample_p=0.0, mix=(), mix_p=0.0)


class WaveformAugment:
    """The per-sample stage: signal augmentations in a random order, then one noise.

    Args:
        config: What to run.
        sample_rate: Sampling rate of the clips (converts the 0.1 s lengths into samples).
    """

    def __init__(self, config: AugmentConfig, *, sample_rate: int):
        seg = max(1, int(config.segment_s * sample_rate))
        low, high = config.gain_range
        factories = {
            "gain": lambda: RandomGain(low=low, high=high, p=config.p),
            "polarity": lambda: RandomPolarity(p=config.p),
            "time_shift": lambda: RandomTimeShift(max_shift=seg, p=config.p),
            "time_mask": lambda: RandomTimeMask(length=seg, p=config.p),
            "segment_gain": lambda: RandomSegmentGain(length=seg, low=low, high=high, p=config.p),
            "cyclic_shift": lambda: RandomCyclicShift(p=config.p),
        }
        self.signal = [factories[k]() for k in config.signal]
        self.noise = (
            RandomNoise(sample_rate=sample_rate, kinds=config.noise, snr_db=config.snr_db, p=config.p)
            if config.noise
            else None
        )

    def __call__(self, x: torch.Tensor, *, generator: torch.Generator | None = None) -> torch.Tensor:
        order = randperm(len(self.signal), generator=generator, device=torch.device("cpu")).tolist()
        for i in order:
            x = self.signal[i](x, generator=generator)
        if self.noise is not None:
            x = self.noise(x, generator=generator)
        return x


class BatchAugment:
    """All of EAT's augmentations as one training-batch transform (see the module docstring).

    Args:
        config: What to run.
        sample_rate: Sampling rate of the clips.
    """

    def __init__(self, config: AugmentConfig, *, sample_rate: int):
        self.config = config
        self.sample_rate = sample_rate
        self.waveform = WaveformAugment(config, sample_rate=sample_rate)
        self.resample = RandomResample(factors=config.resample_factors, p=config.resample_p)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Tell the transform which (0-based) epoch is starting."""
        self.epoch = int(epoch)

    @property
    def mixing(self) -> bool:
        return bool(self.config.mix) and self.config.mix_p > 0 and self.epoch >= self.config.mix_start_epoch

    def mix(
        self, x: torch.Tensor, y: torch.Tensor, *, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, MixTargets | None]:
        """Apply one randomly chosen mix with probability ``mix_p`` (when mixing has started)."""
        cpu = torch.device("cpu")
        if not self.mixing or float(rand(1, generator=generator, device=cpu)) >= self.config.mix_p:
            return x, None
        kind = self.config.mix[int(randint(0, len(self.config.mix), (1,), generator=generator, device=cpu))]
        if kind == "mixup":
            return bc_mixup(x, y, generator=generator)
        if kind == "timemix":
            return time_mix(x, y, generator=generator)
        if kind == "freqmix":
            return freq_mix(x, y, sample_rate=self.sample_rate, generator=generator)
        return phase_mix(x, y, sample_rate=self.sample_rate, generator=generator)

    def __call__(self, batch, *, generator: torch.Generator | None = None):
        """``(x, y, ...)`` -> ``(x_augmented, y, mix_targets_or_None)``."""
        x, y = batch[0], batch[1]
        with torch.no_grad():
            x = self.waveform(x, generator=generator)
            x = self.resample(x, generator=generator)
            x, mix = self.mix(x, y, generator=generator)
        return x, y, mix

    def __repr__(self) -> str:
        return f"BatchAugment({self.config}, sample_rate={self.sample_rate}, epoch={self.epoch})"
