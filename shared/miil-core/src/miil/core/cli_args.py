"""The ``miil`` command-line dialect: one spelling, one meaning and one help text per argument role.

Every package builds its parsers from these helpers, so ``--data-root`` or ``--weights`` mean the same thing in all
ten packages (the table is in miil-core's README, section "The ``miil`` command-line dialect"). Booleans take one
form, ``--flag [BOOL]``: :class:`BoolAction`. This module imports no torch, so parsers stay cheap to build.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from .errors import UserError

__all__ = [
    "BOOL_LITERALS",
    "ROLES",
    "BoolAction",
    "add_amp",
    "add_batch_size",
    "add_classes",
    "add_data_args",
    "add_device",
    "add_eval_args",
    "add_img_size",
    "add_init_checkpoint",
    "add_json",
    "add_model",
    "add_model_kwargs",
    "add_num_workers",
    "add_out_dir",
    "add_output",
    "add_progress",
    "add_recipe",
    "add_recipes_verb",
    "add_resume",
    "add_role",
    "add_seed",
    "add_strict",
    "add_threshold",
    "add_top_k",
    "add_weights",
    "parse_bool",
    "parse_model_kwargs",
    "print_plot_hint",
]

_TRUE = ("true", "yes", "1", "on")
_FALSE = ("false", "no", "0", "off")
BOOL_LITERALS = frozenset(_TRUE + _FALSE)


def parse_bool(text: str) -> bool:
    """``true|yes|1|on`` -> True, ``false|no|0|off`` -> False (any case); anything else is an argparse error."""
    low = str(text).strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise argparse.ArgumentTypeError(f"expected a boolean (true or false), got {text!r}")


parse_bool.__name__ = "bool"  # argparse names the type in "invalid bool value" messages


class BoolAction(argparse.Action):
    """The dialect's one boolean form: ``--flag`` alone sets True, ``--flag false`` / ``--flag=no`` set False.

    ``nargs='?'`` would take a following positional as the flag's value (``infer --strict photo.jpg``); the miil
    parser (:class:`miil.core.cli.ArgumentParser`) rewrites such a ``--flag`` to ``--flag=true`` before parsing.
    """

    def __init__(self, option_strings: Sequence[str], dest: str, default: Any = False, **kwargs: Any):
        for unused in ("nargs", "const", "type"):
            kwargs.pop(unused, None)
        kwargs.setdefault("metavar", "BOOL")
        super().__init__(option_strings, dest, nargs="?", const=True, default=default, type=parse_bool, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, values)


def parse_model_kwargs(text: str | Mapping[str, Any] | None) -> dict[str, Any]:
    """Parse ``--model-kwargs``: a JSON object of extra ``timm.create_model`` arguments.

    Args:
        text: The JSON text (a mapping or ``None`` pass through, for defaults).

    Raises:
        UserError: The text is not JSON, or not an object; the message quotes it.
    """
    if text is None:
        return {}
    if isinstance(text, Mapping):
        return dict(text)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise UserError(
            f"--model-kwargs {text!r} is not valid JSON ({err.msg}); give an object, e.g. '{{\"drop_path_rate\": 0.1}}'"
        ) from None
    if not isinstance(value, dict):
        raise UserError(f"--model-kwargs {text!r} is a JSON {type(value).__name__}, not an object like '{{\"k\": 1}}'")
    return value


def _model_kwargs_type(text: str) -> dict[str, Any]:
    try:
        return parse_model_kwargs(text)
    except UserError as err:  # argparse reports ArgumentTypeError as a usage error of the option
        raise argparse.ArgumentTypeError(str(err).removeprefix("--model-kwargs ")) from None


_model_kwargs_type.__name__ = "JSON"

# role -> (flag, add_argument keyword arguments). The README's roles table documents the same rows.
ROLES: dict[str, tuple[str, dict[str, Any]]] = {
    "recipe": ("--recipe", {"metavar": "NAME", "help": "the paper's table row to run (the recipes verb lists them)"}),
    "data_format": ("--data-format", {"metavar": "NAME", "help": "on-disk format of the dataset"}),
    "data_root": ("--data-root", {"metavar": "DIR", "help": "the dataset's top folder, as the dataset is distributed"}),
    "train_split": (
        "--train-split",
        {"metavar": "NAME", "help": "part of the root to train on (folder, split name or fold; default: the format's)"},
    ),
    "val_split": (
        "--val-split",
        {
            "metavar": "NAME",
            "help": "part of the root to validate on (folder, split name or fold; default: the format's)",
        },
    ),
    "train_labels": (
        "--train-labels",
        {"metavar": "FILE", "help": "training annotation file, when it is not where the format puts it"},
    ),
    "val_labels": (
        "--val-labels",
        {"metavar": "FILE", "help": "validation annotation file, when it is not where the format puts it"},
    ),
    "classes": ("--classes", {"metavar": "FILE", "help": "text file with one class name per line"}),
    "weights": ("--weights", {"metavar": "PATH", "help": "a run folder (its best.safetensors) or a weights file"}),
    "init_checkpoint": (
        "--init-checkpoint",
        {"metavar": "FILE", "help": "local weights the run starts from (backbone or whole model)"},
    ),
    "pretrained": (
        "--pretrained",
        {"action": BoolAction, "default": False, "help": "start from timm's pretrained weights (downloads them)"},
    ),
    "model": ("--model", {"metavar": "NAME", "help": "timm model name"}),
    "model_kwargs": (
        "--model-kwargs",
        {
            "metavar": "JSON",
            "type": _model_kwargs_type,
            "default": "{}",
            "help": "extra timm.create_model arguments as a JSON object",
        },
    ),
    "out_dir": ("--out-dir", {"metavar": "DIR", "help": "run folder: checkpoints, metrics.jsonl and config"}),
    "resume": ("--resume", {"action": BoolAction, "default": False, "help": "continue the run found in --out-dir"}),
    "output": ("--output", {"metavar": "FILE", "help": "the file this command produces"}),
    "json": (
        "--json",
        {"metavar": "FILE", "default": None, "help": "also write machine-readable results to FILE (null, never NaN)"},
    ),
    "device": ("--device", {"metavar": "DEVICE", "default": "auto", "help": "auto | cpu | cuda | cuda:N"}),
    "amp": ("--amp", {"action": BoolAction, "default": False, "help": "mixed precision (off on CPU unless asked for)"}),
    "amp_dtype": (
        "--amp-dtype",
        {"default": "auto", "choices": ("auto", "bfloat16", "float16"), "help": "autocast dtype"},
    ),
    "progress": ("--progress", {"action": BoolAction, "default": True, "help": "tqdm progress bars on rank 0"}),
    "batch_size": ("--batch-size", {"metavar": "N", "type": int, "help": "batch size per process"}),
    "num_workers": ("--num-workers", {"metavar": "N", "type": int, "default": 0, "help": "data-loader processes"}),
    "seed": ("--seed", {"metavar": "N", "type": int, "default": 0, "help": "random seed"}),
    "strict": (
        "--strict",
        {"action": BoolAction, "default": False, "help": "stop at the first unreadable input instead of skipping it"},
    ),
    "top_k": ("--top-k", {"metavar": "N", "type": int, "default": 5, "help": "predictions shown per input"}),
    "threshold": ("--threshold", {"metavar": "X", "type": float, "help": "score threshold of multi-label predictions"}),
    "img_size": ("--img-size", {"metavar": "N", "type": int, "help": "input resolution"}),
    "teacher": ("--teacher", {"metavar": "NAME", "help": "timm model name of the distillation teacher"}),
    "teacher_checkpoint": ("--teacher-checkpoint", {"metavar": "FILE", "help": "local weights of the teacher"}),
    "kd_weight": ("--kd-weight", {"metavar": "X", "type": float, "help": "weight of the distillation term"}),
    "kd_temperature": ("--kd-temperature", {"metavar": "T", "type": float, "help": "distillation temperature"}),
    "label_smoothing": ("--label-smoothing", {"metavar": "X", "type": float, "help": "label smoothing"}),
    "reprob": ("--reprob", {"metavar": "P", "type": float, "help": "random-erasing probability"}),
}


def add_role(parser: argparse.ArgumentParser | argparse._ArgumentGroup, role: str, **overrides: Any) -> argparse.Action:
    """Add the option of one dialect role (a key of :data:`ROLES`) with its one spelling.

    Args:
        parser: Parser or argument group to extend.
        role: The role (``"weights"``, ``"top_k"``, ...).
        **overrides: ``add_argument`` keywords replacing the role's (``default``, ``required``, ``help``, ...).
    """
    try:
        flag, kwargs = ROLES[role]
    except KeyError:
        raise KeyError(f"unknown argument role {role!r}; known roles: {', '.join(sorted(ROLES))}") from None
    return parser.add_argument(flag, **{**kwargs, **overrides})


def add_recipe(parser, recipes: Mapping[str, Any] | Iterable[str], default: str, **overrides: Any) -> argparse.Action:
    """``--recipe NAME``, restricted to the names of ``recipes``, defaulting to ``default``."""
    return add_role(parser, "recipe", choices=sorted(recipes), default=default, **overrides)


def add_data_args(
    parser,
    formats: Sequence[str],
    *,
    splits: Sequence[str] = ("train", "val"),
    default_format: str | None = None,
    labels: bool = True,
    root_required: bool = False,
    group: str | None = "data",
) -> argparse.ArgumentParser | argparse._ArgumentGroup:
    """Add the dataset roles: ``--data-format``, ``--data-root``, ``--<split>-split`` and ``--<split>-labels``.

    Args:
        parser: Parser to extend.
        formats: The on-disk formats the package reads (choices of ``--data-format``).
        splits: Which of ``"train"`` / ``"val"`` the command reads (``("val",)`` for validate).
        default_format: Default of ``--data-format`` (the first format when omitted).
        labels: Also add ``--<split>-labels``.
        root_required: Make ``--data-root`` required.
        group: Title of the argument group in ``--help`` (``None``: no group).

    Returns:
        The group (or parser) the options were added to, for package-specific data options.
    """
    target = parser.add_argument_group(group) if group else parser
    add_role(target, "data_format", choices=list(formats), default=default_format or formats[0])
    add_role(target, "data_root", required=root_required, default=None)
    for split in splits:
        if split not in ("train", "val"):
            raise ValueError(f"splits are 'train' and 'val', got {split!r}")
        add_role(target, f"{split}_split", default=None)
        if labels:
            add_role(target, f"{split}_labels", default=None)
    return target


def add_weights(parser, *, required: bool = True, **overrides: Any) -> argparse.Action:
    """``--weights PATH``: a run folder or a weights file, for every verb that uses a trained model."""
    return add_role(parser, "weights", required=required, **overrides)


def add_init_checkpoint(parser, **overrides: Any) -> argparse.Action:
    """``--init-checkpoint FILE``: local weights a training run starts from."""
    return add_role(parser, "init_checkpoint", default=None, **overrides)


def add_out_dir(parser, default: str | None = None, **overrides: Any) -> argparse.Action:
    """``--out-dir DIR``: the run folder a training command writes."""
    return add_role(parser, "out_dir", default=default, **overrides)


def add_resume(parser, **overrides: Any) -> argparse.Action:
    """``--resume [BOOL]``: continue the run found in ``--out-dir``."""
    return add_role(parser, "resume", **overrides)


def add_device(parser, **overrides: Any) -> argparse.Action:
    """``--device auto|cpu|cuda|cuda:N``."""
    return add_role(parser, "device", **overrides)


def add_amp(parser, *, dtype: bool = False, **overrides: Any) -> argparse.Action:
    """``--amp [BOOL]`` (and ``--amp-dtype`` when ``dtype``)."""
    action = add_role(parser, "amp", **overrides)
    if dtype:
        add_role(parser, "amp_dtype")
    return action


def add_progress(parser, **overrides: Any) -> argparse.Action:
    """``--progress [BOOL]``: bars on rank 0; off: one line per epoch."""
    return add_role(parser, "progress", **overrides)


def add_top_k(parser, default: int = 5, **overrides: Any) -> argparse.Action:
    """``--top-k N``: predictions shown per input."""
    return add_role(parser, "top_k", default=default, **overrides)


def add_threshold(parser, default: float | None = None, **overrides: Any) -> argparse.Action:
    """``--threshold X``: the score threshold of multi-label predictions."""
    return add_role(parser, "threshold", default=default, **overrides)


def add_json(parser, **overrides: Any) -> argparse.Action:
    """``--json FILE``: machine-readable results (metrics, predictions, skipped inputs)."""
    return add_role(parser, "json", **overrides)


def add_output(parser, *, required: bool = False, **overrides: Any) -> argparse.Action:
    """``--output FILE``: the artifact a verb produces."""
    return add_role(parser, "output", required=required, default=None, **overrides)


def add_batch_size(parser, default: int, **overrides: Any) -> argparse.Action:
    """``--batch-size N`` (per process)."""
    return add_role(parser, "batch_size", default=default, **overrides)


def add_num_workers(parser, **overrides: Any) -> argparse.Action:
    """``--num-workers N``."""
    return add_role(parser, "num_workers", **overrides)


def add_seed(parser, **overrides: Any) -> argparse.Action:
    """``--seed N``."""
    return add_role(parser, "seed", **overrides)


def add_strict(parser, **overrides: Any) -> argparse.Action:
    """``--strict [BOOL]``: stop at the first unreadable input instead of skipping it."""
    return add_role(parser, "strict", **overrides)


def add_model(parser, default: str | None = None, **overrides: Any) -> argparse.Action:
    """``--model NAME``: a timm model name."""
    return add_role(parser, "model", default=default, **overrides)


def add_model_kwargs(parser, **overrides: Any) -> argparse.Action:
    """``--model-kwargs JSON``: parsed into a dict (a bad value is a usage error naming the text)."""
    return add_role(parser, "model_kwargs", **overrides)


def add_classes(parser, **overrides: Any) -> argparse.Action:
    """``--classes FILE``: one class name per line."""
    return add_role(parser, "classes", default=None, **overrides)


def add_img_size(parser, default: int | None = None, **overrides: Any) -> argparse.Action:
    """``--img-size N``."""
    return add_role(parser, "img_size", default=default, **overrides)


def add_eval_args(parser, *, batch_size: int) -> None:
    """The options of a ``validate`` / ``infer`` verb (:mod:`miil.core.verbs` applies them).

    ``--batch-size``, ``--num-workers``, ``--device``, ``--amp [BOOL]`` (default: the precision the run was validated
    in, the ``eval_precision`` of its sidecar) with ``--amp-dtype``, ``--progress``, ``--strict`` and ``--json``.

    Args:
        parser: The verb's parser.
        batch_size: Default of ``--batch-size``.
    """
    add_batch_size(parser, batch_size)
    add_num_workers(parser)
    add_device(parser)
    add_amp(
        parser,
        dtype=True,
        default=None,
        help="autocast (default: the precision the run was validated in, its eval_precision; false: fp32)",
    )
    add_progress(parser)
    add_strict(parser)
    add_json(parser)


def _first_doc_line(obj: Any) -> str:
    doc = (type(obj).__doc__ or "").strip()
    return doc.splitlines()[0] if doc else ""


def _describe_recipe(recipe: Any) -> str:
    return f"{type(recipe).__name__}: {_first_doc_line(recipe)}"


def _show_recipes(
    recipes: Mapping[str, Any], name: str | None, describe: Callable[[Any], str] = _describe_recipe
) -> int:
    from .config import pick_recipe, recipe_to_dict

    if name is None:
        width = max((len(n) for n in recipes), default=0)
        for key in sorted(recipes):
            print(f"{key:<{width}}  {describe(recipes[key])}".rstrip())
        return 0
    recipe = pick_recipe(recipes, name)
    print(f"{name}  ({describe(recipe)})")
    for field, value in recipe_to_dict(recipe).items():
        print(f"  --{field.replace('_', '-'):<26} {value}")
    return 0


def add_recipes_verb(
    subparsers,
    recipes: Mapping[str, Any],
    *,
    help: str | None = None,
    describe: Callable[[Any], str] | None = None,
) -> argparse.ArgumentParser:
    """Add the ``recipes [NAME]`` verb: list the recipes, or print one recipe's fields as ``--flag value``.

    Args:
        subparsers: The package's ``add_subparsers()`` object.
        recipes: Name -> recipe (a frozen dataclass instance).
        help: Help line of the verb.
        describe: One line about a recipe in the listing (default: its class name and the first docstring line), for
            packages whose rows share one recipe class.
    """
    from .cli import HelpFormatter

    p = subparsers.add_parser(
        "recipes",
        help=help or "list the paper's recipes, or show one recipe's values",
        formatter_class=HelpFormatter,
    )
    p.add_argument("name", nargs="?", default=None, choices=sorted(recipes), metavar="NAME", help="a recipe")
    p.set_defaults(func=lambda args: _show_recipes(recipes, args.name, describe or _describe_recipe))
    return p


def print_plot_hint(out_dir: str | os.PathLike) -> None:
    """Print, on rank 0, the one line that tells how to draw a finished run's curves."""
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"plot: miil plot {out_dir}", flush=True)
