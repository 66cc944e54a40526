"""The digit mosaics (``miil.core.data.mosaic``): plans, rendering, long tail, balance and the dataset."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from miil.core.data import DigitMosaicDataset, load_digits_split, make_digit_mosaics, plan_digit_mosaics


def test_mosaics_are_deterministic_and_labelled_by_their_digits():
    images, targets = make_digit_mosaics("test", 60, grid=3, cell=10, max_digits=3, seed=3)
    again, same = make_digit_mosaics("test", 60, grid=3, cell=10, max_digits=3, seed=3)
    assert images.shape == (60, 30, 30) and images.dtype == np.uint8 and targets.shape == (60, 10)
    assert np.array_equal(images, again) and np.array_equal(targets, same)
    counts = targets.sum(1)
    assert counts.min() >= 1 and counts.max() <= 3
    digits, labels = load_digits_split("test")
    plans = plan_digit_mosaics("test", 60, grid=3, cell=10, max_digits=3, seed=3)
    for image, target, plan in zip(images, targets, plans):
        assert sorted({d.label for d in plan}) == np.flatnonzero(target).tolist()
        for d in plan:
            assert labels[d.digit] == d.label and 0 <= d.top <= 22 and 0 <= d.left <= 22
            assert np.array_equal(image[d.top : d.top + 8, d.left : d.left + 8], digits[d.digit])
    with pytest.raises(ValueError, match="cell must be"):
        make_digit_mosaics("test", 1, cell=6)
    with pytest.raises(ValueError, match="max_digits"):
        make_digit_mosaics("train", 5, grid=2, max_digits=5)


def test_long_tail_and_balanced_classes():
    _, targets = make_digit_mosaics("train", 400, max_digits=4, decay=0.7, seed=0)
    freq = targets.mean(0)
    assert freq[0] > 3 * freq[9]  # long-tailed classes
    plans = plan_digit_mosaics("train", 90, num_classes=20, balanced=True, max_digits=2, seed=1)
    counts = np.bincount([d.label for p in plans for d in p], minlength=20)
    assert counts.max() - counts.min() <= 1  # dealt from shuffled rounds
    with pytest.raises(ValueError, match="class_weights"):
        plan_digit_mosaics("train", 2, class_weights=[1.0] * 3)


def test_dataset_tensors_and_defaults():
    ds = DigitMosaicDataset("test", num_images=50, channels=3, cell=10)
    x, y = ds[0]
    assert x.shape == (3, 30, 30) and float(x.min()) >= 0.0 and float(x.max()) <= 1.0
    assert torch.equal(x[0], x[2]) and torch.equal(y, ds.targets[0])
    y[0] = 5.0  # a sample's target is a copy
    assert ds.targets[0, 0] != 5.0
    assert len(DigitMosaicDataset("test")) == 1000
    with pytest.raises(ValueError, match="channels"):
        DigitMosaicDataset("test", num_images=2, channels=2)
