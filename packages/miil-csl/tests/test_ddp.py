import json
import os
import subprocess
import sys

import pytest

from miil.csl import load_prior


@pytest.mark.ddp
def test_two_stage_training_under_torchrun(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "miil.core.cli"]
    cmd += ["csl", "train", "--recipe", "mosaic-fpc200-csl", "--out-dir", str(out), "--epochs", "1"]
    cmd += [
        "--max-steps-per-epoch",
        "4",
        "--ema",
        "false",
        "--model-kwargs",
        '{"width": 4}',
        "--progress",
        "false",
        "--device",
        "cpu",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.stdout.count("FPC(200)") == 1  # the simulation summary is printed by rank 0 only
    assert load_prior(out / "prior.csv").classes == [str(d) for d in range(10)]
    for run in (out, out / "stage1_ignore"):
        meta = json.loads((run / "best.json").read_text())
        assert meta["world_size"] == 2
        assert 0.0 < meta["metrics"]["mAP"] <= 100.0
