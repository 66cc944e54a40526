import math

import numpy as np
import pytest
import scipy.signal
import torch

from miil.audio.augment import (
    MIX_KINDS,
    NOISE_KINDS,
    AugmentConfig,
    BatchAugment,
    MixTargets,
    RandomCyclicShift,
    RandomGain,
    RandomNoise,
    RandomPolarity,
    RandomResample,
    RandomSegmentGain,
    RandomTimeMask,
    RandomTimeShift,
    SincResampler,
    WaveformAugment,
    bc_mixup,
    colored_noise,
    fractional_delay,
    freq_mix,
    integer_delay,
    phase_mix,
    snr_db,
    time_mix,
)

SR = 8000


def _batch(b=6, n=4000, seed=0):
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(n) / SR
    freqs = 200 + 600 * torch.rand(b, 1, generator=g)
    x = 0.3 * torch.sin(2 * math.pi * freqs * t) + 0.05 * torch.randn(b, n, generator=g)
    return x.unsqueeze(1)  # [B, 1, L]


ALL = [
    lambda: RandomGain(p=0.5),
    lambda: RandomPolarity(p=0.5),
    lambda: RandomTimeShift(max_shift=800, p=0.5),
    lambda: RandomTimeMask(length=800, p=0.5),
    lambda: RandomSegmentGain(length=800, p=0.5),
    lambda: RandomCyclicShift(p=0.5),
    lambda: RandomNoise(sample_rate=SR, p=0.9),
    lambda: RandomResample(p=1.0),
    lambda: WaveformAugment(AugmentConfig(), sample_rate=SR),
]


@pytest.mark.parametrize("make", ALL, ids=lambda f: type(f()).__name__)
def test_seeded_reproducibility_and_shape(make):
    x = _batch()
    aug = make()
    a = aug(x, generator=torch.Generator().manual_seed(1))
    b = aug(x, generator=torch.Generator().manual_seed(1))
    c = aug(x, generator=torch.Generator().manual_seed(2))
    assert a.shape == x.shape and torch.equal(a, b)
    assert not torch.equal(a, c)
    assert torch.equal(x, _batch())  # the input is never modified in place
    torch.manual_seed(5)  # the global RNG works too
    d = aug(x)
    torch.manual_seed(5)
    assert torch.equal(d, aug(x))


def test_probability_zero_and_one():
    x = _batch()
    g = torch.Generator().manual_seed(0)
    assert torch.equal(RandomGain(p=0.0)(x, generator=g), x)
    assert torch.equal(RandomPolarity(p=1.0)(x, generator=g), -x)
    gains = RandomGain(low=0.5, high=1.3, p=1.0)(x, generator=g)[:, 0, 0] / x[:, 0, 0]
    assert ((gains >= 0.5) & (gains <= 1.3)).all()
    with pytest.raises(ValueError):
        RandomGain(p=1.5)


def test_per_sample_choice_is_independent():
    x = torch.ones(4000, 8)
    out = RandomPolarity(p=0.5)(x, generator=torch.Generator().manual_seed(0))
    flipped = (out[:, 0] < 0).float().mean()
    assert 0.45 < flipped < 0.55
    assert torch.equal(out, out[:, :1].expand_as(out))  # one decision per sample


def test_integer_and_fractional_shifts():
    x = torch.arange(1.0, 11.0).repeat(2, 1)
    out = integer_delay(x, torch.tensor([3, -2]))
    assert out[0].tolist() == [0, 0, 0, 1, 2, 3, 4, 5, 6, 7]
    assert out[1].tolist() == [3, 4, 5, 6, 7, 8, 9, 10, 0, 0]
    assert integer_delay(x, torch.tensor([3, 0]), cyclic=True)[0].tolist() == [8, 9, 10, 1, 2, 3, 4, 5, 6, 7]
    # A fractional delay of a periodic sine is the analytic delayed sine.
    n, k = 256, 5
    t = torch.arange(n, dtype=torch.float64)
    s = torch.sin(2 * math.pi * k * t / n).unsqueeze(0)
    delayed = fractional_delay(s, torch.tensor([0.37]))
    assert torch.allclose(delayed[0], torch.sin(2 * math.pi * k * (t - 0.37) / n), atol=1e-6)


def test_time_shift_moves_content_by_at_most_max_shift():
    x = torch.zeros(16, 1000)
    x[:, 500] = 1.0
    out = RandomTimeShift(max_shift=100, fractional=False, p=1.0)(x, generator=torch.Generator().manual_seed(0))
    peaks = out.argmax(-1)
    assert ((peaks >= 400) & (peaks <= 600)).all() and len(set(peaks.tolist())) > 5
    assert torch.allclose(out.sum(-1), torch.ones(16))


