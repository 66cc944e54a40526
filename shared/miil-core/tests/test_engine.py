import json
import math

import pytest
import torch
import torch.nn as nn
from torch.utils.data import Dataset, TensorDataset

from miil.core.metrics import AccuracyMeter
from miil.core.train import OneCycleSchedule, TrainConfig, Trainer, load_run_weights


def _data(n=96, d=8, classes=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    w = torch.randn(d, classes, generator=g)
    return TensorDataset(x, (x @ w).argmax(1))


def _model(seed=0):
    torch.manual_seed(seed)
    # BatchNorm and dropout: resume must restore buffers and replay the randomness.
    return nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 3))


def _cfg(tmp_path, name, **kw):
    base = dict(
        out_dir=str(tmp_path / name),
        epochs=3,
        batch_size=16,
        lr=0.05,
        opt="sgd",
        sched="cosine",
        warmup_epochs=1,
        ema=True,
        ema_decay=0.9,
        progress=False,
        device="cpu",
        seed=3,
    )
    base.update(kw)
    return TrainConfig(**base)


def _trainer(cfg, step_fn=None, model=None):
    return Trainer(
        model or _model(),
        nn.CrossEntropyLoss(),
        _data(),
        cfg,
        val_dataset=_data(48, seed=1),
        meter=AccuracyMeter(topk=(1,)),
        step_fn=step_fn,
    )


class _Crash(RuntimeError):
    pass


def test_resume_after_interruption_matches_uninterrupted_run(tmp_path):
    full = _trainer(_cfg(tmp_path, "full"))
    full.fit()
    expected, _ = load_run_weights(tmp_path / "full", "last")

    calls = {"n": 0}
    loss_fn = nn.CrossEntropyLoss()

    def crashing_step(model, batch):
        calls["n"] += 1
        if calls["n"] > 2 * 6 + 3:  # 6 updates per epoch: die in the middle of the third epoch
            raise _Crash("simulated power cut")
        return loss_fn(model(batch[0]), batch[1])

    with pytest.raises(_Crash):
        _trainer(_cfg(tmp_path, "cut"), step_fn=crashing_step).fit()
    meta = json.loads((tmp_path / "cut" / "last.json").read_text())
    assert meta["epoch"] == 1  # epochs 0 and 1 were checkpointed, the partial epoch 2 was not

    resumed = _trainer(_cfg(tmp_path, "cut", resume=True), model=_model(seed=123))
    assert resumed.start_epoch == 0  # nothing loaded until fit()
    result = resumed.fit()
    got, _ = load_run_weights(tmp_path / "cut", "last")
    assert expected.keys() == got.keys()
    for k in expected:
        assert torch.equal(expected[k], got[k]), k
    # EMA state and history continue too: same best, and one metrics row per epoch.
    assert result.best_metric == full.best_metric
    rows = (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(r)["epoch"] for r in rows] == [0, 1, 2]


def test_run_dir_files_keep_best_and_refusal_to_overwrite(tmp_path):
    result = _trainer(_cfg(tmp_path, "run")).fit()
    run = tmp_path / "run"
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["config"]["lr"] == 0.05 and cfg["config_class"] == "TrainConfig"
    rows = [json.loads(r) for r in (run / "metrics.jsonl").read_text().splitlines()]
    scores = [(r["val"]["top1"], "raw") for r in rows] + [(r["val_ema"]["top1"], "ema") for r in rows]
    assert result.best_metric == max(s for s, _ in scores)
    best_w, best_meta = load_run_weights(run, "best")
    assert best_meta["source"] in ("raw", "ema") and best_meta["metrics"]["top1"] == result.best_metric
    # The saved best weights really score the best metric.
    model = _model()
    model.load_state_dict(best_w)
    trainer = _trainer(_cfg(tmp_path, "other"), model=model)
    assert trainer.evaluate(model)["top1"] == pytest.approx(result.best_metric)
    assert len(list((run / "checkpoints").iterdir())) == 2  # only the last epoch's weights + state
    with pytest.raises(FileExistsError, match="--resume"):
        _trainer(_cfg(tmp_path, "run")).fit()


class _SomeUnreadable(Dataset):
    def __init__(self):
        self.inner = _data()

    def __len__(self):
        return len(self.inner)

    def __getitem__(self, i):
        return None if i % 10 == 0 else self.inner[i]


def test_unreadable_samples_are_skipped_and_counted(tmp_path):
    cfg = _cfg(tmp_path, "bad", epochs=1, ema=False)
    trainer = Trainer(_model(), nn.CrossEntropyLoss(), _SomeUnreadable(), cfg)
    row = trainer.fit().history[0]
    assert row["skipped_unreadable"] == 10  # indices 0, 10, ..., 90


def test_amp_is_off_on_cpu_unless_a_dtype_is_asked_for(tmp_path):
    # Recipes carry amp=True for GPUs; on the CPU "auto" means fp32 training and evaluation.
    cfg = _cfg(tmp_path, "auto", epochs=1, amp=True)
    trainer = Trainer(_model(), nn.CrossEntropyLoss(), _data(), cfg)
    assert trainer.amp_dtype is None and trainer.eval_precision == "fp32"


def test_validate_verbs_run_in_the_stored_precision_unless_amp_is_given():
    from miil.core.evaluate import choose_precision

    assert choose_precision("bf16") == "bf16" and choose_precision(None) == "fp32"
    assert choose_precision("bf16", amp=False) == "fp32"
    assert choose_precision("fp32", amp=True, device="cpu") == "bf16"
    assert choose_precision("fp32", amp=True, amp_dtype="float16", device="cpu") == "fp16"
    with pytest.raises(ValueError, match="eval_precision"):
        choose_precision("int8")


