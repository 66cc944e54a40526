import dataclasses

import timm

from miil.core.config import recipe_name_problems
from miil.core.train import TrainConfig
from miil.usi import PAPER_RESULTS, RECIPES, USI, USIRecipe


def test_the_preset_has_the_papers_values():
    assert isinstance(USI, TrainConfig) and dataclasses.is_dataclass(USI)
    assert (USI.opt, USI.lr, USI.weight_decay, USI.sched) == ("adamw", 2e-3, 2e-2, "cosine")
    assert (USI.epochs, USI.warmup_epochs, USI.warmup_lr, USI.min_lr, USI.cooldown_epochs) == (300, 5, 1e-4, 1e-6, 0)
    assert (USI.batch_size, USI.amp, USI.ema, USI.ema_decay) == (128, True, True, 0.99996)
    assert (USI.mixup, USI.cutmix, USI.mixup_prob, USI.mixup_switch_prob, USI.label_smoothing) == (
        0.8,
        1.0,
        1.0,
        0.5,
        0.0,
    )
    assert (USI.randaug, USI.scale, USI.hflip, USI.interpolation, USI.reprob) == (
        "rand-m7-mstd0.5-inc1",
        (0.08, 1.0),
        0.5,
        "bicubic",
        0.0,
    )
    assert (USI.aug_repeats, USI.crop_pct, USI.img_size, USI.eval_metric) == (3, 0.95, 224, "top1")
    assert (USI.teacher, USI.kd_weight, USI.kd_temperature, USI.gt_weight, USI.kd_only) == (
        "tresnet_v2_l.miil_in21k_ft_in1k",
        5.0,
        1.0,
        1.0,
        False,
    )
    assert USI.kd and not dataclasses.replace(USI, teacher="none").kd


def test_every_row_uses_the_same_recipe_with_its_backbone():
    for name, recipe in RECIPES.items():
        assert isinstance(recipe, USIRecipe)
        same = dataclasses.replace(recipe, model=USI.model, epochs=USI.epochs)
        assert same == USI, name
        assert timm.is_model(recipe.model), recipe.model
    for name, row in PAPER_RESULTS.items():
        assert RECIPES[name].model == row.model and RECIPES[name].epochs == row.epochs
        assert 70 < row.top1 < 90 and (row.previous_top1 is None or row.previous_top1 < row.top1)
    assert [PAPER_RESULTS[f"usi-levit-384-e{e}"].top1 for e in (100, 200, 300, 600, 1000)] == sorted(
        PAPER_RESULTS[f"usi-levit-384-e{e}"].top1 for e in (100, 200, 300, 600, 1000)
    )


def test_recipe_names_are_kebab_case_and_the_preset_is_offline():
    assert recipe_name_problems(RECIPES) == []
    assert "usi" in RECIPES and "usi-resnet50" in RECIPES
    assert not USI.pretrained and USI.strict is False and USI.model_kwargs == "{}"  # the student starts from scratch