def test_time_mask_and_segment_gain_touch_exactly_one_segment():
    x = torch.ones(8, 1000)
    g = torch.Generator().manual_seed(0)
    masked = RandomTimeMask(length=100, p=1.0)(x, generator=g)
    assert ((masked == 0).sum(-1) == 100).all()
    zeros = (masked == 0).int()
    assert ((zeros[:, 1:] - zeros[:, :-1]).abs().sum(-1) <= 2).all()  # one contiguous run
    seg = RandomSegmentGain(length=100, low=0.5, high=0.9, p=1.0)(x, generator=g)
    assert ((seg != 1).sum(-1) == 100).all() and (seg <= 1).all()
    starts = (seg != 1).int().argmax(-1)
    assert starts.max() > 100  # anywhere in the clip, not only its first segment


def test_cyclic_shift_is_a_rotation():
    x = torch.randn(5, 300)
    out = RandomCyclicShift(p=1.0)(x, generator=torch.Generator().manual_seed(0))
    for row, src in zip(out, x):
        shifts = [s for s in range(300) if torch.equal(torch.roll(src, s), row)]
        assert len(shifts) == 1


@pytest.mark.parametrize("kind", [k for k in NOISE_KINDS if k != "phase"])
@pytest.mark.parametrize("target", [10.0, 30.0])
def test_noise_snr_within_half_a_db(kind, target):
    x = _batch(b=8)
    noise = RandomNoise(sample_rate=SR, kinds=(kind,), snr_db=(target, target), p=1.0)
    out = noise(x, generator=torch.Generator().manual_seed(3))
    measured = snr_db(x[:, 0], out[:, 0])
    assert (measured - target).abs().max() < 0.5, measured


def test_noise_colours_have_the_right_spectral_slope():
    slopes = {}
    for name, exponent in [("white", 0), ("pink", -1), ("red", -2), ("blue", 1), ("violet", 2)]:
        w = colored_noise(64, 4096, exponent=exponent, generator=torch.Generator().manual_seed(0))
        assert torch.allclose(w.pow(2).mean(-1), torch.ones(64), atol=1e-4)
        psd = torch.fft.rfft(w).abs().pow(2).mean(0)[1:]
        f = torch.arange(1, psd.shape[0] + 1, dtype=torch.float64)
        slopes[name] = float(np.polyfit(np.log(f[10:].numpy()), np.log(psd[10:].double().numpy()), 1)[0])
    for name, exponent in [("white", 0), ("pink", -1), ("red", -2), ("blue", 1), ("violet", 2)]:
        assert abs(slopes[name] - exponent) < 0.1, slopes


def test_phase_noise_keeps_the_signal_close_and_one_noise_per_sample():
    x = _batch()
    out = RandomNoise(sample_rate=SR, kinds=("phase",), p=1.0)(x, generator=torch.Generator().manual_seed(0))
    assert not torch.equal(out, x)
    assert (snr_db(x[:, 0], out[:, 0]) > 20).all()
    with pytest.raises(ValueError, match="unknown noise"):
        RandomNoise(sample_rate=SR, kinds=("brown",))


@pytest.mark.parametrize("factor", [0.8, 0.9, 1.1, 1.2])
def test_sinc_resampler_matches_scipy_polyphase(factor):
    t = np.arange(4000) / SR
    x = np.sin(2 * np.pi * 440 * t) + 0.5 * np.sin(2 * np.pi * 1234.5 * t)
    r = SincResampler.from_factor(factor)
    ours = r(torch.tensor(x, dtype=torch.float32).unsqueeze(0))[0].numpy()
    ref = scipy.signal.resample_poly(x, r.up, r.down, window=("kaiser", 14.0))
    assert ours.shape == ref.shape == (round(4000 * factor),)
    assert np.abs(ours - ref)[200:-200].max() < 1e-4


