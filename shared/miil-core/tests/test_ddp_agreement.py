"""Ranks agree, and the metric that picked "best" is the metric a fresh evaluation of the saved weights gives.

Two CPU processes under torchrun train a BatchNorm CNN with EMA on real digits. BatchNorm running statistics are
updated from each rank's own batches, so without the engine's end-of-epoch broadcast the ranks (and their EMA copies)
end an epoch with different buffers, score different weights, and a resumed run differs from an uninterrupted one.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn as nn

from miil.core.data import DigitsDataset
from miil.core.evaluate import evaluate
from miil.core.io import load_checkpoint
from miil.core.metrics import AccuracyMeter

WORKER = Path(__file__).with_name("ddp_bn_worker.py")
TIMING = ("epoch_time_s", "samples_per_s")


def _torchrun(tmp_path, *args, kill_after=None, check=True):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("MIIL_TEST_KILL_AFTER_EPOCH", None)
    if kill_after is not None:
        env["MIIL_TEST_KILL_AFTER_EPOCH"] = str(kill_after)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(WORKER), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, cwd=tmp_path)
    if check:
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def _rows(run: Path) -> list[dict]:
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in TIMING} for r in rows]


@pytest.mark.ddp
def test_ranks_agree_and_best_metric_is_what_evaluation_reports(tmp_path):
    run = tmp_path / "run"
    _torchrun(tmp_path, str(run))
    rank0, rank1 = load_checkpoint(run / "rank0.safetensors"), load_checkpoint(run / "rank1.safetensors")
    assert any(k.startswith("raw.") and "running_mean" in k for k in rank0)
    for key in rank0:  # weights and BatchNorm buffers, raw and EMA, bit for bit
        assert torch.equal(rank0[key], rank1[key]), key
    best = json.loads((run / "best.json").read_text())
    sys.path.insert(0, str(WORKER.parent))
    from ddp_bn_worker import build_model

    model = build_model()
    model.load_state_dict(load_checkpoint(run / "best.safetensors"))
    report = evaluate(model, DigitsDataset("test"), meter=AccuracyMeter(topk=(1,)), precision=best["eval_precision"])
    assert report.samples == len(DigitsDataset("test"))
    assert report.metrics["top1"] == pytest.approx(best["metrics"]["top1"], abs=1e-6)
    rows = _rows(run)
    assert all(r["selected"]["source"] in ("raw", "ema") for r in rows)
    assert rows[-1]["best"]["source"] == best["source"] and rows[-1]["best"]["epoch"] == best["epoch"]


@pytest.mark.ddp
def test_killed_and_resumed_run_equals_uninterrupted(tmp_path):
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    _torchrun(tmp_path, str(whole))
    killed = _torchrun(tmp_path, str(broken), kill_after=1, check=False)
    assert killed.returncode != 0 and json.loads((broken / "last.json").read_text())["epoch"] == 0
    _torchrun(tmp_path, str(broken), "resume")
    for name in ("best.safetensors", "rank0.safetensors"):
        a, b = load_checkpoint(whole / name), load_checkpoint(broken / name)
        assert a.keys() == b.keys()
        for key in a:
            assert torch.equal(a[key], b[key]), f"{name}: {key}"
    last_a = json.loads((whole / "last.json").read_text())
    last_b = json.loads((broken / "last.json").read_text())
    for key in ("epoch", "global_step", "best_metric", "best_epoch", "best_source"):
        assert last_a[key] == last_b[key], key
    state_a = load_checkpoint(whole / last_a["state"])
    state_b = load_checkpoint(broken / last_b["state"])
    for key, value in state_a["ema"].items():
        assert torch.equal(value, state_b["ema"][key]), f"ema {key}"
    assert _rows(whole) == _rows(broken)


def test_in_training_validation_equals_fresh_evaluation_in_each_precision(tmp_path):
    from miil.core.train import TrainConfig, Trainer

    sys.path.insert(0, str(WORKER.parent))
    from ddp_bn_worker import build_model

    for name, extra in (("fp32", {}), ("bf16", {"amp": True, "amp_dtype": "bfloat16"})):
        cfg = TrainConfig(
            out_dir=str(tmp_path / name),
            epochs=1,
            batch_size=32,
            lr=0.05,
            opt="sgd",
            ema=False,
            progress=False,
            device="cpu",
            max_steps_per_epoch=8,
            **extra,
        )
        trainer = Trainer(
            build_model(),
            nn.CrossEntropyLoss(),
            DigitsDataset("train"),
            cfg,
            val_dataset=DigitsDataset("test"),
            meter=AccuracyMeter(topk=(1,)),
        )
        trainer.fit()
        best = json.loads((tmp_path / name / "best.json").read_text())
        assert best["eval_precision"] == name
        model = build_model()
        model.load_state_dict(load_checkpoint(tmp_path / name / "best.safetensors"))
        again = evaluate(
            model,
            DigitsDataset("test"),
            meter=AccuracyMeter(topk=(1,)),
            loss_fn=nn.CrossEntropyLoss(),
            precision=best["eval_precision"],
        )
        assert again.metrics["top1"] == best["metrics"]["top1"]
        assert again.metrics["loss"] == pytest.approx(best["metrics"]["loss"], rel=1e-12)
