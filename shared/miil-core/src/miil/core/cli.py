"""The ``miil`` command.

Packages add their subcommands through the ``miil.commands`` entry-point group: an entry point named ``stam``
points to ``register(parser)``, which adds sub-parsers (``train``, ``validate``, ``infer``, ...) to the parser of
``miil stam`` and sets ``func`` on each. Demos register through ``miil.demos``: ``run(long=False) -> dict`` with at
least ``passed`` (bool) and ``summary`` (str). Entry points are loaded lazily, so one broken package cannot break
the others' commands.
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from importlib.metadata import entry_points

from .errors import EXIT_USER_ERROR, MissingExtraError

__all__ = ["HelpFormatter", "main", "run_demos"]

COMMANDS_GROUP = "miil.commands"
DEMOS_GROUP = "miil.demos"


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Shows defaults in every ``--help`` and keeps descriptions' line breaks."""


def _entry_points(group: str) -> dict:
    return {ep.name: ep for ep in entry_points(group=group)}


def _dist_name(ep) -> str:
    dist = getattr(ep, "dist", None)
    return f"{dist.name} {dist.version}" if dist is not None else "?"


def _missing_extra_hint(name: str, ep, err: MissingExtraError) -> str:
    # The demo's own distribution's `demo` extra installs everything the demo needs (also what the core's embedded
    # data needs), so that is the one line to suggest; a plug-in without such an extra gets the error as raised.
    dist = getattr(ep, "dist", None)
    extras = (dist.metadata.get_all("Provides-Extra") or []) if dist is not None else []
    if err.extra != "demo" or "demo" not in extras:
        return str(err)
    return f"the {name} demo needs the 'demo' extra ({err.module} is not installed): pip install '{dist.name}[demo]'"


def run_demos(names: Sequence[str] = (), *, long: bool = False) -> int:
    """Run the named demos (all installed ones when empty); print a summary; return an exit status.

    A demo whose optional dependencies are not installed fails with one line naming the extra to install; when
    that is the only kind of failure the status is ``EXIT_USER_ERROR``.
    """
    demos = _entry_points(DEMOS_GROUP)
    unknown = [n for n in names if n not in demos]
    if unknown:
        print(f"miil demo: no demo named {', '.join(unknown)}; installed: {', '.join(sorted(demos))}", file=sys.stderr)
        return 2
    selected = list(names) or sorted(demos, key=lambda n: (n != "core", n))
    results = []
    missing_extras = 0
    for name in selected:
        print(f"== miil demo {name} ==", flush=True)
        t0 = time.perf_counter()
        try:
            run: Callable[..., dict] = demos[name].load()
            out = run(long=long)
            ok = bool(out.get("passed", False))
            summary = out.get("summary", "")
        except MissingExtraError as err:
            summary = _missing_extra_hint(name, demos[name], err)
            print(f"miil demo {name}: error: {summary}", file=sys.stderr)
            ok, missing_extras = False, missing_extras + 1
        except Exception:  # one failing demo must not hide the others' results
            traceback.print_exc()
            ok, summary = False, "crashed (traceback above)"
        results.append((name, ok, summary, time.perf_counter() - t0))
    print("\n== summary ==")
    for name, ok, summary, secs in results:
        print(f"{'PASS' if ok else 'FAIL'}  {name:<12} {secs:6.1f}s  {summary}")
    failures = sum(not ok for _, ok, _, _ in results)
    if failures and failures == missing_extras:
        return EXIT_USER_ERROR
    return 0 if not failures else 1


def _top_parser(commands: dict) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="miil",
        formatter_class=HelpFormatter,
        description="Alibaba-MIIL papers as PyTorch packages. Package commands: "
        + (", ".join(sorted(commands)) if commands else "none installed"),
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("list", help="list installed packages, their commands and demos", formatter_class=HelpFormatter)
    demo = sub.add_parser("demo", help="run package demos on embedded real data", formatter_class=HelpFormatter)
    demo.add_argument("names", nargs="*", help="demos to run (default: all installed)")
    demo.add_argument("--long", action="store_true", help="longer run for numbers closer to the paper's")
    for name in sorted(commands):
        sub.add_parser(name, help=f"{name} commands (miil {name} --help)", add_help=False)
    return parser


def _list(commands: dict) -> int:
    demos = _entry_points(DEMOS_GROUP)
    names = sorted(set(commands) | set(demos))
    print(f"{'name':<12} {'distribution':<28} {'commands':<9} demo")
    for name in names:
        ep = commands.get(name) or demos.get(name)
        print(
            f"{name:<12} {_dist_name(ep):<28} {'yes' if name in commands else '-':<9} {'yes' if name in demos else '-'}"
        )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = _entry_points(COMMANDS_GROUP)
    if argv and argv[0] in commands:
        name = argv[0]
        parser = argparse.ArgumentParser(prog=f"miil {name}", formatter_class=HelpFormatter)
        commands[name].load()(parser)
        args = parser.parse_args(argv[1:])
        func = getattr(args, "func", None)
        if func is None:
            parser.print_help()
            return 2
        from miil.core import distributed as du

        try:
            result = func(args)
        except BaseException:
            du.shutdown_distributed(wait=False)
            raise
        du.shutdown_distributed()
        return int(result) if isinstance(result, int) else 0
    parser = _top_parser(commands)
    args = parser.parse_args(argv)
    if args.command == "list":
        return _list(commands)
    if args.command == "demo":
        return run_demos(args.names, long=args.long)
    parser.print_help()
    return 0 if not argv else 2


if __name__ == "__main__":
    sys.exit(main())
