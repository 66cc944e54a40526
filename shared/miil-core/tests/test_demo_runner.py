"""``miil demo``: a line per demo as it starts, then a summary table and the total; a missing extra is one line;
with ``--jobs 2`` the demos run in worker processes and each one's output comes as one block."""

import textwrap

import pytest

from miil.core.cli import main

FAKE_DEMOS = """
from miil.core.errors import MissingExtraError


def passing(*, long=False):
    print("training the fake model")
    return {"passed": True, "summary": f"accuracy 0.97 (long={long})"}


def failing(*, long=False):
    return {"passed": False, "summary": "accuracy 0.40 below 0.90"}


def missing_extra(*, long=False):
    raise MissingExtraError("miil-audio", "demo", "soundfile", "miil demo fake-extra")


def crashing(*, long=False):
    raise RuntimeError("bug in the demo")
"""


@pytest.fixture
def fake_demos(tmp_path, monkeypatch):
    """Four demos installed through a real ``miil.demos`` entry-point file, visible to spawned workers too."""
    (tmp_path / "miil_fake_demos.py").write_text(FAKE_DEMOS)
    info = tmp_path / "miil_fake_demos-0.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: miil-fake-demos\nVersion: 0.0\n")
    (info / "entry_points.txt").write_text(
        textwrap.dedent(
            """\
            [miil.demos]
            fake-pass = miil_fake_demos:passing
            fake-fail = miil_fake_demos:failing
            fake-extra = miil_fake_demos:missing_extra
            fake-crash = miil_fake_demos:crashing
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    return ["fake-pass", "fake-extra", "fake-fail", "fake-crash"]


def _table(out: str) -> tuple[dict[str, str], str]:
    lines = out.splitlines()
    head = next(i for i, line in enumerate(lines) if line.split()[:2] == ["demo", "result"])
    assert lines[head].split() == ["demo", "result", "seconds", "cpu", "s", "summary"]
    rows = {line.split()[0]: line for line in lines[head + 1 :] if not line.startswith("total:")}
    return rows, next(line for line in lines if line.startswith("total:"))


def _check_rows(rows: dict[str, str], total: str, long: bool) -> None:
    assert rows["fake-pass"].split()[1] == "PASS" and f"accuracy 0.97 (long={long})" in rows["fake-pass"]
    assert rows["fake-fail"].split()[1] == "FAIL" and "below 0.90" in rows["fake-fail"]
    assert "needs the 'demo' extra of miil-audio" in rows["fake-extra"]
    assert "pip install 'miil-audio[demo]'" in rows["fake-extra"]
    assert "crashed (traceback above)" in rows["fake-crash"]
    for row in rows.values():
        assert float(row.split()[2]) >= 0 and float(row.split()[3]) >= 0  # wall and CPU seconds
    assert total.startswith("total: 4 demos, 1 passed, 3 failed, ")


def test_one_after_another(fake_demos, capsys):
    assert main(["demo", *fake_demos, "--long", "--jobs", "1"]) == 1
    out, err = capsys.readouterr()
    starts = [line for line in out.splitlines() if line.startswith("[")]
    assert starts == [f"[{i}/4] miil demo {n} --long ..." for i, n in enumerate(fake_demos, 1)]
    rows, total = _table(out)
    assert list(rows) == fake_demos
    _check_rows(rows, total, long=True)
    assert "RuntimeError: bug in the demo" in err and "MissingExtraError" not in err


def test_side_by_side_in_worker_processes(fake_demos, capfd):
    assert main(["demo", *fake_demos, "--jobs", "2"]) == 1
    out, _ = capfd.readouterr()
    starts = sorted(line for line in out.splitlines() if line.startswith("["))
    assert [s.split()[0] for s in starts] == ["[1/4]", "[2/4]", "[3/4]", "[4/4]"]
    assert sorted(s.split()[3] for s in starts) == sorted(fake_demos)
    block = out.split("--- miil demo fake-pass ---\n")[1]
    assert block.startswith("training the fake model\n--- miil demo fake-pass: PASS in ")
    assert "RuntimeError: bug in the demo" in out.split("--- miil demo fake-crash ---\n")[1]
    rows, total = _table(out)
    assert list(rows) == fake_demos  # the table keeps the order asked for
    _check_rows(rows, total, long=False)
    assert total.endswith("2 jobs)")


def test_unknown_demo_and_bad_jobs(capsys):
    assert main(["demo", "nope"]) == 2
    assert capsys.readouterr().err.startswith("miil demo: error: no demo named nope")
    assert main(["demo", "core", "--jobs", "0"]) == 2
    assert "--jobs must be at least 1" in capsys.readouterr().err
