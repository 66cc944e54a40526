"""Recipes as data: frozen dataclasses turned into command-line options and back.

A paper's setting is a frozen dataclass named after the table row it reproduces. The CLI exposes every field
as ``--field-name`` (defaults shown in ``--help``), and the resolved recipe is written into the run directory.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from .cli_args import BoolAction
from .errors import UserError

__all__ = [
    "UnknownRecipeError",
    "add_dataclass_arguments",
    "dataclass_from_args",
    "pick_recipe",
    "recipe_name_problems",
    "recipe_to_dict",
]

T = TypeVar("T")


def _unwrap_optional(tp: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return tp, False


def _none_or(conv):
    def parse(text: str):
        return None if text.strip().lower() in ("none", "null", "") else conv(text)

    parse.__name__ = getattr(conv, "__name__", "value")
    return parse


def add_dataclass_arguments(
    parser: argparse.ArgumentParser,
    recipe: Any,
    *,
    exclude: tuple[str, ...] = (),
    group: str | None = None,
    only_if_given: bool = False,
    recipe_name: str | None = None,
) -> None:
    """Add one ``--field-name`` option per dataclass field, defaulting to the recipe's value.

    Args:
        parser: Parser (or sub-parser) to extend.
        recipe: A dataclass instance (its values become the defaults) or class (its defaults are used).
        exclude: Field names not to expose.
        group: Optional argument-group title, so ``--help`` separates recipe options from the others.
        only_if_given: Leave an option out of the parsed namespace unless it is on the command line, so that
            :func:`dataclass_from_args` overrides a recipe chosen at run time (``--recipe NAME``) only where the
            user asked to, instead of resetting every field to ``recipe``'s value. When ``recipe`` is an instance,
            each option's help still shows its value there, as ``[recipe_name: value]``.
        recipe_name: How ``--help`` names ``recipe`` with ``only_if_given`` (default: "default recipe").
    """
    target = parser.add_argument_group(group) if group else parser
    hints = typing.get_type_hints(recipe if isinstance(recipe, type) else type(recipe))
    for f in dataclasses.fields(recipe):
        if f.name in exclude or not f.init:
            continue
        default = getattr(recipe, f.name) if not isinstance(recipe, type) else _field_default(f)
        tp, optional = _unwrap_optional(hints.get(f.name, str))
        flag = "--" + f.name.replace("_", "-")
        helptext = f.metadata.get("help", " ")
        if only_if_given and not isinstance(recipe, type):
            helptext = f"{helptext.strip()} [{recipe_name or 'default recipe'}: {default}]".lstrip()
        kwargs: dict[str, Any] = {
            "default": argparse.SUPPRESS if only_if_given else default,
            "dest": f.name,
            "help": helptext,
        }
        origin = typing.get_origin(tp)
        if tp is bool:
            kwargs.update(action=BoolAction)  # the dialect's one boolean form: --flag [BOOL]
        elif origin in (tuple, list):
            args = typing.get_args(tp)
            item = args[0] if args else str
            item = item if item in (int, float, str) else str
            nargs = len(args) if origin is tuple and args and args[-1] is not Ellipsis else "*"
            kwargs.update(type=item, nargs=nargs)
        elif tp in (int, float, str):
            kwargs.update(type=_none_or(tp) if optional else tp)
        else:
            kwargs.update(type=str)
        target.add_argument(flag, **kwargs)


def _field_default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


def dataclass_from_args(recipe: T, args: argparse.Namespace | Mapping[str, Any]) -> T:
    """Return ``recipe`` with the fields overridden by parsed options (lists become tuples)."""
    values = vars(args) if isinstance(args, argparse.Namespace) else dict(args)
    changes = {}
    for f in dataclasses.fields(recipe):
        if f.name in values and f.init:
            v = values[f.name]
            changes[f.name] = tuple(v) if isinstance(v, list) else v
    return dataclasses.replace(recipe, **changes)


def recipe_to_dict(recipe: Any) -> dict[str, Any]:
    """A JSON-ready dict of a dataclass recipe (tuples become lists)."""
    return dataclasses.asdict(recipe)


class UnknownRecipeError(UserError, KeyError):
    """A recipe name that is not in the package's table (a :class:`UserError`, and a ``KeyError`` as before)."""

    def __str__(self) -> str:
        # KeyError would repr() the message; show it as written.
        return str(self.args[0]) if self.args else ""


def pick_recipe(recipes: Mapping[str, T], name: str) -> T:
    """Look a recipe up by its table-row name, with an error that lists the known names."""
    try:
        return recipes[name]
    except KeyError:
        known = ", ".join(sorted(recipes))
        raise UnknownRecipeError(
            f"unknown recipe {name!r}; known recipes: {known} (the recipes verb shows each one's values)"
        ) from None


_KEBAB = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


def recipe_name_problems(names: Iterable[str]) -> list[str]:
    """Recipe names that are not kebab-case (lower-case words and digits joined by single hyphens).

    Args:
        names: Recipe names, or a mapping of them (``RECIPES``); a package test asserts the result is empty.

    Returns:
        One message per bad name, with the kebab-case spelling to use.
    """
    problems = []
    for name in names:
        if not isinstance(name, str) or not _KEBAB.fullmatch(name):
            fixed = re.sub(r"[^a-z0-9]+", "-", re.sub(r"([a-z0-9])([A-Z])", r"\1-\2", str(name)).lower()).strip("-")
            problems.append(f"recipe name {name!r} is not kebab-case (use {fixed!r})")
    return problems
