"""Training pieces: the paper's step schedule on the core engine, the distillation steps, recipes."""

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import TensorDataset

from miil.hardcore import (
    CHILD_RECIPES,
    SEARCH_RECIPES,
    SUPERNET_RECIPES,
    ChildDistillationStep,
    HardCoReSupernet,
    MultipathDistillationStep,
    SupervisedStep,
    extract_child,
    frozen_heaviest_teacher,
    make_trainer,
)


def test_step_schedule_decays_by_rate_every_decay_epochs(tiny_space, tmp_path):
    data = TensorDataset(torch.randn(40, 3, 16, 16), torch.randint(0, 5, (40,)))
    cfg = dataclasses.replace(
        SUPERNET_RECIPES["heaviest-path-imagenet"],
        out_dir=str(tmp_path),
        batch_size=4,
        warmup_epochs=0,
        ema=False,
        device="cpu",
        progress=False,
        epochs=10,
    )
    trainer = make_trainer(HardCoReSupernet(tiny_space, num_classes=5), data, cfg, step_fn=SupervisedStep())
    per_epoch = trainer.updates_per_epoch
    lrs = []
    for step in (0, int(2.4 * per_epoch) - 1, int(2.4 * per_epoch) + 1, int(4.8 * per_epoch) + 1):
        trainer.schedule.step_update(step)
        lrs.append(trainer.optimizer.param_groups[0]["lr"])
    assert lrs[0] == pytest.approx(0.128) and lrs[1] == pytest.approx(0.128)
    assert lrs[2] == pytest.approx(0.128 * 0.97) and lrs[3] == pytest.approx(0.128 * 0.97**2)


def test_distillation_steps_add_the_teacher_terms(tiny_space):
    torch.manual_seed(0)
    net = HardCoReSupernet(tiny_space, num_classes=5)
    teacher = frozen_heaviest_teacher(net)
    assert teacher.sampling == tiny_space.heaviest() and not any(p.requires_grad for p in teacher.parameters())
    batch = (torch.randn(6, 3, 16, 16), torch.randint(0, 5, (6,)))
    net.eval()
    arch = tiny_space.heaviest()
    net.set_sampling(arch)
    # the heaviest path distilled from itself: KL and feature terms vanish, only CE is left
    same = MultipathDistillationStep(teacher, kd_weight=1.0)(net, batch)
    assert same.item() == pytest.approx(F.cross_entropy(net(batch[0]), batch[1]).item(), rel=1e-5)
    net.set_sampling(None)
    torch.manual_seed(1)
    kd = MultipathDistillationStep(teacher, kd_weight=1.0)(net, batch)
    torch.manual_seed(1)
    plain = MultipathDistillationStep(teacher, kd_weight=0.0)(net, batch)
    assert kd.item() > plain.item()
    child = extract_child(net, tiny_space.random_architecture(np.random.default_rng(0))).eval()
    with_kd = ChildDistillationStep(teacher, kd_weight=2.0)(child, batch)
    without = ChildDistillationStep(None)(child, batch)
    assert with_kd.item() > without.item()


def test_recipes_match_the_paper_settings():
    heavy = SUPERNET_RECIPES["heaviest-path-imagenet"]
    assert (heavy.lr, heavy.batch_size, heavy.epochs, heavy.decay_epochs, heavy.decay_rate) == (
        0.128,
        256,
        300,
        2.4,
        0.97,
    )
    multi = SUPERNET_RECIPES["multipath-imagenet"]
    assert (multi.lr, multi.batch_size, multi.epochs, multi.kd_weight, multi.feature_kd_divisor) == (
        0.0128,
        200,
        100,
        1,
        50,
    )
    ft = CHILD_RECIPES["finetune-imagenet"]
    assert (ft.lr, ft.batch_size, ft.epochs, ft.kd_weight) == (0.00128, 128, 50, 2.0)
    assert [SEARCH_RECIPES[f"hardcorenas-{n}"].latency_ms for n in "abcdef"] == [38, 40, 44, 50, 55, 60]
    with pytest.raises(dataclasses.FrozenInstanceError):
        heavy.lr = 1.0


def test_spread_heaviest_path_starts_every_option_from_the_heaviest(tiny_space):
    from miil.hardcore import spread_heaviest_path

    torch.manual_seed(0)
    supernet = HardCoReSupernet(tiny_space, num_classes=3)
    for p in supernet.parameters():  # make every BN / SE differ from its siblings before the spread
        p.data.normal_()
    for m in supernet.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_()
            m.running_var.uniform_(0.5, 2.0)
    x = torch.randn(2, 3, 16, 16)
    supernet.eval().set_sampling(tiny_space.heaviest())
    before = supernet(x)
    dw3_before = supernet.stages[0][0].conv_dw[0].weight.clone()
    spread_heaviest_path(supernet)
    assert torch.allclose(supernet(x), before, atol=1e-5)  # the heaviest path is untouched
    for stage in supernet.stages:
        for block in stage:
            heavy_bn2 = block.bn2[-1].state_dict()
            for bn in block.bn2:
                assert all(torch.equal(v, heavy_bn2[k]) for k, v in bn.state_dict().items())
            heavy_bn3 = block.bn3[block.bn3_index(len(block.expansions) - 1, len(block.se_values) - 1)].state_dict()
            for bn in block.bn3:
                assert all(torch.equal(v, heavy_bn3[k]) for k, v in bn.state_dict().items())
            big = block.se[-1].conv_reduce.weight
            for se in block.se:
                w = se.conv_reduce.weight
                assert torch.equal(w, big[: w.shape[0], : w.shape[1]])
    assert torch.equal(supernet.stages[0][0].conv_dw[0].weight, dw3_before)  # not on the heaviest path: kept


def test_recipe_names_are_kebab_case_and_old_spellings_still_resolve():
    from miil.core.config import pick_recipe, recipe_name_problems
    from miil.hardcore.recipes import ALL_RECIPES

    assert recipe_name_problems(ALL_RECIPES) == []
    assert len(ALL_RECIPES) == len(SUPERNET_RECIPES) + len(CHILD_RECIPES) + len(SEARCH_RECIPES)
    # scripts written before the rename (the demo) still find their rows; listings show only the kebab names
    assert SUPERNET_RECIPES["heaviest_path_digits"] is SUPERNET_RECIPES["heaviest-path-digits"]
    assert pick_recipe(CHILD_RECIPES, "finetune_digits") is CHILD_RECIPES["finetune-digits"]
    assert "finetune_digits" in CHILD_RECIPES and "finetune_digits" not in list(CHILD_RECIPES)
    with pytest.raises(KeyError):
        SEARCH_RECIPES["hardcorenas_z"]
