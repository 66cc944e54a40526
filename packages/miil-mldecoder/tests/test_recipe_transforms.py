"""Every recipe's full training and evaluation transforms on real images, built and read as ``train`` does.

Real photos and digits of many sizes, aspect ratios, modes and file formats go through the recipe's dataset format
(multi-label CSV, or class folders for the single-label row); each training draw has its own seed, and every
RandAugment op also runs at every magnitude it can draw. Images are 32 px (the recipes' ops and magnitudes).
"""

import dataclasses

import numpy as np
import pytest
import torch

from miil.core.data import write_multilabel_csv
from miil.core.testing import (
    DrawPlan,
    assert_image_tensor,
    augment_draw_failures,
    failing_draws,
    normalized_range,
    real_images,
    write_image_folder,
)
from miil.mldecoder import RECIPES
from miil.mldecoder.pipeline import (
    DataSource,
    build_dataset,
    build_model,
    eval_transform,
    model_spec,
    normalization,
    train_transform,
)

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # PIL palette transparency; timm on "meta"

SIZE = 32
NAMES = sorted(RECIPES)
PLAN = DrawPlan(full=400, repeat=60)  # rows with the same transform share the 400 draws
CLASSES = ["cat", "dog", "person"]


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    root = tmp_path_factory.mktemp("mldecoder-real")
    paths = write_image_folder(root / "images", CLASSES, per_class=14, seed=0)
    rel = [p.relative_to(root / "images").as_posix() for p in paths]
    targets = np.random.default_rng(0).choice([1.0, 0.0, -1.0], size=(len(rel), len(CLASSES)), p=[0.4, 0.5, 0.1])
    write_multilabel_csv(root / "labels.csv", rel, targets, CLASSES)
    return {
        "multilabel": DataSource("csv", str(root / "images"), str(root / "labels.csv")),
        "singlelabel": DataSource("folder", str(root / "images")),
    }


@pytest.mark.parametrize("name", NAMES)
def test_recipe_transforms_on_real_images(name, sources):
    recipe = dataclasses.replace(RECIPES[name], img_size=SIZE)
    with torch.device("meta"):  # the normalisation comes from the model's timm config
        model = build_model(model_spec(recipe, len(CLASSES)))
    norm = normalization(model, recipe.normalize)
    source = sources["singlelabel" if recipe.task == "singlelabel" else "multilabel"]
    train_tf = train_transform(recipe, norm)
    train = build_dataset(source, train_tf, classes=CLASSES, strict=True)
    val = build_dataset(source, eval_transform(recipe.img_size, recipe.task, norm), classes=CLASSES, strict=True)
    low, high = normalized_range(*norm) if norm is not None else normalized_range()
    draws = PLAN.draws(train_tf, val.transform)

    def train_draw(i):
        x = train[i % len(train)][0]
        assert_image_tensor(x, (3, SIZE, SIZE), low=low, high=high, what=f"{name} train sample {i}")

    failures = failing_draws(train_draw, draws, seed=1000 * (1 + NAMES.index(name)))
    assert not failures, f"{name}: {len(failures)} of {draws} training draws failed, e.g. {failures[:3]}"
    for i in range(len(val)):
        assert_image_tensor(val[i][0], (3, SIZE, SIZE), low=low, high=high, what=f"{name} val sample {i}")
    probes = [img.convert("RGB") for img in real_images(2, min_side=10, max_side=14, seed=2)]
    assert augment_draw_failures(train_tf, probes) == []
