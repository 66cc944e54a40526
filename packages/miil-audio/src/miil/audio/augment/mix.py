"""EAT's label-mixing augmentations: BC-learning mixup with gain, time mix, frequency mix and phase mix.

Paper: Gazneli et al., 2022 (arXiv 2204.11479), Sec. 3.3. Each mix pairs every clip with a random partner of the
batch and returns the mixed waveforms with :class:`MixTargets` ``(targets_a, targets_b, lam)``, ``lam`` being the
weight of the clip's own label:

- ``mixup`` (Tokozume et al.'s between-class learning): with ``r ~ U(0.1, 1)`` and the clips' levels ``G1, G2`` in
  dB, ``p = 1 / (1 + 10 ** ((G1 - G2) / 20) * (1 - r) / r)`` and ``x = (p x1 + (1 - p) x2) / sqrt(p^2 + (1-p)^2)``,
  so that the *perceived* ratio is ``r`` whatever the loudness; ``lam = p``;
- ``timemix``: a cut-mix in time: ``lam ~ U(0.5, 1)``, the last (or, half of the time, the first)
  ``(1 - lam) L`` samples come from the partner;
- ``freqmix``: the same in frequency, on an STFT (window chosen at random): the top or bottom ``(1 - lam)`` of
  the bins come from the partner, ``lam ~ U(0.5, 1)``;
- ``phmix``: magnitudes are kept, phases interpolated ``lam * phi1 + (1 - lam) * phi2`` with ``lam ~ U(0, 1)``;
  the label weight is ``lam / 2 + 1/2``.

The loss of the paper for mixed batches is :func:`miil.audio.losses.mixed_label_bce`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..kinds import MIX_KINDS
from ._random import as_batch, rand, randint, randperm, restore
from .stft import istft, stft, stft_settings

__all__ = ["MIX_KINDS", "MixTargets", "bc_mixup", "freq_mix", "phase_mix", "time_mix"]


@dataclass
class MixTargets:
    """Targets of a mixed batch: each clip's own targets, its partner's, and the weight ``lam`` of its own.

    Targets are ``[B]`` class indices or ``[B, C]`` multi-hot vectors.
    """

    targets_a: torch.Tensor
    targets_b: torch.Tensor
    lam: torch.Tensor

    def _hot(self, t: torch.Tensor, num_classes: int) -> torch.Tensor:
        return F.one_hot(t.long(), num_classes).float() if t.dim() == 1 else t.float()

    def soft(self, num_classes: int) -> torch.Tensor:
        """Soft labels ``lam * a + (1 - lam) * b`` (rows sum to 1 for single-label targets)."""
        lam = self.lam.float().unsqueeze(1)
        return lam * self._hot(self.targets_a, num_classes) + (1 - lam) * self._hot(self.targets_b, num_classes)

    def bce(self, num_classes: int, *, threshold: float = 0.9) -> torch.Tensor:
        """The paper's BCE targets: ``clamp(a + b * [lam < threshold], max=1)``.

        Args:
            num_classes: Number of classes.
            threshold: The partner's label counts only when its own weight ``lam`` is below this.
        """
        keep_b = (self.lam < threshold).float().unsqueeze(1)
        return (self._hot(self.targets_a, num_classes) + self._hot(self.targets_b, num_classes) * keep_b).clamp(max=1)

    def to(self, device: torch.device) -> MixTargets:
        return MixTargets(self.targets_a.to(device), self.targets_b.to(device), self.lam.to(device))


def _partner(b: int, generator, device) -> torch.Tensor:
    return randperm(b, generator=generator, device=device)


def bc_mixup(
    x: torch.Tensor, targets: torch.Tensor, *, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, MixTargets]:
    """Between-class mixing that accounts for the clips' gains (see the module docstring).

    Args:
        x: ``[B, L]`` or ``[B, 1, L]`` waveforms.
        targets: ``[B]`` or ``[B, C]`` targets.
        generator: Random generator.
    """
    flat, shape = as_batch(x)
    flat = flat.float()
    b, dev = flat.shape[0], flat.device
    idx = _partner(b, generator, dev)
    r = 0.1 + 0.9 * rand(b, generator=generator, device=dev)
    gain = 10 * torch.log10(flat.pow(2).mean(-1).clamp_min(1e-5))
    p = 1 / (1 + torch.pow(10.0, (gain - gain[idx]) / 20) * (1 - r) / r)
    pc = p.unsqueeze(1)
    mixed = (pc * flat + (1 - pc) * flat[idx]) / torch.sqrt(pc**2 + (1 - pc) ** 2)
    return restore(mixed.to(x.dtype), shape), MixTargets(targets, targets[idx], p)


def time_mix(
    x: torch.Tensor, targets: torch.Tensor, *, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, MixTargets]:
    """Replace the start or the end of each clip with its partner's (``lam ~ U(0.5, 1)`` kept).

    Args:
        x: ``[B, L]`` or ``[B, 1, L]`` waveforms.
        targets: ``[B]`` or ``[B, C]`` targets.
        generator: Random generator.
    """
    flat, shape = as_batch(x)
    b, n = flat.shape
    dev = flat.device
    idx = _partner(b, generator, dev)
    lam = 0.5 + 0.5 * rand(b, generator=generator, device=dev)
    cut = (n * (1 - lam)).long()
    at_end = rand(b, generator=generator, device=dev) < 0.5
    t = torch.arange(n, device=dev).unsqueeze(0)
    take = torch.where(at_end.unsqueeze(1), t >= (n - cut).unsqueeze(1), t < cut.unsqueeze(1))
    mixed = torch.where(take, flat[idx], flat)
    return restore(mixed, shape), MixTargets(targets, targets[idx], lam)


def _pick_stft(sample_rate: int, generator) -> tuple[int, int]:
    settings = stft_settings(sample_rate)
    return settings[int(randint(0, len(settings), (1,), generator=generator, device=torch.device("cpu")))]


def _spectra_and_partners(x: torch.Tensor, sample_rate: int, generator):
    """STFT of each clip (with randomly drawn sizes) and a random partner for each: the start of the STFT mixes."""
    flat, shape = as_batch(x)
    n_fft, hop = _pick_stft(sample_rate, generator)
    spec = stft(flat.float(), n_fft, hop)
    return spec, _partner(flat.shape[0], generator, flat.device), (n_fft, hop), shape


def freq_mix(
    x: torch.Tensor, targets: torch.Tensor, *, sample_rate: int, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, MixTargets]:
    """Replace the top or bottom band of each clip's STFT with its partner's (``lam ~ U(0.5, 1)`` kept).

    Args:
        x: ``[B, L]`` or ``[B, 1, L]`` waveforms.
        targets: ``[B]`` or ``[B, C]`` targets.
        sample_rate: Sampling rate (selects the STFT sizes).
        generator: Random generator.
    """
    spec, idx, (n_fft, hop), shape = _spectra_and_partners(x, sample_rate, generator)
    b, n, dev = idx.shape[0], shape[-1], idx.device
    lam = 0.5 + 0.5 * rand(b, generator=generator, device=dev)
    bins = spec.shape[1]
    cut = (bins * (1 - lam)).long()
    at_top = rand(b, generator=generator, device=dev) < 0.5
    f = torch.arange(bins, device=dev).unsqueeze(0)
    take = torch.where(at_top.unsqueeze(1), f >= (bins - cut).unsqueeze(1), f < cut.unsqueeze(1)).unsqueeze(2)
    mixed = istft(torch.where(take, spec[idx], spec), n_fft, hop, n)
    return restore(mixed.to(x.dtype), shape), MixTargets(targets, targets[idx], lam)


def phase_mix(
    x: torch.Tensor, targets: torch.Tensor, *, sample_rate: int, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, MixTargets]:
    """Keep each clip's STFT magnitude and interpolate its phase towards its partner's (label weight ``lam/2+1/2``).

    Args:
        x: ``[B, L]`` or ``[B, 1, L]`` waveforms.
        targets: ``[B]`` or ``[B, C]`` targets.
        sample_rate: Sampling rate (selects the STFT sizes).
        generator: Random generator.
    """
    spec, idx, (n_fft, hop), shape = _spectra_and_partners(x, sample_rate, generator)
    b, n, dev = idx.shape[0], shape[-1], idx.device
    lam = rand(b, generator=generator, device=dev)
    phase = spec.angle()
    lam3 = lam.view(b, 1, 1)
    mixed_phase = lam3 * phase + (1 - lam3) * phase[idx]
    mixed = istft(torch.polar(spec.abs(), mixed_phase), n_fft, hop, n)
    return restore(mixed.to(x.dtype), shape), MixTargets(targets, targets[idx], lam / 2 + 0.5)
