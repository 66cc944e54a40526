"""Every recipe's training and evaluation data, built by ``build_datasets`` as ``train`` builds it, on real images.

Image recipes (COCO, OpenImages, LVIS rows) read real photos and digits of many sizes, aspect ratios, modes and file
formats through a multi-label CSV with the recipe's partial-label simulation (the transforms do not depend on the
label format); each training draw has its own seed, and every RandAugment op also runs at every magnitude it can
draw. Images are 32 px (the recipes' ops and magnitudes). The digit-mosaic recipes read their embedded mosaics, and
their evaluation transform (what ``infer`` applies to a user's photo) meets the real images.
"""

import dataclasses

import numpy as np
import pytest

from miil.core.data import UnreadablePolicy, write_multilabel_csv
from miil.core.testing import (
    DrawPlan,
    assert_image_tensor,
    augment_draw_failures,
    failing_draws,
    real_images,
    write_image_folder,
)
from miil.csl import RECIPES
from miil.csl.pipeline import DataSpec, build_datasets, eval_transform, train_transform

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # PIL: palette images with transparency

SIZE = 32
NAMES = sorted(RECIPES)
PLAN = DrawPlan(full=400, repeat=60)  # rows with the same transform share the 400 draws (mosaics: the same data)
CLASSES = ["cat", "dog", "person", "car"]


@pytest.fixture(scope="module")
def spec(tmp_path_factory):
    root = tmp_path_factory.mktemp("csl-real")
    paths = write_image_folder(root / "images", CLASSES, per_class=10, seed=0)
    rel = [p.relative_to(root / "images").as_posix() for p in paths]
    rng = np.random.default_rng(0)
    targets = rng.choice([1.0, 0.0], size=(len(rel), len(CLASSES)), p=[0.4, 0.6])
    targets[np.arange(len(rel)), rng.integers(0, len(CLASSES), len(rel))] = 1.0  # every image has a positive
    write_multilabel_csv(root / "labels.csv", rel, targets, CLASSES)
    labels, images = str(root / "labels.csv"), str(root / "images")
    return DataSpec(data_root=images, train_labels=labels, val_labels=labels, strict=True)


@pytest.fixture(scope="module")
def photo_paths(spec):
    from pathlib import Path

    return sorted(p for p in Path(spec.data_root).rglob("*") if p.is_file())


@pytest.mark.parametrize("name", sorted(n for n, r in RECIPES.items() if r.data_format != "mosaic"))
def test_image_recipe_transforms_on_real_images(name, spec):
    cfg = dataclasses.replace(RECIPES[name], data_format="csv", img_size=SIZE)
    train, val, classes, _ = build_datasets(cfg, spec, verbose=False)
    assert classes == CLASSES
    draws = PLAN.draws(train.transform, val.transform)

    def train_draw(i):
        x, y = train[i % len(train)]
        assert_image_tensor(x, (3, SIZE, SIZE), what=f"{name} train sample {i}")
        assert y.shape == (len(CLASSES),) and set(y.tolist()) <= {1.0, 0.0, -1.0}

    failures = failing_draws(train_draw, draws, seed=1000 * (1 + NAMES.index(name)))
    assert not failures, f"{name}: {len(failures)} of {draws} training draws failed, e.g. {failures[:3]}"
    for i in range(len(val)):
        assert_image_tensor(val[i][0], (3, SIZE, SIZE), what=f"{name} val sample {i}")
    probes = [img.convert("RGB") for img in real_images(2, min_side=10, max_side=14, seed=2)]
    assert augment_draw_failures(train_transform(cfg), probes) == []


@pytest.mark.parametrize("name", sorted(n for n, r in RECIPES.items() if r.data_format == "mosaic"))
def test_mosaic_recipe_data_and_eval_transform(name, photo_paths):
    cfg = RECIPES[name]
    train, val, _, _ = build_datasets(cfg, DataSpec(strict=True), verbose=False)
    size = cfg.img_size
    draws = PLAN.draws("mosaics", eval_transform(cfg))

    def train_draw(i):
        x, y = train[i % len(train)]
        assert_image_tensor(x, (1, size, size), what=f"{name} train mosaic {i}")
        assert y.shape == (10,) and set(y.tolist()) <= {1.0, 0.0, -1.0}

    failures = failing_draws(train_draw, draws, seed=1000 * (1 + NAMES.index(name)))
    assert not failures, f"{name}: {len(failures)} of {draws} training draws failed, e.g. {failures[:3]}"
    for i in range(0, len(val), 50):
        assert_image_tensor(val[i][0], (1, size, size), what=f"{name} val mosaic {i}")
    transform, policy = eval_transform(cfg), UnreadablePolicy(strict=True)
    for path in photo_paths:  # as ``miil csl infer`` reads a user's image
        assert_image_tensor(transform(policy.load_image(path)), (1, size, size), what=f"{name} infer {path.name}")
