"""Every recipe's full transforms on real images, built by the package's dataset functions as the commands build them.

Pretraining rows (USI's supervised stage, plus the SimCLR views of ``ssl_usi``) go through ``pretrain_datasets``;
transfer rows through ``transfer_datasets`` for a ResNet-50 (ImageNet normalisation) and a ViT-S (0.5 / 0.5). Real
photos and digits of many sizes, aspect ratios, modes and file formats; each training draw has its own seed, and every
RandAugment op also runs at every magnitude it can draw. Images are 32 px (the recipes' ops and magnitudes); models
are built on the "meta" device for their normalisation.
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
from miil.diversity import RECIPES, TRANSFER_RECIPES, pretrain_datasets, transfer_datasets
from miil.usi import create_student, model_mean_std

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # PIL palette transparency; timm on "meta"

SIZE = 32
NAMES = sorted(RECIPES) + sorted(TRANSFER_RECIPES)
PLAN = DrawPlan(full=400, repeat=40)
CLASSES = ["a", "b", "c"]


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("diversity-real")
    write_image_folder(root / "train", CLASSES, per_class=14, seed=0)
    write_image_folder(root / "val", CLASSES, per_class=5, seed=1)
    return root


def _check_draws(name, dataset, draws, views, low, high):
    def draw(i):
        sample = dataset[i % len(dataset)]
        for k in range(views):  # SSL samples are two views; labelled samples (image, label)
            assert_image_tensor(sample[k], (3, SIZE, SIZE), low=low, high=high, what=f"{name} sample {i} view {k}")

    failures = failing_draws(draw, draws, seed=1000 * (1 + NAMES.index(name)))
    assert not failures, f"{name}: {len(failures)} of {draws} training draws failed, e.g. {failures[:3]}"


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_pretrain_recipe_transforms_on_real_images(name, folders):
    # pretrained=False: the row's hub weights do not change its transforms (the model's normalisation is its config)
    cfg = dataclasses.replace(RECIPES[name], img_size=SIZE, num_classes=len(CLASSES), pretrained=False)
    with torch.device("meta"):
        model = create_student(cfg)
    train, val, ssl = pretrain_datasets(cfg, model, train_dir=folders / "train", val_dir=folders / "val")
    assert (ssl is not None) == (cfg.init == "ssl")
    low, high = normalized_range(*model_mean_std(model, mean=cfg.mean, std=cfg.std))
    _check_draws(name, train, PLAN.draws(train.transform, val.transform), 1, low, high)
    if ssl is not None:
        _check_draws(name, ssl, PLAN.draws(ssl.transform), 2, low, high)
    for i in range(len(val)):
        assert_image_tensor(val[i][0], (3, SIZE, SIZE), low=low, high=high, what=f"{name} val sample {i}")
    probes = [img.convert("RGB") for img in real_images(2, min_side=10, max_side=14, seed=2)]
    assert augment_draw_failures(train.transform, probes) == []


@pytest.mark.parametrize("model_name", ["resnet50", "vit_small_patch16_224"])
@pytest.mark.parametrize("name", sorted(TRANSFER_RECIPES))
def test_transfer_recipe_transforms_on_real_images(name, model_name, folders):
    cfg = dataclasses.replace(TRANSFER_RECIPES[name], img_size=SIZE)
    with torch.device("meta"):
        model = create_student(dataclasses.replace(RECIPES["usi-supervised"], model=model_name))
    mean, std = model_mean_std(model)
    train, val = transfer_datasets(cfg, folders / "train", folders / "val", mean=mean, std=std, strict=True)
    low, high = normalized_range(mean, std)
    _check_draws(name, train, PLAN.draws(train.transform, val.transform), 1, low, high)
    for i in range(len(val)):
        assert_image_tensor(val[i][0], (3, SIZE, SIZE), low=low, high=high, what=f"{name} val sample {i}")
