"""Every paper's reproduction script runs its whole chain in ``--smoke`` mode, as a user would start it.

Each ``tools/<pkg>/reproduce.py`` generates its miniature datasets in the real on-disk formats, runs every row's
chain of ``miil`` commands (training, conversion, validation, the package's own verbs) and writes ``results.json``
and ``results.md``; a row without a number is a broken chain.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted((ROOT / "tools").glob("*/reproduce.py"))


def test_every_paper_has_a_script():
    packages = sorted(p.name.removeprefix("miil-") for p in (ROOT / "packages").iterdir() if p.is_dir())
    assert sorted(s.parent.name for s in SCRIPTS) == packages


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda s: s.parent.name)
def test_smoke_run_gives_every_row_a_number(script, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, str(script), "--smoke", "--out-dir", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    rows = results["rows"] if isinstance(results, dict) else results
    assert rows, "no rows in results.json"
    missing = [row["row"] for row in rows if row.get("ours") is None]
    assert not missing, f"rows without a number: {missing}\n{proc.stdout[-3000:]}"
    assert (tmp_path / "out" / "results.md").is_file()


# A two-row paper whose steps are real `miil usi` commands on a miniature ImageNet: a 1-epoch teacher (shared by
# both rows), a 3-epoch student, and validate --json. The engine's test hook kills the whole script (SIGKILL) right
# after the student's epoch-2 checkpoint, as a user's Ctrl-C, OOM kill or lost node would.
_KILLABLE_PAPER = """
import sys
sys.path.insert(0, {tools!r})
from reproduce_driver import Paper, Row, Step, main, read_json_metric

COMMON = ("--data-root", None, "--num-classes", "4", "--img-size", "32", "--max-steps-per-epoch", "2",
          "--batch-size", "4", "--progress", "false", "--device", "cpu", "--num-workers", "0", "--seed", "3")

def rows(ctx):
    common = tuple(ctx.data("imagenet") if a is None else a for a in COMMON)
    teacher = Step("teacher", ("usi", "train", "--model", "test_resnet", "--teacher", "none", "--epochs", "1",
                               "--out-dir", ctx.run("teacher"), *common), run_dir=ctx.run("teacher"))
    student = Step("student", ("usi", "train", "--model", "test_resnet", "--teacher", "test_resnet",
                               "--teacher-checkpoint", ctx.run("teacher", "best.safetensors"), "--epochs", "3",
                               "--out-dir", ctx.run("student"), *common), run_dir=ctx.run("student"))
    validate = Step("validate", ("usi", "validate", "--weights", ctx.run("student"), "--data-root",
                                 ctx.data("imagenet"), "--json", ctx.run("student.json"), "--progress", "false",
                                 "--device", "cpu", "--num-workers", "0"))
    top1 = lambda out: read_json_metric(out / "student.json", "metrics", "top1")
    return [
        Row("teacher", "teacher", "top-1 %", None, "none", "imagenet", "imagenet/", ("train", "val"), (teacher,),
            lambda out: 0.0),
        Row("student", "student", "top-1 %", None, "none", "imagenet", "imagenet/", ("train", "val"),
            (teacher, student, validate), top1),
    ]

def smoke(root):
    from miil.core.miniature import make_imagenet
    make_imagenet(root / "imagenet", num_classes=4, train_per_class=4, val_per_class=2)

sys.exit(main(Paper("usi", "killable", "0", rows, smoke)))
"""


def _epochs(run: Path) -> list[dict]:
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if x.strip()]
    return [{k: v for k, v in line.items() if "time" not in k and not k.endswith("_s")} for line in lines]


def test_a_killed_script_loses_no_finished_step_and_resumes_the_training_exactly(tmp_path):
    from safetensors.torch import load_file

    script = tmp_path / "killable.py"
    script.write_text(_KILLABLE_PAPER.format(tools=str(ROOT / "tools")))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

    def run(out: Path, **extra: str) -> subprocess.CompletedProcess:
        cmd = [sys.executable, str(script), "--smoke", "--out-dir", str(out)]
        return subprocess.run(cmd, capture_output=True, text=True, env={**env, **extra}, timeout=600)

    straight = run(tmp_path / "straight")
    assert straight.returncode == 0, straight.stdout[-2000:] + straight.stderr[-2000:]

    killed = run(tmp_path / "resumed", MIIL_TEST_KILL_AFTER_EPOCH="2")
    assert killed.returncode == -9, killed.stdout[-2000:] + killed.stderr[-2000:]
    steps = tmp_path / "resumed" / "steps"
    assert (steps / "teacher.json").is_file() and not (steps / "student.json").is_file()
    assert len(_epochs(tmp_path / "resumed" / "student")) == 2

    resumed = run(tmp_path / "resumed")
    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-2000:]
    assert "teacher: done earlier, skipped" in resumed.stdout
    assert "--resume" in resumed.stdout  # the student's command line, as the driver printed it, resumes

    a, b = (tmp_path / d / "student" for d in ("straight", "resumed"))
    assert _epochs(b) == _epochs(a) and len(_epochs(a)) == 3
    wa, wb = load_file(a / "best.safetensors"), load_file(b / "best.safetensors")
    assert wa.keys() == wb.keys() and all(bool((wa[k] == wb[k]).all()) for k in wa)
    got = {d: json.loads((tmp_path / d / "results.json").read_text())["rows"] for d in ("straight", "resumed")}
    assert got["resumed"][1]["ours"] == got["straight"][1]["ours"] is not None
