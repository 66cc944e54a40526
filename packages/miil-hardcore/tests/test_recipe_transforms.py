"""Every recipe's full training and evaluation transforms on real images, built by ``image_sets`` as the commands do.

Supernet and child recipes read real photos and digits of many sizes, aspect ratios, modes and file formats from
class folders (supernets: the 80 % weights part of the split), each training draw under its own seed, and every
RandAugment op also runs at every magnitude it can draw; search recipes read the held-out part with the evaluation
transform. ImageNet rows run at 32 px instead of 224 (their ops and magnitudes); the digits rows keep their 16 px.
"""

import dataclasses

import pytest

from miil.core.testing import (
    DrawPlan,
    assert_image_tensor,
    augment_draw_failures,
    failing_draws,
    normalized_range,
    real_images,
    write_image_folder,
)
from miil.hardcore import CHILD_RECIPES, SEARCH_RECIPES, SUPERNET_RECIPES
from miil.hardcore.data import eval_transform, held_out_split, image_folder, image_sets

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # PIL: palette images with transparency

SIZE = 32
TRAINING = {**SUPERNET_RECIPES, **CHILD_RECIPES}
NAMES = sorted(TRAINING)
PLAN = DrawPlan(full=400, repeat=60)
CLASSES = ["a", "b", "c"]
IMAGENET = normalized_range((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))  # timm's create_transform default


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("hardcore-real")
    write_image_folder(root / "train", CLASSES, per_class=14, seed=0)
    write_image_folder(root / "val", CLASSES, per_class=5, seed=1)
    return root


@pytest.mark.parametrize("name", NAMES)
def test_training_recipe_transforms_on_real_images(name, folders):
    recipe = TRAINING[name]
    recipe = dataclasses.replace(recipe, img_size=min(SIZE, recipe.img_size))
    size, low, high = recipe.img_size, *IMAGENET
    percent = 80.0 if name in SUPERNET_RECIPES else None
    train, val, classes = image_sets(recipe, folders / "train", folders / "val", train_percent=percent, strict=True)
    assert classes == CLASSES and len(train) == (34 if percent else 42)
    augment = train.dataset.transform if percent else train.transform
    draws = PLAN.draws(augment, val.transform)

    def train_draw(i):
        x, y = train[i % len(train)]
        assert_image_tensor(x, (3, size, size), low=low, high=high, what=f"{name} train sample {i}")
        assert 0 <= y < len(CLASSES)

    failures = failing_draws(train_draw, draws, seed=1000 * (1 + NAMES.index(name)))
    assert not failures, f"{name}: {len(failures)} of {draws} training draws failed, e.g. {failures[:3]}"
    for i in range(len(val)):
        assert_image_tensor(val[i][0], (3, size, size), low=low, high=high, what=f"{name} val sample {i}")
    probes = [img.convert("RGB") for img in real_images(2, min_side=10, max_side=14, seed=2)]
    assert augment_draw_failures(augment, probes) == []


@pytest.mark.parametrize("name", sorted(SEARCH_RECIPES))
def test_search_recipe_images_on_real_images(name, folders):
    recipe = dataclasses.replace(SEARCH_RECIPES[name], img_size=SIZE)
    plain = image_folder(folders / "train", eval_transform(recipe.img_size), strict=True)
    _, search_part = held_out_split(plain, train_percent=recipe.train_percent, seed=0)
    assert len(search_part) == 8
    for i in range(len(search_part)):
        assert_image_tensor(search_part[i][0], (3, SIZE, SIZE), low=IMAGENET[0], high=IMAGENET[1], what=f"{name} {i}")
