"""The dialect checker: every package parser spells each argument role one way and offers the standard verbs.

:func:`dialect_problems` walks one package's parser tree (every verb, nested verbs too) and returns what breaks the
dialect of miil-core's README: a known synonym of a role (``--data-dir`` for ``--data-root``), a role flag used with
another meaning (``--weights`` taking a list, ``--json`` as a switch, ``--strict`` not a ``--flag [BOOL]``, ``--top-k``
not an integer), a boolean switch that is not ``--flag [BOOL]`` (``--no-progress``, ``store_true``), a recipe name
that is not kebab-case, and a missing standard verb. :func:`iter_package_parsers` builds every installed package's
parser from the ``miil.commands`` entry points without running a command. Imports no torch itself.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator, Sequence

from .cli_args import ROLES, BoolAction
from .config import recipe_name_problems

__all__ = ["STANDARD_VERBS", "SYNONYMS", "VERB_SYNONYMS", "dialect_problems", "iter_package_parsers"]

STANDARD_VERBS = ("recipes", "train", "validate", "infer")

# Spellings seen in the packages (and the usual suspects) -> the dialect's spelling of the role.
SYNONYMS: dict[str, str] = {
    "--data": "--data-root",
    "--data-dir": "--data-root",
    "--dataset": "--data-root (and --data-format)",
    "--root": "--data-root",
    "--images": "--data-root",
    "--train": "--data-root and --train-split",
    "--val": "--data-root and --val-split",
    "--train-dir": "--data-root and --train-split",
    "--val-dir": "--data-root and --val-split",
    "--train-root": "--data-root and --train-split",
    "--val-root": "--data-root and --val-split",
    "--train-data": "--data-root and --train-split",
    "--val-data": "--data-root and --val-split",
    "--split": "--train-split / --val-split",
    "--fold": "--train-split / --val-split",
    "--labels": "--train-labels / --val-labels",
    "--annotations": "--train-labels / --val-labels",
    "--format": "--data-format",
    "--dataset-format": "--data-format",
    "--class-names": "--classes",
    "--checkpoint": "--weights (a trained model) or --init-checkpoint (weights to start from)",
    "--ckpt": "--weights or --init-checkpoint",
    "--run": "--weights",
    "--run-dir": "--weights (to read a run) or --out-dir (to write one)",
    "--which": "--weights PATH (a run folder means its best.safetensors; name another file to use it)",
    "--model-path": "--weights",
    "--backbone-checkpoint": "--init-checkpoint",
    "--spatial-checkpoint": "--init-checkpoint",
    "--initial-checkpoint": "--init-checkpoint",
    "--init-weights": "--init-checkpoint",
    "--resume-from": "--resume with --out-dir",
    "--backbone": "--model",
    "--model-name": "--model",
    "--arch-name": "--model",
    "--backbone-kwargs": "--model-kwargs",
    "--model-args": "--model-kwargs",
    "--out": "--output (a file) or --out-dir (a run folder)",
    "--to": "--output",
    "--output-dir": "--out-dir",
    "--outdir": "--out-dir",
    "--save-dir": "--out-dir",
    "--metrics-json": "--json",
    "--json-out": "--json",
    "--output-json": "--json",
    "--save-json": "--json",
    "--topk": "--top-k",
    "--no-progress": "--progress false",
    "--quiet": "--progress false",
    "--strict-images": "--strict",
    "--skip-unreadable": "--strict false",
    "--fp16": "--amp",
    "--mixed-precision": "--amp",
    "--use-amp": "--amp",
    "--no-amp": "--amp false",
    "--gpu": "--device",
    "--cuda": "--device",
    "--workers": "--num-workers",
    "--batch": "--batch-size",
    "--bs": "--batch-size",
    "--image-size": "--img-size",
    "--input-size": "--img-size",
    "--resolution": "--img-size",
    "--re-prob": "--reprob",
    "--random-erasing": "--reprob",
    "--smoothing": "--label-smoothing",
    "--alpha-kd": "--kd-weight",
    "--kd-alpha": "--kd-weight",
    "--kd-temp": "--kd-temperature",
    "--teacher-model": "--teacher",
    "--teacher-weights": "--teacher-checkpoint",
    "--no-pretrained": "--pretrained false",
    "--no-strict": "--strict false",
    "--no-resume": "--resume false",
}

VERB_SYNONYMS: dict[str, str] = {
    "eval": "validate",
    "evaluate": "validate",
    "test": "validate",
    "val": "validate",
    "predict": "infer",
    "inference": "infer",
    "fit": "train",
    "recipe": "recipes",
    "list-recipes": "recipes",
    "show-recipe": "recipes",
}

ROLES_BY_FLAG = {flag: role for role, (flag, _) in ROLES.items()}
_BOOL_ROLE_FLAGS = {flag for flag, kw in ROLES.values() if kw.get("action") is BoolAction}
_INT_ROLE_FLAGS = {flag for flag, kw in ROLES.values() if kw.get("type") is int}
_FLOAT_ROLE_FLAGS = {flag for flag, kw in ROLES.values() if kw.get("type") is float}
_VALUE_ROLE_FLAGS = {flag for flag, _ in ROLES.values()} - _BOOL_ROLE_FLAGS - _INT_ROLE_FLAGS - _FLOAT_ROLE_FLAGS
_NOT_OPTIONS = (argparse._HelpAction, argparse._VersionAction, argparse._SubParsersAction)


def _verb_parsers(parser: argparse.ArgumentParser) -> list[tuple[str, argparse.ArgumentParser]]:
    seen: set[int] = set()
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                if id(sub) not in seen:  # aliases point to the same parser
                    seen.add(id(sub))
                    found.append((name, sub))
    return found


def _converts_to(action: argparse.Action, text: str, expected: object) -> bool:
    if action.type is None:
        return False
    try:
        value = action.type(text)
    except Exception:
        return False
    return type(value) is type(expected) and value == expected


def _takes_no_value(action: argparse.Action) -> bool:
    return action.nargs == 0


def _action_problems(action: argparse.Action) -> list[str]:
    problems: list[str] = []
    if isinstance(action, _NOT_OPTIONS) or not action.option_strings:
        return problems
    for flag in action.option_strings:
        if flag in SYNONYMS:
            problems.append(f"{flag} is a synonym: the dialect spells it {SYNONYMS[flag]}")
        elif flag.startswith("--no-") and (_takes_no_value(action) or isinstance(action, BoolAction)):
            problems.append(f"{flag}: booleans are --{flag[5:]} [BOOL] (false to turn off), not a --no- switch")
        elif flag in _BOOL_ROLE_FLAGS and not isinstance(action, BoolAction):
            problems.append(f"{flag} is a boolean role: add it with miil.core.cli_args (BoolAction, --flag [BOOL])")
        elif flag in _INT_ROLE_FLAGS and (action.nargs is not None or not _converts_to(action, "3", 3)):
            problems.append(f"{flag} takes one integer (type=int, one value)")
        elif flag in _FLOAT_ROLE_FLAGS and (action.nargs is not None or not _converts_to(action, "0.25", 0.25)):
            problems.append(f"{flag} takes one number (type=float, one value)")
        elif flag in _VALUE_ROLE_FLAGS and (action.nargs is not None or isinstance(action, BoolAction)):
            problems.append(f"{flag} takes exactly one value ({ROLES_BY_FLAG[flag]}), not nargs={action.nargs!r}")
        elif _takes_no_value(action):
            problems.append(f"{flag} is a switch without a value: booleans are {flag} [BOOL] (BoolAction)")
    return problems


def dialect_problems(
    parser: argparse.ArgumentParser,
    *,
    package: str,
    convert: bool = False,
    verbs: Sequence[str] | None = None,
) -> list[str]:
    """What in one package's parser tree breaks the ``miil`` dialect; empty when nothing does.

    Args:
        parser: The parser ``register(parser)`` filled (``miil <package>``).
        package: The package's command name, used in the messages.
        convert: The package declares that the original authors published checkpoints: ``convert`` is required.
        verbs: Verbs the package must offer (default: :data:`STANDARD_VERBS`, plus ``convert`` if ``convert``).

    Returns:
        Human-readable problems, each starting with the command it concerns (``miil stam train: ...``).
    """
    required = list(STANDARD_VERBS if verbs is None else verbs) + (["convert"] if convert else [])
    problems: list[str] = []
    recipe_names: set[str] = set()

    def walk(node: argparse.ArgumentParser, where: str) -> None:
        for action in node._actions:
            problems.extend(f"{where}: {p}" for p in _action_problems(action))
            if "--recipe" in action.option_strings and action.choices:
                recipe_names.update(action.choices)
        for name, sub in _verb_parsers(node):
            if name in VERB_SYNONYMS:
                problems.append(f"{where}: verb {name!r} is a synonym: the dialect calls it {VERB_SYNONYMS[name]!r}")
            walk(sub, f"{where} {name}")

    root = f"miil {package}"
    walk(parser, root)
    problems += [f"{root}: {p}" for p in recipe_name_problems(sorted(recipe_names))]  # once, not once per verb
    offered = {name for name, _ in _verb_parsers(parser)}
    problems += [f"{root}: missing the standard verb {verb!r}" for verb in required if verb not in offered]
    return problems


def iter_package_parsers(names: Sequence[str] | None = None) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """``(name, parser)`` for installed ``miil.commands`` entry points, built with ``register`` (nothing runs).

    Args:
        names: Only these packages (default: every installed one).
    """
    from .cli import COMMANDS_GROUP, ArgumentParser, _entry_points

    commands = _entry_points(COMMANDS_GROUP)
    for name in sorted(commands) if names is None else names:
        if name not in commands:
            raise KeyError(f"no miil.commands entry point named {name!r}; installed: {', '.join(sorted(commands))}")
        parser = ArgumentParser(prog=f"miil {name}")
        commands[name].load()(parser)
        yield name, parser
