"""Two CPU processes under torchrun: ``miil mldecoder train`` on a miniature COCO-2014 (EMA on), then ``validate`` of
the saved best weights in one process gives the mAP recorded in best.json (the metric that picked them)."""

import json
import os
import subprocess
import sys

import pytest

TINY_RESNET = '{"layers": [1, 1, 1, 1], "channels": [8, 16, 32, 64], "stem_width": 8}'


@pytest.mark.ddp
def test_torchrun_train_then_validate_gives_the_recorded_map(coco_root, tmp_path):
    run = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "miil.core.cli"]
    cmd += ["mldecoder", "train", "--recipe", "coco-tresnet-m-224", "--data-root", str(coco_root)]
    cmd += ["--model", "resnet18", "--model-kwargs", TINY_RESNET, "--img-size", "32", "--epochs", "2"]
    cmd += ["--batch-size", "4", "--ema", "true", "--ema-decay", "0.5", "--num-classes", "0", "--embed-dim", "16"]
    cmd += ["--num-heads", "2", "--ffn-dim", "32", "--device", "cpu", "--progress", "false", "--out-dir", str(run)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.stdout.count("done: best mAP") == 1  # rank 0 speaks
    best = json.loads((run / "best.json").read_text())
    assert best["world_size"] == 2 and best["config"]["ema"] and best["eval_precision"] == "fp32"
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and all("val_ema" in r for r in rows)

    report = tmp_path / "validate.json"
    cmd = [sys.executable, "-m", "miil.core.cli", "mldecoder", "validate", "--weights", str(run)]
    proc = subprocess.run(cmd + ["--json", str(report), "--progress", "false"], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    got = json.loads(report.read_text())
    assert got["samples"] == 24 and got["precision"] == "fp32"
    assert abs(got["metrics"]["mAP"] - best["metrics"]["mAP"]) <= 1e-6, (
        got["metrics"],
        best["metrics"],
        best["source"],
    )
