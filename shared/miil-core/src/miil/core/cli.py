"""The ``miil`` command.

Packages add their subcommands through the ``miil.commands`` entry-point group: an entry point named ``stam``
points to ``register(parser)``, which adds sub-parsers (``train``, ``validate``, ``infer``, ...) to the parser of
``miil stam`` and sets ``func`` on each. Demos register through ``miil.demos``: ``run(long=False) -> dict`` with at
least ``passed`` (bool) and ``summary`` (str). Entry points are loaded lazily, so one broken package cannot break
the others' commands, and ``miil --help`` / ``miil list`` read entry-point metadata only (no torch).

Errors follow the dialect (miil-core README): a user error prints one line ``miil <pkg> <verb>: error: <message>``
and exits with status 2; ``--debug`` anywhere on the command line (or ``MIIL_DEBUG=1``) shows the traceback instead.
Anything else is a bug: traceback, status 1. A command's integer return value is the exit status
(:mod:`miil.core.errors`).
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
import warnings
from collections.abc import Callable, Sequence
from importlib.metadata import entry_points
from typing import Any

from .cli_args import BOOL_LITERALS, BoolAction
from .errors import EXIT_BUG, EXIT_USER_ERROR, UserError

__all__ = ["ArgumentParser", "HelpFormatter", "main", "package_main", "run_command", "run_demos"]

COMMANDS_GROUP = "miil.commands"
DEMOS_GROUP = "miil.demos"
_PROG_ATTR = "_miil_prog"  # namespace attribute: the prog of the deepest parser that parsed (``miil stam train``)


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Shows defaults in every ``--help`` and keeps descriptions' line breaks."""


class ArgumentParser(argparse.ArgumentParser):
    """The parser of every ``miil`` command; ``add_subparsers`` makes its sub-parsers of this class too.

    - ``--flag`` of a :class:`~miil.core.cli_args.BoolAction` followed by a word that is not a boolean literal is
      read as ``--flag=true``, so ``infer --strict photo.jpg`` keeps ``photo.jpg`` as an input.
    - A usage error is one line, ``<prog>: error: <message>`` (naming the dialect's spelling of a known synonym),
      and exit status 2.
    """

    def __init__(self, *args: Any, **kwargs: Any):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def _normalise_booleans(self, args: Sequence[str]) -> list[str]:
        flags = {s for s, a in self._option_string_actions.items() if isinstance(a, BoolAction)}
        out: list[str] = []
        i = 0
        while i < len(args):
            token = args[i]
            if token == "--":
                out.extend(args[i:])
                break
            if token in flags:
                value = args[i + 1] if i + 1 < len(args) else None
                if value is not None and value.strip().lower() in BOOL_LITERALS:
                    out.append(f"{token}={value}")
                    i += 2
                    continue
                out.append(f"{token}=true")
            else:
                out.append(token)
            i += 1
        return out

    def _parse_known_args(self, arg_strings: list[str], namespace: argparse.Namespace, *args: Any, **kwargs: Any):
        # argparse's internal step, reached by this parser and by each verb's (whichever public entry a Python
        # version's sub-parser action calls); rewriting is idempotent, so both levels may do it.
        arg_strings = self._normalise_booleans(arg_strings)
        namespace, extras = super()._parse_known_args(arg_strings, namespace, *args, **kwargs)
        if not hasattr(namespace, _PROG_ATTR):  # a verb's parser finished first and recorded itself
            setattr(namespace, _PROG_ATTR, self.prog)
        return namespace, extras

    def parse_args(self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None):
        namespace, extras = self.parse_known_args(args, namespace)
        if extras:
            # Report on the verb's parser (argparse would name the top one), with the dialect's spelling if known.
            message = f"unrecognized arguments: {' '.join(extras)}"
            from .cli_dialect import SYNONYMS

            hints = [f"{e} -> {SYNONYMS[e.split('=')[0]]}" for e in extras if e.split("=")[0] in SYNONYMS]
            if hints:
                message += f" (the miil spelling: {'; '.join(hints)})"
            _usage_error(getattr(namespace, _PROG_ATTR, self.prog), message)
        return namespace

    def error(self, message: str):
        _usage_error(self.prog, message)


def _usage_error(prog: str, message: str):
    text = " ".join(message.split())
    sys.stderr.write(f"{prog}: error: {text}; see '{prog} --help'\n")
    sys.exit(EXIT_USER_ERROR)


def _entry_points(group: str) -> dict:
    return {ep.name: ep for ep in entry_points(group=group)}