def test_amp_bf16_on_cpu_and_no_validation(tmp_path):
    cfg = _cfg(tmp_path, "amp", epochs=2, amp=True, amp_dtype="bfloat16", sched="onecycle", opt="adamw", lr=1e-2)
    trainer = Trainer(_model(), nn.CrossEntropyLoss(), _data(), cfg)
    assert trainer.amp_dtype == torch.bfloat16 and trainer.eval_precision == "bf16"
    result = trainer.fit()
    assert all(math.isfinite(r["train_loss"]) for r in result.history)
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    assert (tmp_path / "amp" / "best.safetensors").exists()


def test_one_cycle_matches_torch():
    p = nn.Parameter(torch.zeros(1))
    ours = torch.optim.Adam([p], lr=1.0)
    ref_opt = torch.optim.Adam([nn.Parameter(torch.zeros(1))], lr=1.0)
    total = 50
    sched = OneCycleSchedule(ours, max_lr=2e-4, total_steps=total, pct_start=0.2)
    ref = torch.optim.lr_scheduler.OneCycleLR(ref_opt, max_lr=2e-4, total_steps=total, pct_start=0.2)
    for step in range(total):
        sched.step_update(step)
        assert ours.param_groups[0]["lr"] == pytest.approx(ref_opt.param_groups[0]["lr"], rel=1e-9, abs=1e-15)
        assert ours.param_groups[0]["betas"][0] == pytest.approx(ref_opt.param_groups[0]["betas"][0], rel=1e-9)
        ref_opt.step()
        ref.step()


def test_bad_config_values_are_reported(tmp_path):
    with pytest.raises(ValueError, match="eval_mode"):
        _trainer(_cfg(tmp_path, "x", eval_mode="best"))
    with pytest.raises(ValueError, match="batch"):
        Trainer(_model(), nn.CrossEntropyLoss(), _data(n=8), _cfg(tmp_path, "y"))


def test_one_cycle_paper_variant_without_momentum_cycling():
    ours = torch.optim.Adam([nn.Parameter(torch.zeros(1))], lr=1.0, betas=(0.9, 0.999))
    ref_opt = torch.optim.Adam([nn.Parameter(torch.zeros(1))], lr=1.0, betas=(0.9, 0.999))
    sched = OneCycleSchedule(ours, max_lr=1e-4, total_steps=30, pct_start=0.2, div_factor=20, cycle_momentum=False)
    ref = torch.optim.lr_scheduler.OneCycleLR(
        ref_opt, max_lr=1e-4, total_steps=30, pct_start=0.2, div_factor=20, cycle_momentum=False
    )
    for step in range(30):
        sched.step_update(step)
        assert ours.param_groups[0]["lr"] == pytest.approx(ref_opt.param_groups[0]["lr"], rel=1e-9, abs=1e-15)
        assert ours.param_groups[0]["betas"] == (0.9, 0.999)
        ref_opt.step()
        ref.step()


def test_step_schedule_uses_the_recipe_decay(tmp_path):
    # EfficientNet-style step decay (0.97 every 2.4 epochs), per update: the lr after u updates is lr * 0.97^floor(.)
    cfg = _cfg(tmp_path, "step", sched="step", decay_epochs=2.4, decay_rate=0.97, warmup_epochs=0, epochs=6)
    trainer = _trainer(cfg)
    upe = trainer.updates_per_epoch
    for updates in (0, int(2.4 * upe), int(4.8 * upe) + 1, 6 * upe - 1):
        trainer.schedule.step_update(updates)
        expected = 0.05 * 0.97 ** math.floor(updates / (2.4 * upe))
        assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(expected, rel=1e-9)


class _SaturatedMeter:
    """mAP stuck at 100 (a tiny validation set), top-1 telling the models apart: what the album run hit."""

    def __init__(self):
        self.correct = self.total = 0

    def reset(self):
        self.correct = self.total = 0

    def update(self, outputs, targets):
        self.correct += int((outputs.argmax(1) == targets).sum())
        self.total += len(targets)

    def compute(self):
        return {"mAP": 100.0, "top1": 100.0 * self.correct / max(self.total, 1)}


def test_saturated_metric_is_decided_by_the_tiebreak_and_the_choice_is_logged(tmp_path, capsys):
    cfg = _cfg(tmp_path, "tie", epochs=3, eval_metric="mAP", eval_tiebreak="top1", ema_decay=0.99)
    trainer = Trainer(
        _model(), nn.CrossEntropyLoss(), _data(), cfg, val_dataset=_data(48, seed=1), meter=_SaturatedMeter()
    )
    result = trainer.fit()
    rows = [json.loads(x) for x in (tmp_path / "tie" / "metrics.jsonl").read_text().splitlines()]
    candidates = [(r["epoch"], src, r[key]["top1"]) for r in rows for src, key in (("raw", "val"), ("ema", "val_ema"))]
    best_top1 = max(c[2] for c in candidates)
    first_best = next(c for c in candidates if c[2] == best_top1)
    assert (result.best_epoch, result.best_source) == first_best[:2]
    assert json.loads((tmp_path / "tie" / "best.json").read_text())["metrics"]["top1"] == best_top1
    for r in rows:
        sel = r["selected"]
        assert sel["metric"] == "mAP" and sel["tiebreak"] == "top1" and sel["source"] in ("raw", "ema")
        assert sel["tiebreak_value"] == max(r["val"]["top1"], r["val_ema"]["top1"])
    # progress off: one line per epoch with loss, lr, the validation metrics, the choice and the time
    lines = [x for x in capsys.readouterr().out.splitlines() if x.startswith("epoch ")]
    assert len(lines) == 3 and all("loss " in x and "lr " in x and "val top1" not in x and "kept " in x for x in lines)
    assert all("val mAP 100" in x for x in lines)
