"""The paper's schedule on the engine, the semantic-KD training step, the recipes, the demo data, and DDP."""

import dataclasses
import json
import os
import subprocess
import sys

import pytest
import torch
import torch.nn as nn
from torch.utils.data import TensorDataset

from miil.core.data import digits_pil_images
from miil.in21k import (
    RECIPES,
    SemanticHierarchy,
    SemanticKDLoss,
    SemanticKDStep,
    SemanticSoftmaxLoss,
    SemanticTree,
    build_pretrain_trainer,
)
from miil.in21k.demo import _MixedGranularityDigits, digits_tree

TREE = SemanticTree([f"c{i}" for i in range(7)], [-1, -1, 0, 0, 1, 2, 2])  # depths 0,0,1,1,1,2,2


def _data(n=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    return TensorDataset(torch.randn(n, 8, generator=g), torch.randint(0, 7, (n,), generator=g))


def test_paper_onecycle_and_coupled_adam_on_the_engine(tmp_path):
    tree_file = TREE.save(tmp_path / "tree.json.gz")
    recipe = dataclasses.replace(
        RECIPES["semantic-softmax-tresnet-m"],
        out_dir=str(tmp_path / "run"),
        tree=str(tree_file),
        epochs=2,
        batch_size=8,
        amp=False,
        progress=False,
        device="cpu",
        num_workers=0,
    )
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 7))
    trainer = build_pretrain_trainer(recipe, train_dataset=_data(80), val_dataset=_data(16, 1), model=model)
    assert trainer.updates_per_epoch == 10
    assert type(trainer.optimizer) is torch.optim.Adam  # coupled L2, not AdamW
    decays = sorted(g["weight_decay"] for g in trainer.optimizer.param_groups)
    assert decays == [0.0, 1e-4]  # biases excluded
    ref_model = nn.Linear(2, 2)
    ref_opt = torch.optim.Adam(ref_model.parameters(), lr=recipe.lr)
    ref = torch.optim.lr_scheduler.OneCycleLR(
        ref_opt, max_lr=recipe.lr, total_steps=20, pct_start=0.1, div_factor=20, cycle_momentum=False
    )
    ours = []
    for step in range(20):
        trainer.schedule.step_update(step)
        ours.append(trainer.optimizer.param_groups[0]["lr"])
        assert trainer.optimizer.param_groups[0]["betas"] == (0.9, 0.999)
    expected = []
    for _ in range(20):
        expected.append(ref_opt.param_groups[0]["lr"])
        ref_opt.step()
        ref.step()
    assert ours == pytest.approx(expected, rel=1e-9)
    result = trainer.fit()
    assert result.best_epoch >= 0 and "semantic_top1" in result.history[-1]["val"]


class _Scale(nn.Module):
    def __init__(self, factor):
        super().__init__()
        self.lin = nn.Linear(3, 7)
        self.factor = factor

    def forward(self, x):
        return self.lin(x.mean(dim=(2, 3))) * self.factor


def test_semantic_kd_step_trains_the_student_only_and_renormalises_the_teacher_input():
    h = SemanticHierarchy(TREE)
    torch.manual_seed(0)
    student, teacher = _Scale(1.0), _Scale(2.0)
    seen = {}
    teacher.register_forward_pre_hook(lambda m, args: seen.setdefault("x", args[0].clone()))
    step = SemanticKDStep(
        teacher,
        SemanticSoftmaxLoss(h),
        SemanticKDLoss(h),
        kd_weight=3.0,
        student_norm=((0.5, 0.5, 0.5), (0.25, 0.25, 0.25)),
        teacher_norm=((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),
    )
    raw = torch.rand(4, 3, 2, 2)
    x = (raw - 0.5) / 0.25
    y = torch.tensor([0, 3, 5, 6])
    loss = step(student, (x, y))
    torch.testing.assert_close(seen["x"], raw)
    with torch.no_grad():
        expected = SemanticSoftmaxLoss(h)(student(x), y) + 3.0 * SemanticKDLoss(h)(student(x), teacher(raw))
    torch.testing.assert_close(loss.detach(), expected)
    loss.backward()
    assert student.lin.weight.grad is not None and teacher.lin.weight.grad is None
    assert not teacher.training


def test_recipes_are_the_paper_rows():
    pre = RECIPES["semantic-softmax-tresnet-m"]
    assert (pre.opt, pre.lr, pre.weight_decay, pre.sched, pre.pct_start, pre.div_factor, pre.cycle_momentum) == (
        "adam", 3e-4, 1e-4, "onecycle", 0.1, 20.0, False,
    )  # fmt: skip
    assert (pre.epochs, pre.batch_size, pre.amp, pre.ema, pre.img_size, pre.label_smoothing) == (
        80,
        64,
        True,
        False,
        224,
        0.2,
    )
    assert (pre.cutout, pre.include_deepest, pre.max_level_weight, pre.tree) == (0.5, False, 20.0, "fall11")
    assert RECIPES["semantic-kd-tresnet-m"].teacher == "tresnet_v2_l.miil_in21k"
    assert RECIPES["single-label-tresnet-m"].loss == "single_label"
    scratch = RECIPES["single-label-from-scratch-tresnet-m"]
    assert (scratch.opt, scratch.lr, scratch.momentum, scratch.epochs, scratch.pretrained) == (
        "sgd",
        1e-2,
        0.0,
        140,
        False,
    )
    ft = RECIPES["transfer-cifar100-mixer-b16-miil-in21k"]
    assert (ft.lr, ft.batch_size, ft.epochs, ft.ema_decay, ft.label_smoothing, ft.reprob) == (
        2e-4,
        128,
        50,
        0.995,
        0.1,
        0.5,
    )
    import timm

    for name, recipe in RECIPES.items():
        assert timm.is_model(recipe.model.split(".")[0]), name


def test_demo_tree_and_mixed_granularity_labels():
    tree = digits_tree()
    assert tree.level_histogram() == [3, 10]
    assert tree.names[tree.parents[3 + 8]] == "loop_digit"
    ds = _MixedGranularityDigits("train", tree, coarse_fraction=0.5, seed=0)
    coarse = sum(label < 3 for label in ds.labels) / len(ds)
    assert 0.45 < coarse < 0.55
    fine = _MixedGranularityDigits("test", tree, coarse_fraction=0.0, seed=0)
    assert min(fine.labels) >= 3 and len(fine) == len(digits_pil_images("test"))


@pytest.mark.slow
@pytest.mark.ddp
def test_torchrun_two_processes(tmp_path):
    from PIL import Image

    images = digits_pil_images("train", image_size=16, channels=3)
    for split, n in (("imagenet21k_train", 4), ("imagenet21k_val", 2)):
        for c, wnid in enumerate(TREE.class_list):
            (tmp_path / "data" / split / wnid).mkdir(parents=True)
            for i in range(n):
                img: Image.Image = images[c * 10 + i][0]
                img.save(tmp_path / "data" / split / wnid / f"{i}.png")
    TREE.save(tmp_path / "tree.json.gz")
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "miil.core.cli",
        "in21k", "train", "--data-root", str(tmp_path / "data"), "--tree", str(tmp_path / "tree.json.gz"),
        "--out-dir", str(tmp_path / "run"), "--model", "test_resnet", "--pretrained", "false", "--img-size", "32",
        "--amp", "false", "--device", "cpu", "--epochs", "1", "--batch-size", "4", "--num-workers", "0",
        "--progress", "false",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    best = json.loads((tmp_path / "run" / "best.json").read_text())
    assert best["world_size"] == 2 and 0.0 <= best["metrics"]["semantic_top1"] <= 100.0
