"""``miil album train`` under torchrun with two CPU processes (gloo)."""

import json
import os
import subprocess
import sys

import pytest

from .conftest import CUFED_CLASSES
from .test_cli import TINY


@pytest.mark.ddp
@pytest.mark.slow
def test_train_under_torchrun_two_processes(cufed_root, tmp_path):
    run = tmp_path / "ddp"
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        "-m", "miil.core.cli", "album", "train", "--data-root", str(cufed_root), "--out-dir", str(run), *TINY,
        "--batch-size", "1",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    config = json.loads((run / "config.json").read_text())
    assert config["world_size"] == 2 and config["run_info"]["classes"] == CUFED_CLASSES
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 1 and rows[0]["updates"] >= 1 and "mAP" in rows[0]["val"]
    assert (run / "best.safetensors").is_file()
