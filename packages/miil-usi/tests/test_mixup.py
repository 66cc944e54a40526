import random

import numpy as np
import pytest
import torch
from timm.data import Mixup

from miil.usi import KDMixup


def _seed(s):
    random.seed(s)
    np.random.seed(s)
    torch.manual_seed(s)


@pytest.mark.parametrize("seed", range(4))
def test_images_and_labels_match_timm_mixup(seed):
    x = torch.rand(6, 3, 16, 16)
    y = torch.tensor([0, 1, 2, 3, 4, 0])
    kw = dict(mixup_alpha=0.8, cutmix_alpha=1.0, prob=1.0, switch_prob=0.5, mode="batch", num_classes=5)
    _seed(seed)
    x_ref, y_ref = Mixup(label_smoothing=0.0, **kw)(x.clone(), y)
    _seed(seed)
    x_our, y_our, _ = KDMixup(**kw).mix(x.clone(), y)
    torch.testing.assert_close(x_our, x_ref)
    torch.testing.assert_close(y_our, y_ref)


@pytest.mark.parametrize("mode", ["batch", "elem", "pair"])
def test_teacher_distributions_are_mixed_like_the_labels(mode):
    g = torch.Generator().manual_seed(0)
    y = torch.tensor([0, 1, 2, 3, 4, 5, 6, 7])  # no sample shares its label with its flip partner
    teacher = torch.softmax(torch.randn(8, 8, generator=g) * 3, -1)
    mixer = KDMixup(mixup_alpha=0.8, cutmix_alpha=1.0, mode=mode, num_classes=8)
    _seed(1)
    _, soft, mixed = mixer.mix(torch.rand(8, 3, 8, 8), y, teacher.log())
    lam = soft[torch.arange(8), y].unsqueeze(1)  # the lambda each sample got
    expected = lam * teacher + (1 - lam) * teacher.flip(0)
    torch.testing.assert_close(mixed.exp(), expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(mixed.exp().sum(-1), torch.ones(8))


def test_without_mixing_targets_are_one_hot_and_teacher_untouched():
    mixer = KDMixup(mixup_alpha=0.0, cutmix_alpha=0.0, num_classes=4, label_smoothing=0.1)
    x = torch.rand(3, 3, 4, 4)
    t = torch.log_softmax(torch.randn(3, 4), -1)
    x2, soft, t2 = mixer.mix(x.clone(), torch.tensor([0, 3, 1]), t)
    torch.testing.assert_close(x2, x)
    assert t2 is t
    torch.testing.assert_close(soft[0], torch.tensor([0.925, 0.025, 0.025, 0.025]))


@pytest.mark.parametrize("mode", ["batch", "elem", "pair"])
def test_odd_batches_mix_consistently(mode):
    """A skipped unreadable file leaves an odd batch: images, labels and teacher distributions still agree."""
    g = torch.Generator().manual_seed(0)
    y = torch.tensor([0, 1, 2, 3, 4, 5, 6])
    teacher = torch.softmax(torch.randn(7, 8, generator=g) * 3, -1)
    x = torch.rand(7, 3, 8, 8, generator=g)
    mixer = KDMixup(mixup_alpha=0.8, cutmix_alpha=0.0, mode=mode, num_classes=8)
    _seed(2)
    mixed_x, soft, mixed = mixer.mix(x.clone(), y, teacher.log())
    lam = soft[torch.arange(7), y].unsqueeze(1)
    partner = {"batch": torch.arange(6, -1, -1)}.get(mode, torch.tensor([5, 4, 3, 2, 1, 0, 6]))
    torch.testing.assert_close(mixed.exp(), lam * teacher + (1 - lam) * teacher[partner], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(soft.sum(-1), torch.ones(7))
    torch.testing.assert_close(mixed_x, lam[:, :, None, None] * x + (1 - lam[:, :, None, None]) * x[partner])
    assert lam[3 if mode == "batch" else 6].item() == pytest.approx(1.0)  # the unpaired sample keeps its label
