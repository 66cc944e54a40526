"""``miil demo``: run the installed packages' demos, one line as each starts, a summary table at the end.

Demos register through the ``miil.demos`` entry-point group (``run(long=False) -> dict`` with ``passed`` and
``summary``). Each demo trains tiny models on one thread, so with ``jobs`` > 1 the demos run in that many worker
processes (each imports torch once and runs demos from a shared queue), and a demo's output is printed as one block
when it finishes instead of interleaving with the others'. A demo that needs an uninstalled extra
(:class:`~miil.core.errors.MissingExtraError`) fails with that one-line message, without a traceback.
"""

from __future__ import annotations

import os
import queue
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.metadata import entry_points

from .errors import EXIT_USER_ERROR

__all__ = ["DemoResult", "run_demos"]

DEMOS_GROUP = "miil.demos"


@dataclass(frozen=True)
class DemoResult:
    """One demo's outcome: ``seconds`` of wall-clock time, ``cpu`` seconds of its process."""

    name: str
    passed: bool
    seconds: float
    cpu: float
    summary: str
    missing_extra: bool = False


def _demo_entry_points() -> dict:
    return {ep.name: ep for ep in entry_points(group=DEMOS_GROUP)}


def _cpu_seconds() -> float:
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF)
    return own.ru_utime + own.ru_stime


def _run_one(name: str, load: Callable[[], Callable[..., dict]], long: bool) -> DemoResult:
    from .errors import MissingExtraError

    t0, c0 = time.perf_counter(), _cpu_seconds()
    try:
        out = load()(long=long)
        ok, summary = bool(out.get("passed", False)), str(out.get("summary", ""))
    except MissingExtraError as exc:  # an uninstalled extra is the user's to add, not a crash
        seconds, cpu = time.perf_counter() - t0, _cpu_seconds() - c0
        return DemoResult(name, False, seconds, cpu, str(exc), missing_extra=True)
    except Exception:  # one failing demo must not hide the others' results
        traceback.print_exc()
        ok, summary = False, "crashed (traceback above)"
    return DemoResult(name, ok, time.perf_counter() - t0, _cpu_seconds() - c0, summary)


def _captured(func: Callable[[], DemoResult]) -> tuple[DemoResult, str]:
    """Run ``func`` with file descriptors 1 and 2 sent to a temporary file (C extensions print there too)."""
    with tempfile.TemporaryFile(mode="w+b") as sink:
        sys.stdout.flush()
        sys.stderr.flush()
        saved = os.dup(1), os.dup(2)
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            result = func()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
        sink.seek(0)
        return result, sink.read().decode(errors="replace")


def _worker(worker: int, tasks, events, long: bool) -> None:
    """A worker process: runs demos from ``tasks`` until ``None``; reports ``start`` / ``done`` on ``events``."""
    demos = _demo_entry_points()
    while (name := tasks.get()) is not None:
        events.put(("start", worker, name))
        result, output = _captured(lambda name=name: _run_one(name, demos[name].load, long))
        events.put(("done", worker, result, output))


def _start_line(index: int, total: int, name: str, long: bool) -> str:
    return f"[{index}/{total}] miil demo {name}{' --long' if long else ''} ..."


def _in_process(selected: list[str], demos: dict, long: bool) -> list[DemoResult]:
    results = []
    for i, name in enumerate(selected, 1):
        print(_start_line(i, len(selected), name, long), flush=True)
        results.append(_run_one(name, demos[name].load, long))
    return results


