"""Every recipe's full training and evaluation transforms on real images, built and read as ``train_usi`` does.

Real photos and digits of many sizes, aspect ratios, modes and file formats are read from class folders by the
package's ``image_folder``; each training draw has its own seed, and every RandAugment op also runs at every magnitude
it can draw (``rand-m7-mstd0.5-inc1`` reaches a 0-bit posterize once in 1e9 draws: no number of random draws finds
that). Images are 32 px (the recipe's ops and magnitudes); students are built on the "meta" device for their
normalisation.
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
from miil.usi import RECIPES, model_mean_std
from miil.usi.data import image_folder
from miil.usi.train import create_student, usi_transforms

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # PIL palette transparency; timm on "meta"

SIZE = 32
NAMES = sorted(RECIPES)
PLAN = DrawPlan(full=400, repeat=40)  # the rows differ only in the student: few distinct normalisations
CLASSES = ["a", "b", "c"]


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("usi-real")
    write_image_folder(root / "train", CLASSES, per_class=14, seed=0)
    write_image_folder(root / "val", CLASSES, per_class=5, seed=1)
    return root


@pytest.mark.parametrize("name", NAMES)
def test_recipe_transforms_on_real_images(name, folders):
    cfg = dataclasses.replace(RECIPES[name], img_size=SIZE, num_classes=len(CLASSES))
    with torch.device("meta"):
        model = create_student(cfg)
    mean, std = model_mean_std(model, mean=cfg.mean, std=cfg.std)
    train_tf, eval_tf = usi_transforms(cfg, mean, std)
    train = image_folder(folders / "train", transform=train_tf, strict=True)
    val = image_folder(folders / "val", transform=eval_tf, classes=train.classes, strict=True)
    low, high = normalized_range(mean, std)
    draws = PLAN.draws(train_tf, eval_tf)

    def train_draw(i):
        x, y = train[i % len(train)]
        assert_image_tensor(x, (3, SIZE, SIZE), low=low, high=high, what=f"{name} train sample {i}")
        assert 0 <= y < len(CLASSES)

    failures = failing_draws(train_draw, draws, seed=1000 * (1 + NAMES.index(name)))
    assert not failures, f"{name}: {len(failures)} of {draws} training draws failed, e.g. {failures[:3]}"
    for i in range(len(val)):
        assert_image_tensor(val[i][0], (3, SIZE, SIZE), low=low, high=high, what=f"{name} val sample {i}")
    probes = [img.convert("RGB") for img in real_images(2, min_side=10, max_side=14, seed=2)]
    assert augment_draw_failures(train_tf, probes) == []
