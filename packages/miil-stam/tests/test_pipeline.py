"""Training and evaluation steps: distillation, multi-view averaging, recipe plumbing, KD training from the CLI."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from miil.core.cli import main
from miil.core.errors import UserError
from miil.core.losses import distillation_loss
from miil.stam import RECIPES, STAM16
from miil.stam.pipeline import clip_sampling, distillation_step, frame_transform, model_config, multiview_eval_fn


class _Fixed(torch.nn.Module):
    def __init__(self, logits: torch.Tensor):
        super().__init__()
        self.logits = logits
        self.calls = 0

    def forward(self, clips):
        self.calls += 1
        return self.logits[: clips.shape[0]]


def test_distillation_step_mixes_ce_and_kd():
    clips, targets = torch.rand(3, 4, 3, 8, 8), torch.tensor([0, 2, 1])
    student_logits = torch.randn(3, 5, requires_grad=True)
    teacher_logits = torch.randn(3, 5)
    student, teacher = _Fixed(student_logits), _Fixed(teacher_logits)
    ce = F.cross_entropy(student_logits, targets)
    kd = distillation_loss(student_logits, teacher_logits, temperature=2.0)
    plain = distillation_step(None, alpha=0.0, temperature=2.0)(student, (clips, targets))
    torch.testing.assert_close(plain, ce)
    mixed = distillation_step(teacher, alpha=0.25, temperature=2.0)(student, (clips, targets))
    torch.testing.assert_close(mixed, 0.75 * ce + 0.25 * kd)
    assert teacher.calls == 1 and not teacher.training
    with pytest.raises(UserError, match="teacher"):
        distillation_step(None, alpha=0.5, temperature=1.0)


def test_multiview_eval_averages_view_probabilities():
    logits = torch.tensor([[2.0, 0.0], [0.0, 2.0], [4.0, 0.0], [4.0, 0.0]])  # video 0: views tie; video 1: class 0
    model = _Fixed(logits)
    views = torch.rand(2, 2, 4, 3, 8, 8)
    scores, targets = multiview_eval_fn(model, (views, torch.tensor([0, 0])))
    probs = F.softmax(logits, dim=-1).view(2, 2, 2).mean(1)
    torch.testing.assert_close(scores.exp(), probs)
    single, _ = multiview_eval_fn(_Fixed(logits[:2]), (torch.rand(2, 4, 3, 8, 8), torch.tensor([0, 1])))
    torch.testing.assert_close(single, F.log_softmax(logits[:2], dim=-1))


def test_recipe_plumbing():
    recipe = STAM16()
    assert recipe.normalize == "none" and recipe.eval_crop == "center" and recipe.crop_zoom == 0.875
    sampling = clip_sampling(recipe, training=False)
    assert (sampling.mode, sampling.num_frames, sampling.frame_rate, sampling.num_views) == ("fixed_fps", 16, 1.6, 1)
    transform = frame_transform(recipe, training=False)
    assert transform.mean is None and transform.size == 224 and int(224 / transform.zoom) == 256
    cfg = model_config(RECIPES["stam-64"])
    assert cfg["num_frames"] == 64 and cfg["temporal_depth"] == 6 and cfg["spatial_kwargs"] == {"img_size": 224}
    assert json.loads(json.dumps(cfg)) == cfg


def test_train_with_distillation_from_a_teacher_run(trained_run, motion_root, tmp_path, tiny_cli_args):
    out = tmp_path / "student"
    args = ["stam", "train", "--recipe", "stam-8", "--data-format", "folder", "--data-root", str(motion_root),
            "--train-split", ".", "--out-dir", str(out), "--epochs", "1", *tiny_cli_args,
            "--teacher-checkpoint", str(trained_run), "--kd-weight", "0.5", "--kd-temperature", "2"]  # fmt: skip
    assert main(args) == 0
    config = json.loads((out / "config.json").read_text())["config"]
    assert config["kd_weight"] == 0.5 and config["teacher_checkpoint"] == str(trained_run)
    row = json.loads((out / "metrics.jsonl").read_text().splitlines()[0])
    assert row["updates"] >= 1 and row["train_loss"] > 0


def test_default_recipe_trains_on_real_clips(motion_root, tmp_path, tiny_cli_args):
    """``miil stam train`` with its default recipe (STAM-16: 16 frames at 1.6 fps, random-resized crops, flips, AMP),
    as a user runs it, on clips encoded from real images; only the model and the frame size are tiny."""
    i = tiny_cli_args.index("--amp")
    tiny = tiny_cli_args[:i] + tiny_cli_args[i + 2 :]  # the recipe's AMP (on a CPU, --amp-dtype auto turns it off)
    out = tmp_path / "run"
    args = ["stam", "train", "--data-format", "folder", "--data-root", str(motion_root), "--train-split", ".",
            "--val-split", ".", "--out-dir", str(out)]  # fmt: skip
    assert main([*args, "--epochs", "1", "--max-steps-per-epoch", "2", *tiny]) == 0
    best = json.loads((out / "best.json").read_text())
    assert best["run_info"]["recipe"] == "stam-16" and best["config"]["num_frames"] == 16 and best["config"]["amp"]
    assert 0 <= best["metrics"]["top1"] <= 100
