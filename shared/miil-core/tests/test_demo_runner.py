"""``miil demo``: a line per demo as it starts, then a summary table and the total; a missing extra is one line."""

import pytest

import miil.core.cli as cli
from miil.core.errors import MissingExtraError


class _EntryPoint:
    def __init__(self, func):
        self.func = func

    def load(self):
        return self.func


def _passing(*, long=False):
    return {"passed": True, "summary": f"accuracy 0.97 (long={long})"}


def _failing(*, long=False):
    return {"passed": False, "summary": "accuracy 0.40 below 0.90"}


def _missing_extra(*, long=False):
    raise MissingExtraError("miil-audio", "demo", "soundfile", "miil demo audio")


def _crashing(*, long=False):
    raise RuntimeError("bug in the demo")


@pytest.fixture
def demos(monkeypatch):
    table = {"core": _passing, "audio": _missing_extra, "stam": _failing, "usi": _crashing, "album": _passing}
    real = cli._entry_points
    monkeypatch.setattr(
        cli,
        "_entry_points",
        lambda group: {k: _EntryPoint(v) for k, v in table.items()} if group == cli.DEMOS_GROUP else real(group),
    )


def test_summary_table_and_total(demos, capsys):
    assert cli.main(["demo", "--long"]) == 1
    out, err = capsys.readouterr()
    lines = out.splitlines()
    starts = [line for line in lines if line.startswith("[")]
    assert starts == [
        f"[{i}/5] miil demo {n} --long ..." for i, n in enumerate(("core", "album", "audio", "stam", "usi"), 1)
    ]
    table = lines[lines.index(next(x for x in lines if x.startswith("demo "))) :]
    assert table[0].split() == ["demo", "result", "seconds", "cpu", "s", "summary"]
    rows = {row.split()[0]: row for row in table[1:6]}
    assert rows["core"].split()[1] == "PASS" and "accuracy 0.97 (long=True)" in rows["core"]
    assert rows["stam"].split()[1] == "FAIL" and "below 0.90" in rows["stam"]
    assert "needs the 'demo' extra of miil-audio" in rows["audio"] and "pip install 'miil-audio[demo]'" in rows["audio"]
    assert "crashed (traceback above)" in rows["usi"]
    assert table[6].startswith("total: 5 demos, 2 passed, 3 failed, ")
    assert "RuntimeError: bug in the demo" in err and "MissingExtraError" not in err


def test_selected_demos_and_exit_status(demos, capsys):
    assert cli.main(["demo", "core", "album"]) == 0
    out = capsys.readouterr().out
    assert "[1/2] miil demo core ..." in out and "(long=False)" in out and "total: 2 demos, 2 passed, 0 failed" in out
    assert cli.main(["demo", "nope"]) == 2
    assert capsys.readouterr().err.startswith("miil demo: error: no demo named nope")