def _dist_name(ep) -> str:
    dist = getattr(ep, "dist", None)
    return f"{dist.name} {dist.version}" if dist is not None else "?"


# --------------------------------------------------------------------------------------------------- errors


def _split_debug(argv: Sequence[str] | None) -> tuple[list[str], bool]:
    """Remove ``--debug`` (anywhere before ``--``) from argv; also on with ``MIIL_DEBUG=1``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    end = argv.index("--") if "--" in argv else len(argv)
    debug = "--debug" in argv[:end]
    argv = [a for a in argv[:end] if a != "--debug"] + argv[end:]
    env = os.environ.get("MIIL_DEBUG", "").strip().lower()
    return argv, debug or env in ("1", "true", "yes", "on")


def _user_error_types() -> tuple[type[BaseException], ...]:
    types: list[type[BaseException]] = [
        UserError,
        FileNotFoundError,
        FileExistsError,
        IsADirectoryError,
        NotADirectoryError,
        PermissionError,
        ValueError,
    ]
    # An exception of these classes can only exist once their module was imported: look there, import nothing.
    io = sys.modules.get("miil.core.io")
    if io is not None:
        types += [io.KeyMappingError, io.UnsafeCheckpointError]
    unreadable = sys.modules.get("miil.core.data.unreadable")
    if unreadable is not None:
        types.append(unreadable.UnreadableFileError)
    return tuple(types)


def _message(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror and exc.filename is not None:  # "No such file or directory: x"
        target = f"{exc.filename} -> {exc.filename2}" if exc.filename2 is not None else f"{exc.filename}"
        return f"{exc.strerror}: {target}"
    text = str(exc).strip()
    return text or type(exc).__name__


def _report_user_error(prog: str, exc: BaseException) -> None:
    lines = _message(exc).splitlines() or [type(exc).__name__]
    sys.stderr.write(f"{prog}: error: {lines[0]}\n")
    io = sys.modules.get("miil.core.io")
    if io is not None and isinstance(exc, io.KeyMappingError) and len(lines) > 1:
        sys.stderr.write("\n".join(lines[1:]) + "\n")  # the full key listing is what the user needs to fix it


def _teardown(wait: bool) -> None:
    # Only a process that imported torch.distributed can hold a process group; do not import torch to find out.
    if "torch.distributed" in sys.modules:
        from . import distributed as du

        du.shutdown_distributed(wait=wait)


def _seed_from(args: Any) -> None:
    """A command with a ``--seed`` (every train verb) seeds every generator before it builds anything, as timm's
    train.py does: the initial weights, the partial-label simulation and the data order then follow from the seed, so
    two runs of the same command give the same run (the engine reseeds each epoch from the same seed)."""
    seed = getattr(args, "seed", None)
    if isinstance(seed, int) and not isinstance(seed, bool):
        from .train.seed import seed_everything

        seed_everything(seed)


def run_command(func: Callable[[Any], Any], args: Any, prog: str, *, debug: bool = False) -> int:
    """Run one command function the way ``miil`` does: its int return is the exit status; errors as the dialect says.

    Args:
        func: The command (``args.func``).
        args: Its argument (the parsed namespace).
        prog: The command's name in messages (``miil stam train``).
        debug: Re-raise every exception (with its traceback) instead of the one-line report.
    """
    previous_format = warnings.formatwarning
    warnings.formatwarning = _one_line_skips(prog, previous_format)
    try:
        _seed_from(args)
        result = func(args)
    except KeyboardInterrupt:
        _teardown(wait=False)
        if debug:
            raise
        sys.stderr.write(f"{prog}: interrupted\n")
        return 130
    except Exception as exc:
        _teardown(wait=False)
        if debug:
            raise
        if isinstance(exc, _user_error_types()):
            _report_user_error(prog, exc)
            return EXIT_USER_ERROR
        traceback.print_exc()
        sys.stderr.write(f"{prog}: internal error (a bug, the traceback is above)\n")
        return EXIT_BUG
    finally:
        warnings.formatwarning = previous_format
    _teardown(wait=True)
    return int(result) if isinstance(result, int) else 0


def _one_line_skips(prog: str, fallback: Callable[..., str]) -> Callable[..., str]:
    """``warnings.formatwarning`` that prints a skipped input as one line, ``<prog>: warning: <file>: <reason>``
    (the bad-input contract), instead of the warning's source location and code line; other warnings as before.

    The line is written above a running progress bar rather than inside it (tqdm writes it and the warnings machinery
    then writes nothing). Only the format is replaced, so warnings recorded by ``warnings.catch_warnings(record=True)``
    (pytest.warns) are recorded as before."""

    def format_warning(message, category, filename, lineno, line=None) -> str:
        unreadable = sys.modules.get("miil.core.data.unreadable")
        if unreadable is not None and issubclass(category, unreadable.UnreadableFileWarning):
            from tqdm.auto import tqdm

            tqdm.write(f"{prog}: warning: {message}", file=sys.stderr)
            return ""
        return fallback(message, category, filename, lineno, line)

    return format_warning


def _dispatch(parser: argparse.ArgumentParser, argv: list[str], debug: bool) -> int:
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return EXIT_USER_ERROR
    return run_command(func, args, getattr(args, _PROG_ATTR, parser.prog), debug=debug)


def _load_register(name: str, loader: Callable[[], Callable], debug: bool) -> Callable | None:
    try:
        return loader()
    except UserError as exc:  # e.g. a missing extra of the package
        if debug:
            raise
        _report_user_error(f"miil {name}", exc)
        return None


def package_main(name: str, register: Callable[[argparse.ArgumentParser], None], argv: Sequence[str] | None = None):
    """``python -m miil.<pkg>.cli``: build ``miil <name>``'s parser with ``register`` and run the chosen verb.

    Args:
        name: The package's command name (``"stam"``).
        register: The package's ``register(parser)``.
        argv: Arguments after the package name (default: ``sys.argv[1:]``).

    Returns:
        The exit status.
    """
    argv, debug = _split_debug(argv)
    return _package_main(name, register, argv, debug)


def _package_main(name: str, register: Callable[[argparse.ArgumentParser], None], argv: list[str], debug: bool) -> int:
    parser = ArgumentParser(prog=f"miil {name}")
    register(parser)
    return _dispatch(parser, argv, debug)


# --------------------------------------------------------------------------------------------------- demo


def run_demos(names: Sequence[str] = (), *, long: bool = False, jobs: int = 1) -> int:
    """Run demos and print the summary table (:func:`miil.core.demo_runner.run_demos`); returns the exit status."""
    from .demo_runner import run_demos as run

    return run(names, long=long, jobs=jobs)


# --------------------------------------------------------------------------------------------------- top level


def _top_parser(commands: dict) -> ArgumentParser:
    parser = ArgumentParser(
        prog="miil",
        description="Alibaba-MIIL papers as PyTorch packages. Package commands: "
        + (", ".join(sorted(commands)) if commands else "none installed")
        + "\nAdd --debug anywhere to see the traceback of an error.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("list", help="list installed packages, their commands and demos")
    demo = sub.add_parser("demo", help="run package demos on embedded real data")
    demo.add_argument("names", nargs="*", help="demos to run (default: all installed)")
    demo.add_argument("--long", action=BoolAction, help="the longer run, for numbers closer to the paper's")
    demo.add_argument(
        "--jobs",
        type=int,
        metavar="N",
        default=min(2, os.cpu_count() or 1),
        help="demos run side by side in N processes (each demo trains on one thread)",
    )
    plot = sub.add_parser("plot", help="draw a run's metrics.jsonl (loss, lr, validation metrics) into a PNG")
    plot.add_argument("run_dir", metavar="RUN_DIR", help="a run folder written by a train verb")
    plot.add_argument("--output", metavar="FILE", default=None, help="the PNG to write (default: RUN_DIR/metrics.png)")
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


def _plot(args: argparse.Namespace) -> int:
    from .plot import plot_run

    out = plot_run(args.run_dir, args.output)
    print(f"wrote {out}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """The ``miil`` console script; returns the exit status."""
    argv, debug = _split_debug(argv)
    commands = _entry_points(COMMANDS_GROUP)
    if argv and argv[0] in commands:
        name = argv[0]
        register = _load_register(name, commands[name].load, debug)
        if register is None:
            return EXIT_USER_ERROR
        return _package_main(name, register, argv[1:], debug)
    parser = _top_parser(commands)
    args = parser.parse_args(argv)
    if args.command == "list":
        return _list(commands)
    if args.command == "demo":
        return run_demos(args.names, long=args.long, jobs=args.jobs)
    if args.command == "plot":
        return run_command(_plot, args, "miil plot", debug=debug)
    parser.print_help()
    return 0 if not argv else EXIT_USER_ERROR


if __name__ == "__main__":
    sys.exit(main())