def _in_workers(selected: list[str], long: bool, jobs: int) -> list[DemoResult]:
    import multiprocessing as mp

    ctx = mp.get_context("spawn")  # a fresh interpreter: no torch threads or state inherited from this one
    tasks, events = ctx.Queue(), ctx.Queue()
    for name in selected:
        tasks.put(name)
    workers = [ctx.Process(target=_worker, args=(w, tasks, events, long), daemon=True) for w in range(jobs)]
    for w in workers:
        tasks.put(None)
        w.start()
    results: dict[str, DemoResult] = {}
    running: dict[int, tuple[str, float]] = {}
    started = 0
    try:
        while len(results) < len(selected):
            try:
                event = events.get(timeout=1.0)
            except queue.Empty:
                for w, (name, t0) in list(running.items()):
                    if not workers[w].is_alive():  # killed (out of memory, a signal): report, keep the rest going
                        code = workers[w].exitcode
                        results[name] = DemoResult(name, False, time.perf_counter() - t0, 0.0, f"worker died ({code})")
                        del running[w]
                if not running and not any(w.is_alive() for w in workers):
                    for name in selected:
                        results.setdefault(name, DemoResult(name, False, 0.0, 0.0, "not run (workers died)"))
                continue
            if event[0] == "start":
                _, w, name = event
                started += 1
                running[w] = (name, time.perf_counter())
                print(_start_line(started, len(selected), name, long), flush=True)
            else:
                _, w, result, output = event
                running.pop(w, None)
                results[result.name] = result
                if output.strip():
                    print(f"--- miil demo {result.name} ---\n{output.rstrip()}", flush=True)
                print(
                    f"--- miil demo {result.name}: {'PASS' if result.passed else 'FAIL'} in {result.seconds:.1f} s",
                    flush=True,
                )
    finally:
        for w in workers:
            if w.is_alive():
                w.terminate()
            w.join(timeout=5)
    return [results[name] for name in selected]


def run_demos(names: Sequence[str] = (), *, long: bool = False, jobs: int = 1) -> int:
    """Run the named demos (all installed ones when empty) and print a summary table with wall-clock and CPU seconds.

    Args:
        names: Demo names (``miil list`` shows them); the core's demo runs first when all are run.
        long: The longer form of each demo.
        jobs: Worker processes running demos side by side (1: one after another in this process).

    Returns:
        0 when every demo passed, 1 otherwise, 2 for an unknown name.
    """
    demos = _demo_entry_points()
    unknown = [n for n in names if n not in demos]
    if unknown:
        known = ", ".join(sorted(demos))
        print(f"miil demo: error: no demo named {', '.join(unknown)}; installed: {known}", file=sys.stderr)
        return EXIT_USER_ERROR
    if jobs < 1:
        print(f"miil demo: error: --jobs must be at least 1, got {jobs}", file=sys.stderr)
        return EXIT_USER_ERROR
    selected = list(names) or sorted(demos, key=lambda n: (n != "core", n))
    start = time.perf_counter()
    jobs = min(jobs, len(selected))
    results = _in_process(selected, demos, long) if jobs == 1 else _in_workers(selected, long, jobs)
    total = time.perf_counter() - start
    for r in results:
        if r.missing_extra:  # the dialect's one-line user error, naming the extra to install
            print(f"miil demo {r.name}: error: {r.summary}", file=sys.stderr)
    width = max(len("demo"), *(len(n) for n in selected))
    print(f"\n{'demo':<{width}}  result  {'seconds':>7}  {'cpu s':>7}  summary")
    for r in results:
        print(f"{r.name:<{width}}  {'PASS' if r.passed else 'FAIL':<6}  {r.seconds:7.1f}  {r.cpu:7.1f}  {r.summary}")
    passed = sum(r.passed for r in results)
    print(
        f"total: {len(results)} demos, {passed} passed, {len(results) - passed} failed, {total:.1f} s wall "
        f"({sum(r.cpu for r in results):.1f} CPU-s in the demos, {jobs} {'job' if jobs == 1 else 'jobs'})",
        flush=True,
    )
    failed = [r for r in results if not r.passed]
    if failed and all(r.missing_extra for r in failed):
        return EXIT_USER_ERROR  # nothing broke: an extra is missing, and the summary says which to install
    return 0 if not failed else 1
