import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

WORKER = Path(__file__).with_name("ddp_usi_worker.py")


@pytest.mark.ddp
@pytest.mark.slow
def test_two_torchrun_ranks_repeated_augmentation_and_kd_training(tmp_path, imagenet_root, teacher_checkpoint):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(WORKER)]
    cmd += [str(tmp_path / "out"), str(imagenet_root), str(teacher_checkpoint)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=400, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads((tmp_path / "out" / "sampler.json").read_text())
    assert report["world"] == 2
    n = 25
    for epoch in (0, 1):
        rep = report[f"repeats/{epoch}"]
        assert rep["sizes"] == [38, 38]  # ceil(3 * 25 / 2) each: equal lengths, as DDP needs
        counts = Counter(rep["indices"])
        assert set(counts) == set(range(n)) and sum(counts.values()) == 76
        assert sorted(counts.values()) == [3] * (n - 1) + [4]  # every sample 3 times, 1 wrap-around pad
        short = report[f"dataset/{epoch}"]
        assert short["sizes"] == [13, 13]
        c = Counter(short["indices"])
        assert sum(v != 3 for v in c.values()) <= 1 and sum(c.values()) == 26
    assert report["repeats/0"]["indices"] != report["repeats/1"]["indices"]  # reshuffled per epoch
    run = tmp_path / "out" / "run"
    best = json.loads((run / "best.json").read_text())
    assert best["world_size"] == 2 and best["run_info"]["kd"] == "online teacher"
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 1 and rows[0]["updates"] == 3  # 24 images, "dataset" epochs: 12 draws per rank, batch 4
