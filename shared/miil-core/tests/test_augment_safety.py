"""Posterize never asks Pillow for 0 bits, and the helpers of the recipe-transform tests find such draws."""

import random

import pytest
import torch
from PIL import Image
from timm.data import create_transform
from timm.data.auto_augment import auto_augment_transform, rand_augment_transform

from miil.core.data import IMAGE_EXTENSIONS, UnreadablePolicy, floor_posterize_bits, rand_augment, timm_augment_ops
from miil.core.testing import (
    IMAGE_MODES,
    DrawPlan,
    assert_image_tensor,
    augment_draw_failures,
    failing_draws,
    normalized_range,
    real_images,
    write_image_folder,
)

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # PIL: palette images with transparency


@pytest.fixture(scope="module")
def probes():
    return [img.convert("RGB") for img in real_images(2, min_side=10, max_side=14, seed=5)]


@pytest.mark.parametrize(
    "make, op",
    [
        (lambda: rand_augment_transform("rand-m9-n2-mstd101", {}), "Posterize"),  # 0 bits below magnitude 2.5
        (lambda: rand_augment_transform("rand-m7-mstd0.5-inc1", {}), "PosterizeIncreasing"),  # 0 bits at 10
        (lambda: auto_augment_transform("v0", {}), "Posterize"),  # ("Posterize", 0.8, 2)
        (lambda: create_transform(32, is_training=True, auto_augment="rand-m9-mstd0.5"), "Posterize"),
    ],
)
def test_timm_draws_of_zero_bits_are_found_and_floored(make, op, probes):
    raw = make()
    found = augment_draw_failures(raw, probes)
    assert found and all(line.startswith(op + " at magnitude") and "bits must be" in line for line in found)
    assert floor_posterize_bits(raw) is raw
    assert augment_draw_failures(raw, probes) == []


def test_floor_changes_only_the_zero_bit_draws():
    raw = rand_augment_transform("rand-m9-n2-mstd101", {})
    original = {op.name: op.level_fn for op in raw.ops}
    floor_posterize_bits(floor_posterize_bits(raw))  # twice: wrapped once
    (post,) = [op for op in raw.ops if op.name == "Posterize"]
    assert post.level_fn.level_fn is original["Posterize"]
    for m in [x / 10 for x in range(0, 101)]:
        bits = original["Posterize"](m, post.hparams)[0]
        assert post.level_fn(m, post.hparams) == (max(1, bits),)
    assert all(op.level_fn is original[op.name] for op in raw.ops if op.name != "Posterize")


def test_rand_augment_is_floored_and_ops_are_found_in_nested_transforms():
    aug = rand_augment("rand-m9-n2-mstd101", img_size=32)
    img = Image.new("RGB", (16, 16), (200, 120, 40))
    (post,) = [op for op in aug.ops if op.name == "Posterize"]
    post.prob, post.magnitude, post.magnitude_std = 1.0, 0.0, 0.0
    out = post(img)  # 0 bits asked: 1 bit kept, every channel thresholded at 128
    assert out.getpixel((0, 0)) == (128, 0, 0)
    timm_tf = create_transform(32, is_training=True, auto_augment="v0")
    names = [op.name for op in timm_augment_ops(timm_tf)]
    assert len(names) == 50 and "Posterize" in names  # 25 sub-policies of two ops inside timm's Compose


def test_real_images_cover_modes_sizes_and_formats(tmp_path):
    images = real_images(24, seed=3, min_side=8, max_side=96)
    assert [img.mode for img in images] == [IMAGE_MODES[i % len(IMAGE_MODES)] for i in range(24)]
    assert images[0].size == (8, 8) and images[1].size == (96, 24) and images[2].size == (24, 96)
    assert all(min(img.size) >= 8 and max(img.size) <= 96 for img in images)
    assert len({img.size for img in images}) > 15
    again = real_images(24, seed=3, min_side=8, max_side=96)
    assert all(a.tobytes() == b.tobytes() for a, b in zip(images, again))
    paths = write_image_folder(tmp_path, ("x", "y"), per_class=12, seed=3, max_side=96)
    assert {p.suffix for p in paths} == {".jpg", ".png", ".webp", ".bmp", ".tiff"} <= set(IMAGE_EXTENSIONS)
    policy = UnreadablePolicy(strict=True)
    assert all(policy.load_image(p).mode == "RGB" for p in paths)


def test_assert_image_tensor_and_normalized_range():
    low, high = normalized_range((0.5, 0.5, 0.5), (0.25, 0.5, 1.0))
    assert torch.allclose(low, torch.tensor([-2.0, -1.0, -0.5], dtype=torch.float64))
    x = torch.zeros(3, 4, 4)
    assert_image_tensor(x, (3, 4, 4), low=low, high=high)
    with pytest.raises(AssertionError, match="shape"):
        assert_image_tensor(x, (3, 4, 5))
    with pytest.raises(AssertionError, match="dtype"):
        assert_image_tensor(x.double(), (3, 4, 4))
    with pytest.raises(AssertionError, match="non-finite"):
        assert_image_tensor(torch.full((3, 4, 4), float("nan")), (3, 4, 4))
    y = x.clone()
    y[2] = -0.6  # below channel 2's -0.5
    with pytest.raises(AssertionError, match="outside"):
        assert_image_tensor(y, (3, 4, 4), low=low, high=high)


def test_draw_plan_and_failing_draws():
    plan = DrawPlan(full=10, repeat=2)
    assert plan.draws("a", "b") == 10 and plan.draws("a", "b") == 2 and plan.draws("a", "c") == 10

    def check(i):
        if random.random() < 0.3:
            raise ValueError("unlucky")

    first = failing_draws(check, 200, seed=7)
    assert first == failing_draws(check, 200, seed=7)  # each draw is seeded: a failure can be replayed
    assert 30 < len(first) < 90 and first[0].startswith("draw ") and "ValueError: unlucky" in first[0]