def test_random_resample_keeps_length_and_changes_pitch():
    t = torch.arange(4000) / SR
    x = torch.sin(2 * math.pi * 500 * t).repeat(4, 1)
    out = RandomResample(factors=(1.2,), p=1.0)(x, generator=torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    peak = torch.fft.rfft(out[0]).abs().argmax() * SR / 4000
    assert abs(peak - 500 / 1.2) < 5  # played back at the same rate: lower by the factor
    shorter = RandomResample(factors=(0.8,), p=1.0)(x, generator=torch.Generator().manual_seed(0))
    assert torch.count_nonzero(shorter[:, 3300:]) == 0  # zero-padded tail
    assert torch.equal(RandomResample(p=0.0)(x), x)


def test_bc_mixup_follows_the_paper_equations():
    x = _batch(b=5)
    x[1] *= 4  # different loudness
    y = torch.arange(5)
    gen = torch.Generator().manual_seed(0)
    mixed, mix = bc_mixup(x, y, generator=gen)
    g2 = torch.Generator().manual_seed(0)
    idx = torch.randperm(5, generator=g2)
    r = 0.1 + 0.9 * torch.rand(5, generator=g2)
    gain = 10 * torch.log10((x[:, 0] ** 2).mean(-1).clamp_min(1e-5))
    p = 1 / (1 + 10 ** ((gain - gain[idx]) / 20) * (1 - r) / r)
    expected = (p[:, None] * x[:, 0] + (1 - p[:, None]) * x[idx, 0]) / torch.sqrt(p**2 + (1 - p) ** 2)[:, None]
    assert torch.allclose(mixed[:, 0], expected, atol=1e-6)
    assert torch.equal(mix.targets_b, y[idx]) and torch.allclose(mix.lam, p)
    soft = mix.soft(5)
    assert torch.allclose(soft.sum(1), torch.ones(5))  # label weights p and 1 - p sum to one


def test_mixed_label_targets_as_specified():
    mix = MixTargets(torch.tensor([0, 1, 2]), torch.tensor([1, 1, 0]), torch.tensor([0.6, 0.95, 0.89]))
    bce = mix.bce(3)
    assert bce.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 1]]  # partner counts only when lam < 0.9
    soft = mix.soft(3)
    assert torch.allclose(soft, torch.tensor([[0.6, 0.4, 0], [0, 1.0, 0], [0.11, 0, 0.89]]))
    multi = MixTargets(torch.tensor([[1.0, 0, 1]]), torch.tensor([[0.0, 1, 1]]), torch.tensor([0.5]))
    assert multi.bce(3).tolist() == [[1, 1, 1]]


def test_time_mix_takes_the_partner_for_one_minus_lam_of_the_clip():
    x = torch.arange(6).float().view(6, 1, 1).expand(6, 1, 1000).clone()
    out, mix = time_mix(x, torch.arange(6), generator=torch.Generator().manual_seed(0))
    own = (out[:, 0] == torch.arange(6).float().unsqueeze(1)).float().mean(-1)
    moved = mix.targets_b != mix.targets_a
    assert ((mix.lam >= 0.5) & (mix.lam <= 1)).all()
    assert torch.allclose(own[moved], mix.lam[moved], atol=2e-3)
    assert torch.allclose(mix.soft(6).sum(1), torch.ones(6))


def test_freq_and_phase_mix():
    x = _batch()
    y = torch.arange(6)
    out, mix = freq_mix(x, y, sample_rate=SR, generator=torch.Generator().manual_seed(0))
    assert out.shape == x.shape and ((mix.lam >= 0.5) & (mix.lam <= 1)).all()
    same = mix.targets_a == mix.targets_b
    assert torch.allclose(out[same], x[same], atol=1e-4)  # mixing with itself is the identity
    out, mix = phase_mix(x, y, sample_rate=SR, generator=torch.Generator().manual_seed(0))
    assert ((mix.lam >= 0.5) & (mix.lam <= 1)).all()  # label weight lam / 2 + 1/2
    assert torch.isfinite(out).all() and out.shape == x.shape


def test_pipeline_switches_and_mixing_start():
    x, y = _batch(), torch.arange(6)
    off = BatchAugment(AugmentConfig.off(), sample_rate=SR)
    xo, yo, mix = off((x, y))
    assert torch.equal(xo, x) and mix is None
    only_mix = AugmentConfig(signal=(), noise=(), resample_p=0.0, mix=("timemix",), mix_start_epoch=2)
    aug = BatchAugment(only_mix, sample_rate=SR)
    aug.set_epoch(1)
    assert aug((x, y))[2] is None
    aug.set_epoch(2)
    out, _, mix = aug((x, y), generator=torch.Generator().manual_seed(0))
    assert isinstance(mix, MixTargets) and not torch.equal(out, x)
    full = BatchAugment(AugmentConfig(mix_start_epoch=0), sample_rate=SR)
    outs = [full((x, y), generator=torch.Generator().manual_seed(s)) for s in range(8)]
    assert all(o[0].shape == x.shape and torch.isfinite(o[0]).all() for o in outs)
    assert {type(o[2]) for o in outs} == {MixTargets}
    with pytest.raises(ValueError, match="unknown mix"):
        AugmentConfig(mix=("cutmix",))
    assert set(MIX_KINDS) == {"mixup", "timemix", "freqmix", "phmix"}
