"""Every recipe's clip sampling and frame transforms, built by ``build_dataset`` as ``train`` does, on real clips.

Short videos encoded from real photos and digits (a camera panning over them: wide, tall and square frames, 12 to 72
frames, 8 to 30 fps, so the fixed-fps clips of every recipe run past the end of most of them) are decoded and sampled
with each draw under its own seed; the frame transform also meets frame stacks of real images of many sizes
directly. Frames are 32 px (the recipes' crops, flips and sampling are the same at any size).
"""

import dataclasses

import numpy as np
import pytest
import torch

from miil.core.testing import DrawPlan, assert_image_tensor, failing_draws, normalized_range, real_images
from miil.stam import RECIPES
from miil.stam.pipeline import NORMALIZATIONS, DataSource, build_dataset, clip_sampling, frame_transform
from miil.stam.video.encode import write_video

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

SIZE = 32
NAMES = sorted(RECIPES)
CLIPS = DrawPlan(full=60, repeat=12)  # decoded clip draws (each decodes a video)
FRAMES = DrawPlan(full=400, repeat=60)  # frame-transform draws on frame stacks
CLASSES = ["pan", "still"]
# (width, height, frames, fps): wide, tall and square; 1.5 s to 9 s
SHAPES = [(64, 32, 48, 16.0), (32, 64, 72, 8.0), (48, 48, 12, 8.0), (96, 54, 45, 30.0), (40, 60, 30, 25.0)]


def _pan(image, n, width, height, still=False):
    """``n`` frames of a ``width`` x ``height`` window panning across a real image (or standing still)."""
    src = np.asarray(image.convert("RGB").resize((2 * width, 2 * height)))
    xs = np.zeros(n, dtype=int) if still else np.linspace(0, width, n).astype(int)
    ys = np.zeros(n, dtype=int) if still else np.linspace(0, height // 2, n).astype(int)
    return np.stack([src[y : y + height, x : x + width] for x, y in zip(xs, ys)])


@pytest.fixture(scope="module")
def video_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("stam-real")
    images = real_images(2 * len(SHAPES), seed=0, min_side=16, max_side=160)
    for i, (width, height, n, fps) in enumerate(SHAPES):
        for c, cls in enumerate(CLASSES):
            frames = _pan(images[2 * i + c], n, width, height, still=cls == "still")
            write_video(root / cls / f"{i}.mp4", frames, fps=fps)
    return root


@pytest.mark.parametrize("name", NAMES)
def test_recipe_clips_from_real_videos(name, video_root):
    recipe = dataclasses.replace(RECIPES[name], img_size=SIZE)
    source = DataSource("folder", str(video_root))
    train = build_dataset(recipe, source, training=True, strict=True)
    val = build_dataset(recipe, source, training=False, classes=train.classes, strict=True)
    assert train.classes == CLASSES
    low, high = normalized_range(*(NORMALIZATIONS[recipe.normalize] or ((0.0,) * 3, (1.0,) * 3)))
    shape = (recipe.num_frames, 3, SIZE, SIZE)
    draws = CLIPS.draws(train.transform, val.transform, train.sampling, val.sampling)

    def train_draw(i):
        clip, label = train[i % len(train)]
        assert_image_tensor(clip, shape, low=low, high=high, what=f"{name} train clip {i}")
        assert 0 <= label < len(CLASSES)

    failures = failing_draws(train_draw, draws, seed=1000 * (1 + NAMES.index(name)))
    assert not failures, f"{name}: {len(failures)} of {draws} training clips failed, e.g. {failures[:3]}"
    views = recipe.eval_views * recipe.spatial_views
    for i in range(len(val)):
        clip, _ = val[i]
        expected = shape if views == 1 else (views, *shape)
        assert_image_tensor(clip, expected, low=low, high=high, what=f"{name} val clip {i}")


@pytest.mark.parametrize("name", NAMES)
def test_recipe_frame_transforms_on_real_frame_stacks(name):
    recipe = dataclasses.replace(RECIPES[name], img_size=SIZE)
    train_tf, eval_tf = frame_transform(recipe, training=True), frame_transform(recipe, training=False)
    assert clip_sampling(recipe, training=True).num_frames == recipe.num_frames
    images = real_images(24, seed=3, min_side=8, max_side=120)
    stacks = [_pan(img, 3, *img.size) for img in images]  # any frame size, odd ones too
    low, high = normalized_range(*(NORMALIZATIONS[recipe.normalize] or ((0.0,) * 3, (1.0,) * 3)))
    draws = FRAMES.draws(train_tf, eval_tf)

    def draw(i):
        frames = stacks[i % len(stacks)]
        assert_image_tensor(train_tf(frames), (3, 3, SIZE, SIZE), low=low, high=high, what=f"{name} train {i}")

    failures = failing_draws(draw, draws, seed=1000 * (1 + NAMES.index(name)))
    assert not failures, f"{name}: {len(failures)} of {draws} frame-transform draws failed, e.g. {failures[:3]}"
    for i, frames in enumerate(stacks):
        out = eval_tf(frames)
        assert_image_tensor(out, (3, 3, SIZE, SIZE), low=low, high=high, what=f"{name} eval {i}")
        torch.testing.assert_close(eval_tf(frames), out)
