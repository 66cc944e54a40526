"""The reproduction driver on a toy paper whose steps are real `miil core inspect` commands (fast, no training)."""

import json
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))

from reproduce_driver import Context, Paper, Row, Step, main  # noqa: E402

from miil.core.io import save_safetensors  # noqa: E402


def _smoke_data(root: Path) -> None:
    (root / "toy").mkdir(parents=True)
    save_safetensors({"w": torch.ones(3)}, root / "toy" / "weights.safetensors")


def _rows(ctx: Context) -> list[Row]:
    weights = ctx.data("toy", "weights.safetensors")
    shared = Step("inspect", ("core", "inspect", weights, "--summary"))

    def count(out: Path) -> float | None:
        log = out / "count.json"
        return json.loads(log.read_text())["n"] if log.is_file() else 3.0

    return [
        Row(
            "a",
            "first",
            "tensors",
            3.0,
            "toy table 1",
            "toy",
            "toy/weights.safetensors",
            ("weights.safetensors",),
            (shared,),
            count,
        ),
        Row(
            "b",
            "second",
            "tensors",
            None,
            "the paper gives none",
            "toy",
            "toy/weights.safetensors",
            ("weights.safetensors",),
            (shared, Step("again", ("core", "inspect", weights))),
            count,
        ),
        Row("c", "needs other data", "tensors", 1.0, "toy table 2", "other", "other/x", ("x",), (shared,), count),
    ]


PAPER = Paper("toy", "A toy paper", "0000.00000", _rows, _smoke_data)


def test_dry_run_prints_every_command_and_runs_nothing(tmp_path, capsys):
    assert main(PAPER, ["--data-root", str(tmp_path), "--out-dir", str(tmp_path / "out"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.count("miil core inspect") == 4 and "# a: first" in out
    assert not (tmp_path / "out").exists()


def test_smoke_run_markers_shared_steps_skipped_rows_and_results(tmp_path, capsys):
    out_dir = tmp_path / "out"
    assert main(PAPER, ["--smoke", "--out-dir", str(out_dir)]) == 0
    first = capsys.readouterr().out
    assert first.count("a/inspect: miil core inspect") == 1 and "b/inspect: done earlier, skipped" in first
    results = json.loads((out_dir / "results.json").read_text())["rows"]
    assert [(r["row"], r["status"][:7], r["ours"]) for r in results] == [
        ("a", "ok", 3.0),
        ("b", "ok", 3.0),
        ("c", "skipped", None),
    ]
    assert "data absent" in results[2]["status"] and results[0]["commit"]
    md = (out_dir / "results.md").read_text()
    assert "| a | tensors | 3 | toy table 1 | 3 | ok |" in md and "`miil core inspect" in md
    # A rerun skips every finished step and ends with the same rows.
    assert main(PAPER, ["--smoke", "--out-dir", str(out_dir)]) == 0
    assert "a/inspect: done earlier, skipped" in capsys.readouterr().out
    again = json.loads((out_dir / "results.json").read_text())["rows"]
    assert [(r["row"], r["status"], r["ours"]) for r in again] == [(r["row"], r["status"], r["ours"]) for r in results]


def test_a_present_dataset_missing_a_file_stops_before_anything_runs(tmp_path, capsys):
    (tmp_path / "toy").mkdir()
    with pytest.raises(SystemExit) as exc:
        main(PAPER, ["--data-root", str(tmp_path), "--out-dir", str(tmp_path / "out")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "toy/weights.safetensors is missing (row a; expected toy/weights.safetensors)" in err
    assert not (tmp_path / "out" / "steps").exists()


def test_unknown_rows_are_refused(tmp_path):
    with pytest.raises(SystemExit) as exc:
        main(PAPER, ["--smoke", "--out-dir", str(tmp_path), "--rows", "z"])
    assert exc.value.code == 2
