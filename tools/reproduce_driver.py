"""The small driver every ``tools/<pkg>/reproduce.py`` runs on: a paper's rows, their steps, resume, results.

A reproduction script describes the paper (its rows: the number the paper reports, where it reports it, the steps
that produce ours, and how to read ours back) and calls :func:`main`. The driver gives all ten scripts one interface::

    uv run python tools/<pkg>/reproduce.py --data-root DIR [--rows ROW ...] [--gpus N] [--out-dir runs/<pkg>]
                                           [--dry-run] [--smoke]

- Every step is a ``miil`` command line; training steps run under ``torchrun --standalone --nproc_per_node=N`` when
  ``--gpus N`` is more than 1. ``--dry-run`` prints every command in order and runs nothing. Rows may share steps
  (a latency table, a supernet, a teacher): a step runs once and later rows reuse its outputs.
- Resumable: a finished step leaves a marker in ``<out-dir>/steps/``; a rerun skips finished steps and resumes an
  interrupted training step through the engine's exact resume (``--resume`` when its run folder, or a stage folder
  in it, holds a checkpoint).
  Markers are written atomically after a step ends, so killing the script at any point loses no finished step.
- Data: each row names the dataset folder and the files it needs. A row whose dataset folder is absent is skipped
  (the reason goes into the results); a dataset folder that is there but lacks a file the row needs stops the script
  before any training, naming the file and the layout expected.
- ``--smoke`` writes miniature copies of the datasets in their real on-disk formats (the package's generators) into
  ``<out-dir>/smoke-data`` and runs every row's whole chain with tiny models and a few steps, in this process (one
  torch import for all steps).
- At the end (and after every row) it writes ``results.md`` and ``results.json``: per row the paper's number and its
  source, ours, the metric, the exact commands, the git commit and the wall time; rows that did not run say why.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Context", "Paper", "Row", "Step", "main", "read_json_metric"]

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Step:
    """One ``miil`` command of a row.

    Args:
        name: The step's id within the script (it names the marker and the log). Rows may share a step (a latency
            table, a supernet, a teacher): the same name with the same command runs once.
        argv: The arguments after ``miil`` (``("mldecoder", "train", "--recipe", ...)``).
        run_dir: For a training step, its ``--out-dir``: a checkpoint there means "resume", and the step may run
            under torchrun.
        ok_codes: Exit statuses that count as success (3 = finished, some inputs skipped).
    """

    name: str
    argv: tuple[str, ...]
    run_dir: str | None = None
    ok_codes: tuple[int, ...] = (0,)

    @property
    def trains(self) -> bool:
        return self.run_dir is not None


@dataclass(frozen=True)
class Row:
    """One number of the paper and the chain of commands that produces ours.

    Args:
        name: The row's id (``--rows`` takes it), e.g. ``coco-tresnet-l-448``.
        title: What the row is, in the paper's words.
        metric: The metric's name ("mAP", "top-1 %", ...).
        paper: The paper's number, or ``None`` when the paper gives none.
        source: Where the number comes from ("Table 2", "original README"), or why there is none.
        dataset: The dataset folder under ``--data-root`` the row reads (absent: the row is skipped).
        layout: One line describing the dataset's expected layout (used in messages).
        needs: Files and folders under the dataset folder the row reads (checked before anything runs).
        steps: The commands, in order.
        result: Reads our number from the out dir after the steps ran.
        gpu_hours: The paper's or original's stated compute, when given (for the README).
        requires: Other dataset folders under ``--data-root`` the row reads through shared steps (a pre-training
            on another dataset); the row is skipped when one is absent, as when its own ``dataset`` is.
        note: One line stored with the row's result (results.json ``note``, results.md notes), e.g. how a smoke run
            departs from the real protocol ("smoke: folds 1-2 of 5").
        details: Reads further facts of our run from the out dir (the chosen network's latency, ...), stored with
            the row in ``results.json`` under ``details``; ``None`` for none.
    """

    name: str
    title: str
    metric: str
    paper: float | None
    source: str
    dataset: str
    layout: str
    needs: tuple[str, ...]
    steps: tuple[Step, ...]
    result: Callable[[Path], float | None]
    gpu_hours: str | None = None
    requires: tuple[str, ...] = ()
    note: str | None = None
    details: Callable[[Path], dict[str, Any]] | None = None


@dataclass(frozen=True)
class Paper:
    """The paper a script reproduces.

    Args:
        package: The miil package (``mldecoder``).
        title: The paper's title.
        arxiv: Its arXiv id.
        rows: ``rows(ctx) -> [Row, ...]``; ``ctx`` says where data and outputs are and whether this is a smoke run.
        make_smoke_data: ``make_smoke_data(root)`` writes the miniature datasets (real formats) under ``root``.
    """

    package: str
    title: str
    arxiv: str
    rows: Callable[[Context], list[Row]]
    make_smoke_data: Callable[[Path], None]


@dataclass
class Context:
    """What a script's ``rows`` function needs to spell its commands."""

    data_root: Path
    out_dir: Path
    smoke: bool
    gpus: int = 1
    extra: dict[str, Any] = field(default_factory=dict)

    def data(self, *parts: str) -> str:
        return str(self.data_root.joinpath(*parts))

    def run(self, *parts: str) -> str:
        return str(self.out_dir.joinpath(*parts))


def read_json_metric(path: Path, *keys: str) -> float | None:
    """The number at ``keys`` inside a JSON file (``None`` when the file or a key is missing)."""
    if not path.is_file():
        return None
    value: Any = json.loads(path.read_text())
    for key in keys:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return None if value is None else float(value)


# --------------------------------------------------------------------------------------------------- running


def _commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
        return out.stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def _command(step: Step, gpus: int) -> list[str]:
    if step.trains and gpus > 1:
        return ["torchrun", "--standalone", f"--nproc_per_node={gpus}", "-m", "miil.core.cli", *step.argv]
    return ["miil", *step.argv]


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def _marker(out_dir: Path, step: Step) -> Path:
    return out_dir / "steps" / f"{step.name}.json"


def _check_steps(rows: Sequence[Row]) -> None:
    seen: dict[str, Step] = {}
    for row in rows:
        for step in row.steps:
            if step.name in seen and seen[step.name] != step:
                raise ValueError(
                    f"two different steps are named {step.name!r} (row {row.name}); shared steps must be equal"
                )
            seen[step.name] = step


def _has_checkpoint(run_dir: Path) -> bool:
    """Whether a training step's run folder holds an engine checkpoint: ``last.json`` in it, or in one of its stage
    folders (a multi-stage verb such as ``miil diversity train`` writes ``OUT/ssl`` and ``OUT/supervised``)."""
    return (run_dir / "last.json").is_file() or any(run_dir.glob("*/last.json"))


def _run_step(step: Step, resume: bool, ctx: Context, log: Path, in_process: bool) -> int:
    argv = [*step.argv, *(["--resume"] if resume else [])]
    log.parent.mkdir(parents=True, exist_ok=True)
    if in_process:
        from miil.core.cli import main as miil_main

        try:
            return int(miil_main(argv) or 0)
        except SystemExit as exc:
            return int(exc.code or 0) if isinstance(exc.code, int) else 1
        except Exception as exc:  # a crashing step fails its row, not the whole script
            print(f"reproduce: step crashed: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
            return 1
    if step.trains and ctx.gpus > 1:
        cmd = ["torchrun", "--standalone", f"--nproc_per_node={ctx.gpus}", "-m", "miil.core.cli", *argv]
    else:
        cmd = [sys.executable, "-m", "miil.core.cli", *argv]
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert proc.stdout is not None
        for line in proc.stdout:
            sys.stdout.write(line)
            fh.write(line)
        return proc.wait()


def _check_data(rows: Sequence[Row], ctx: Context) -> dict[str, str]:
    """Rows to skip (a dataset folder absent) -> reason; exits 2 when a present dataset lacks a needed file."""
    skip: dict[str, str] = {}
    problems = []
    for row in rows:
        folder = ctx.data_root / row.dataset
        absent = [ctx.data_root / f for f in (row.dataset, *row.requires) if not (ctx.data_root / f).is_dir()]
        if absent:
            skip[row.name] = f"data absent: {absent[0]} (expected {row.layout})"
            continue
        for need in row.needs:
            if not (folder / need).exists():
                problems.append(f"{folder / need} is missing (row {row.name}; expected {row.layout})")
    if problems:
        print("reproduce: error: " + problems[0], file=sys.stderr)
        for more in problems[1:]:
            print("reproduce: error: " + more, file=sys.stderr)
        print("reproduce: nothing was run; fix the dataset layout or leave the row out with --rows", file=sys.stderr)
        raise SystemExit(2)
    return skip


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _write_results(paper: Paper, ctx: Context, results: list[dict[str, Any]]) -> None:
    _atomic_write(ctx.out_dir / "results.json", json.dumps({"paper": paper.title, "rows": results}, indent=2))
    lines = [
        f"# {paper.title} (arXiv {paper.arxiv}): reproduction{' (smoke run)' if ctx.smoke else ''}",
        "",
        "| row | metric | paper | source | ours | status | wall time |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['row']} | {r['metric']} | {_fmt(r['paper'])} | {r['source']} | {_fmt(r['ours'])} | {r['status']} "
            f"| {r['wall_s']:.0f} s |"
        )
    notes = [f"- **{r['row']}**: {r['note']}" for r in results if r.get("note")]
    if notes:
        lines += ["", "Notes:", "", *notes]
    lines += ["", "Commands (in order), git commit of each row:", ""]
    for r in results:
        lines.append(f"- **{r['row']}** (commit {r['commit']}):")
        lines += [f"  - `{c}`" for c in r["commands"]]
    _atomic_write(ctx.out_dir / "results.md", "\n".join(lines) + "\n")


def main(paper: Paper, argv: Sequence[str] | None = None) -> int:
    """Run the script's rows; see the module docstring. Returns 0 when every selected row produced a number."""
    ap = argparse.ArgumentParser(
        prog=f"tools/{paper.package}/reproduce.py",
        description=f"Reproduce {paper.title} (arXiv {paper.arxiv}) with miil-{paper.package}.",
    )
    ap.add_argument("--data-root", type=Path, default=None, help="folder holding the datasets (see the README)")
    ap.add_argument("--rows", nargs="+", default=None, help="rows to run (default: all)")
    ap.add_argument("--gpus", type=int, default=1, help="processes per training step (torchrun when > 1)")
    ap.add_argument("--out-dir", type=Path, default=Path(f"runs/{paper.package}"), help="runs, markers, results")
    ap.add_argument("--dry-run", action="store_true", help="print every command in order and run nothing")
    ap.add_argument("--smoke", action="store_true", help="miniature datasets, tiny models, a few steps per row")
    args = ap.parse_args(argv)
    out_dir = args.out_dir.absolute()
    if args.smoke:
        data_root = (args.data_root or out_dir / "smoke-data").absolute()
    elif args.data_root is None:
        ap.error("--data-root is required (or --smoke for the miniature datasets)")
    else:
        data_root = args.data_root.absolute()
    ctx = Context(data_root=data_root, out_dir=out_dir, smoke=args.smoke, gpus=args.gpus)
    rows = paper.rows(ctx)
    _check_steps(rows)
    if args.rows:
        known = {r.name for r in rows}
        unknown = [r for r in args.rows if r not in known]
        if unknown:
            ap.error(f"unknown rows {unknown}; rows: {', '.join(r.name for r in rows)}")
        rows = [r for r in rows if r.name in args.rows]
    if args.dry_run:
        for row in rows:
            print(f"# {row.name}: {row.title} ({row.metric}; paper {_fmt(row.paper)}, {row.source})")
            for step in row.steps:
                print(shlex.join(_command(step, ctx.gpus)))
        return 0
    if args.smoke and not (data_root / ".complete").is_file():
        print(f"reproduce: writing miniature datasets into {data_root}", flush=True)
        paper.make_smoke_data(data_root)
        _atomic_write(data_root / ".complete", "miniature datasets written by the package generators\n")
    skip = _check_data(rows, ctx)
    commit = _commit()
    results: list[dict[str, Any]] = []
    for row in rows:
        t0 = time.perf_counter()
        commands = [shlex.join(_command(step, ctx.gpus)) for step in row.steps]
        entry = {
            "row": row.name,
            "title": row.title,
            "metric": row.metric,
            "paper": row.paper,
            "source": row.source,
            "note": row.note,
            "ours": None,
            "status": "",
            "commands": commands,
            "commit": commit,
            "wall_s": 0.0,
        }
        if row.name in skip:
            entry["status"] = f"skipped: {skip[row.name]}"
            results.append(entry)
            _write_results(paper, ctx, results)
            continue
        failed = None
        for step in row.steps:
            marker = _marker(out_dir, step)
            if marker.is_file():
                print(f"reproduce: {row.name}/{step.name}: done earlier, skipped", flush=True)
                continue
            resume = step.trains and _has_checkpoint(Path(step.run_dir))  # an interrupted training: --resume
            shown = shlex.join([*_command(step, ctx.gpus), *(["--resume"] if resume else [])])
            print(f"reproduce: {row.name}/{step.name}: {shown}", flush=True)
            s0 = time.perf_counter()
            code = _run_step(step, resume, ctx, out_dir / "logs" / f"{step.name}.log", in_process=args.smoke)
            if code not in step.ok_codes:
                failed = f"failed: step {step.name} exited with status {code}"
                break
            _atomic_write(
                marker,
                json.dumps(
                    {
                        "command": shlex.join(_command(step, ctx.gpus)),
                        "exit": code,
                        "wall_s": time.perf_counter() - s0,
                        "commit": commit,
                    }
                ),
            )
        # Wall time of the row's steps, those finished in earlier runs included (their markers keep it).
        entry["wall_s"] = sum(
            json.loads(m.read_text()).get("wall_s", 0.0)
            for m in (_marker(out_dir, step) for step in row.steps)
            if m.is_file()
        ) or (time.perf_counter() - t0)
        if failed:
            entry["status"] = failed
        else:
            value = row.result(out_dir)
            entry["ours"] = value
            entry["status"] = "ok" if value is not None else "failed: the steps ran but wrote no number"
            if row.details is not None:
                entry["details"] = row.details(out_dir)
        results.append(entry)
        _write_results(paper, ctx, results)
    ok = all(r["status"] == "ok" for r in results if not r["status"].startswith("skipped"))
    print(f"reproduce: results in {out_dir / 'results.md'}", flush=True)
    return 0 if ok else 1
