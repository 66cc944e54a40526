import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from miil.core.io import load_checkpoint

WORKER = Path(__file__).with_name("ddp_worker.py")


def _run(cmd, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


@pytest.mark.ddp
def test_torchrun_two_cpu_processes_match_one_process(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    _run([sys.executable, str(WORKER), str(one), "64"], tmp_path)
    _run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node=2",
            str(WORKER),
            str(two),
            "32",
        ],
        tmp_path,
    )
    with safe_open(str(two / "final.safetensors"), "pt") as f:
        assert f.metadata()["world"] == "2"
    a, b = load_checkpoint(one / "final.safetensors"), load_checkpoint(two / "final.safetensors")
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-5, msg=k)
    # Validation is sharded without padding and gathered: both runs report the same accuracy.
    best_one = json.loads((one / "best.json").read_text())["metrics"]["top1"]
    best_two = json.loads((two / "best.json").read_text())["metrics"]["top1"]
    assert best_one == pytest.approx(best_two, abs=0.2)
    assert best_one > 50.0  # chance is 10


_SHUTDOWN_WORKER = """
import os
import torch
from miil.core import distributed as du
from miil.core.cli import main

def command(args):
    du.init_distributed("cpu")
    return int(du.all_reduce_sum(torch.ones(1)).item())

def register(parser):
    parser.set_defaults(func=command)

import miil.core.cli as cli
cli._entry_points = lambda group: {"probe": type("EP", (), {"load": lambda self: register})()}
rank = os.environ["RANK"]
code = main(["probe"])
with open(f"rank{rank}.txt", "w") as f:
    f.write(f"initialised-then-destroyed {du.is_distributed()} {code}")
"""


@pytest.mark.ddp
def test_cli_tears_down_the_process_group(tmp_path):
    # Every `miil <pkg>` command leaves no process group behind: gloo groups alive at exit abort ranks at random.
    script = tmp_path / "probe.py"
    script.write_text(_SHUTDOWN_WORKER)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # all_reduce of ones over two ranks returned 2 from the command; the group was gone afterwards on both.
    for rank in (0, 1):
        assert (tmp_path / f"rank{rank}.txt").read_text() == "initialised-then-destroyed False 2"
