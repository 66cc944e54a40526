"""Every recipe's album datasets, built by ``album_datasets`` as ``miil album train`` builds them, on real photos.

Albums of real photos and digits of many sizes, aspect ratios, modes and file formats, in the event-folder layout;
each training draw (a random K-subset of an album, each photo augmented) has its own seed. Photos are 32 px (the
recipes' augmentation is the same at any size).
"""

import dataclasses

import pytest
import torch

from miil.album import RECIPES, album_datasets
from miil.album.data import album_classes, read_event_folders
from miil.core.testing import (
    DrawPlan,
    assert_image_tensor,
    augment_draw_failures,
    failing_draws,
    real_images,
    write_image_folder,
)

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # PIL: palette images with transparency

SIZE = 32
NAMES = sorted(RECIPES)
PLAN = DrawPlan(full=80, repeat=15)  # album draws: ~7 photos each, so 80 albums are ~560 photo transforms
EVENTS = ["birthday", "hiking", "wedding"]


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    root = tmp_path_factory.mktemp("album-real")
    for e, event in enumerate(EVENTS):
        for k in range(3):
            album = f"{event}_{k}"  # album ids are unique across events
            write_image_folder(root / event, [album], per_class=3 + 2 * k + e, seed=10 * e + k)
    return read_event_folders(root)


@pytest.mark.parametrize("name", NAMES)
def test_recipe_album_data_on_real_photos(name, records):
    recipe = dataclasses.replace(RECIPES[name], img_size=SIZE)
    classes = album_classes(records)
    train, val = album_datasets(recipe, records, classes, records, strict=True)
    draws = PLAN.draws(train.transform, val.transform, recipe.album_size, recipe.pad)

    def check(sample, what, album_photos):
        images, target, index, names = sample
        assert 1 <= images.shape[0] == len(names) <= min(recipe.album_size, album_photos), what
        assert_image_tensor(images, (images.shape[0], 3, SIZE, SIZE), what=what)
        assert target.shape == (len(classes),) and target.sum() == 1 and 0 <= index < len(records)

    def train_draw(i):
        k = i % len(train)
        check(train[k], f"{name} train album {k} (draw {i})", len(records[k].images))

    failures = failing_draws(train_draw, draws, seed=1000 * (1 + NAMES.index(name)))
    assert not failures, f"{name}: {len(failures)} of {draws} training draws failed, e.g. {failures[:3]}"
    for k in range(len(val)):
        check(val[k], f"{name} val album {k}", len(records[k].images))
    probes = [img.convert("RGB") for img in real_images(2, min_side=10, max_side=14, seed=2)]
    assert augment_draw_failures(train.transform, probes) == []
    torch.testing.assert_close(val[0][0], val[0][0])  # evaluation is deterministic
