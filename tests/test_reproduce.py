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
