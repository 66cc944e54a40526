"""Supernet training under torchrun (2 CPU processes, gloo): per-sample routing leaves options unused per rank."""

import json
import os
import subprocess
import sys

import pytest

from miil.core.cli import main
from miil.hardcore import load_supernet

from .test_cli import TRAIN, imagenet  # noqa: F401  (fixture)


@pytest.mark.slow
@pytest.mark.ddp
def test_multipath_supernet_under_torchrun(tmp_path, tiny_space, imagenet):  # noqa: F811
    space_file = tmp_path / "space.json"
    space_file.write_text(json.dumps(tiny_space.to_dict()))
    common = ["--space", str(space_file), "--img-size", "16", "--data-root", str(imagenet)]
    heavy, multi = tmp_path / "heavy", tmp_path / "multi"
    assert (
        main(
            ["hardcore", "train-supernet", "--recipe", "heaviest-path-digits", *common, "--out-dir", str(heavy), *TRAIN]
        )
        == 0
    )
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "miil.core.cli",
        "hardcore",
        "train-supernet",
        "--recipe",
        "multipath-digits",
        *common,
        "--init-checkpoint",
        str(heavy),
        "--out-dir",
        str(multi),
        *TRAIN,
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    meta = json.loads((multi / "best.json").read_text())
    assert meta["world_size"] == 2 and meta["run_info"]["stage"] == "multipath"
    assert load_supernet(multi).space == tiny_space
