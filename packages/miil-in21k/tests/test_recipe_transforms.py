"""Every recipe's full training and evaluation transforms on real images, as the trainers build them.

The images are real photos and digits of many sizes, aspect ratios, modes and file formats, read by the datasets the
trainers use; each training draw runs under its own seed, and every RandAugment / AutoAugment op is also run at every
magnitude it can draw (a draw that fails 1 time in 50 must not hide). Images are 32 px instead of 224 (the
augmentation ops and magnitudes are the recipe's).
"""

import dataclasses

import pytest
import torch

from miil.core.testing import (
    DrawPlan,
    assert_image_tensor,
    augment_draw_failures,
    failing_draws,
    normalized_range,
    real_images,
    write_image_folder,
)
from miil.in21k import RECIPES, SemanticPretrainRecipe, SemanticTree
from miil.in21k.data import RANDAUG_IN21K, TreeImageFolder, find_split_folder
from miil.in21k.models import create_in21k_model
from miil.in21k.train import recipe_normalization, recipe_transforms

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # timm: models built without weights on "meta"

SIZE = 32
NAMES = sorted(RECIPES)
PLAN = DrawPlan(full=400, repeat=60)  # rows with the same transform share the 400 draws
WNIDS = ["n00015388", "n01503061", "n02084071"]  # animal, bird, dog
TREE = SemanticTree(WNIDS, [-1, 0, 0])


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("in21k-real")
    write_image_folder(root / "imagenet21k_train", WNIDS, per_class=16, seed=0)
    write_image_folder(root / "imagenet21k_val", WNIDS, per_class=6, seed=1)
    (root / "transfer").mkdir()
    for split in ("train", "val"):  # the transfer recipe's layout: data/train/<class>, data/val/<class>
        (root / "transfer" / split).symlink_to(root / f"imagenet21k_{split}")
    return root


def _transforms(name):
    recipe = dataclasses.replace(RECIPES[name], img_size=SIZE, pretrained=False)
    with torch.device("meta"):  # only the model's timm config (mean/std) matters here
        model, _ = create_in21k_model(recipe.model, num_classes=len(WNIDS), pretrained=False)
    mean, std = recipe_normalization(model, recipe)
    train_tf, eval_tf = recipe_transforms(recipe, mean, std)
    return recipe, mean, std, train_tf, eval_tf


def _datasets(recipe, data_dir, train_tf, eval_tf):
    from miil.core.data import ImageFolderDataset

    if isinstance(recipe, SemanticPretrainRecipe):
        train = TreeImageFolder(find_split_folder(data_dir, "train"), TREE, transform=train_tf, strict=True)
        val = TreeImageFolder(find_split_folder(data_dir, "val"), TREE, transform=eval_tf, strict=True)
        return train, val
    root = data_dir / "transfer"
    train = ImageFolderDataset(root / "train", classes=WNIDS, transform=train_tf, strict=True)
    val = ImageFolderDataset(root / "val", classes=WNIDS, transform=eval_tf, strict=True)
    return train, val


@pytest.mark.parametrize("name", NAMES)
def test_recipe_transforms_on_real_images(name, data_dir):
    recipe, mean, std, train_tf, eval_tf = _transforms(name)
    draws = PLAN.draws(train_tf, eval_tf)
    train, val = _datasets(recipe, data_dir, train_tf, eval_tf)
    low, high = normalized_range(mean, std)
    if getattr(recipe, "reprob", 0) > 0:  # pixel-mode random erasing writes N(0, 1) noise after normalisation
        low, high = torch.minimum(low, torch.tensor(-8.0)), torch.maximum(high, torch.tensor(8.0))

    def train_draw(i):
        x, y = train[i % len(train)]
        assert_image_tensor(x, (3, SIZE, SIZE), low=low, high=high, what=f"{name} train sample {i}")
        assert 0 <= y < len(WNIDS)

    failures = failing_draws(train_draw, draws, seed=1000 * (1 + NAMES.index(name)))
    assert not failures, f"{name}: {len(failures)} of {draws} training draws failed, e.g. {failures[:3]}"
    for i in range(len(val)):
        x, _ = val[i]
        assert_image_tensor(x, (3, SIZE, SIZE), low=low, high=high, what=f"{name} val sample {i}")
    probes = [img.convert("RGB") for img in real_images(2, min_side=10, max_side=14, seed=2)]
    assert augment_draw_failures(train_tf, probes) == []


def test_pretrain_randaugment_keeps_the_original_strength():
    """The original's UDA RandAugment: 2 ops, p 0.5, magnitude 1..9; posterize keeps 4 - int(0.4 m) bits (4..1) and
    solarize thresholds at 256 - int(25.6 m). Ours draws the magnitude uniformly in [0, 9] with timm's increasing
    posterize / solarize, which are those formulas: the same ranges, and never 0 bits."""
    from miil.core.data import rand_augment

    assert RANDAUG_IN21K == "rand-m9-n2-mstd101-inc1"
    assert all(r.randaug == RANDAUG_IN21K for r in RECIPES.values() if isinstance(r, SemanticPretrainRecipe))
    aug = rand_augment(RANDAUG_IN21K, img_size=SIZE)
    assert aug.num_layers == 2 and aug.choice_weights is None
    ops = {op.name: op for op in aug.ops}
    assert all(op.prob == 0.5 and op.magnitude == 9 and op.magnitude_std == float("inf") for op in aug.ops)
    magnitudes = [m / 100 for m in range(0, 901)]
    posterize, solarize = ops["PosterizeIncreasing"], ops["SolarizeIncreasing"]
    bits = {posterize.level_fn(m, posterize.hparams)[0] for m in magnitudes}
    assert bits == {1, 2, 3, 4}
    uda_bits = {4 - int(level * 4 / 10) for level in range(1, 10)}
    assert bits == uda_bits
    thresholds = [solarize.level_fn(m, solarize.hparams)[0] for m in magnitudes]
    assert min(thresholds) == 256 - int(9 * 256 / 10) and max(thresholds) == 256
