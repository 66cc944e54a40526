"""Every estimation recipe's images, read as ``miil iqnas estimate`` reads them, on real images.

The estimate reads the held-out part of the training folder with miil-hardcore's evaluation transform (the search
recipes read no images). Real photos and digits of many sizes, aspect ratios, modes and file formats; the ImageNet
row runs at 32 px instead of 224, the digits row keeps its 16 px.
"""

import dataclasses

import pytest

from miil.core.testing import assert_image_tensor, normalized_range, write_image_folder
from miil.hardcore.data import eval_transform, held_out_split, image_folder
from miil.iqnas.recipes import ESTIMATE_RECIPES

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # PIL: palette images with transparency

CLASSES = ["a", "b", "c"]


@pytest.fixture(scope="module")
def train_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("iqnas-real")
    write_image_folder(root, CLASSES, per_class=20, seed=0)
    return root


@pytest.mark.parametrize("name", sorted(ESTIMATE_RECIPES))
def test_estimate_recipe_images_on_real_images(name, train_dir):
    recipe = ESTIMATE_RECIPES[name]
    recipe = dataclasses.replace(recipe, img_size=min(32, recipe.img_size))
    plain = image_folder(train_dir, eval_transform(recipe.img_size), strict=True)
    _, held_out = held_out_split(plain, train_percent=recipe.train_percent, seed=0)
    assert len(held_out) == 12
    low, high = normalized_range((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    for i in range(len(held_out)):
        x, y = held_out[i]
        assert_image_tensor(x, (3, recipe.img_size, recipe.img_size), low=low, high=high, what=f"{name} {i}")
        assert 0 <= y < len(CLASSES)
