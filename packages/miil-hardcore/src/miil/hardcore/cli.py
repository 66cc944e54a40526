"""``miil hardcore ...``: the HardCoRe-NAS pipeline from the command line, in the ``miil`` dialect.

Paper: HardCoRe-NAS (arXiv 2102.11646). The steps, in order (``imagenet/`` holds ``train/<class>/<image>`` and
``val/<class>/<image>``)::

    miil hardcore lut --output lut.json                    # latency table on this device (ms per sample)
    miil hardcore import-lut lut.pkl lut.json              # ... or the original code's table, converted
    miil hardcore calibrate --lut lut.json --update        # predicted vs measured random networks
    miil hardcore train-supernet --recipe heaviest-path-imagenet --data-root imagenet/ --out-dir runs/heavy
    miil hardcore train-supernet --recipe multipath-imagenet --init-checkpoint runs/heavy --data-root imagenet/ \\
        --out-dir runs/multi
    miil hardcore search --weights runs/multi --lut lut.json --data-root imagenet/ --latency-ms 40 --output arch.json
    miil hardcore extract --weights runs/multi --arch arch.json --output child.safetensors
    miil hardcore finetune --init-checkpoint runs/multi --arch arch.json --data-root imagenet/ --out-dir runs/ft
    miil hardcore train --arch arch.json --data-root imagenet/ --out-dir runs/scratch     # from scratch
    miil hardcore validate --weights runs/ft --data-root imagenet/
    miil hardcore infer --weights runs/ft photo.jpg
    miil hardcore convert w_star_076b2ed3.pth w_star.safetensors         # original checkpoints -> ours

This module builds the parsers only (no torch); each verb's code is imported when it runs (:mod:`.commands`,
:mod:`.child_commands`). Training runs through the core engine, so every training command also runs under
``torchrun``; ``search`` averages the architecture gradients over the processes.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

from miil.core import cli_args as ca
from miil.core.cli import HelpFormatter
from miil.core.config import add_dataclass_arguments

from .cli_support import DATA_FORMATS, lazy_verb, with_run_img_size
from .recipes import ALL_RECIPES, CHILD_RECIPES, SEARCH_RECIPES, SUPERNET_RECIPES

__all__ = ["add_child_commands", "add_recipe_overrides", "register", "with_run_img_size"]

_COMMANDS = "miil.hardcore.commands"
_CHILD_COMMANDS = "miil.hardcore.child_commands"
_SPACE_NAMES = "hardcorenas, digits"  # miil.hardcore.search_space.SPACES (not imported: it loads numpy)
_ARCH_HELP = "a search or extract result (JSON, its space included), a published name (hardcorenas_a), or arch_def"


# ---------------------------------------------------------------------------------------------------- helpers
def _verb(sub: Any, name: str, help: str, func: str, module: str = _COMMANDS) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=help, description=help, formatter_class=HelpFormatter)
    p.set_defaults(func=lazy_verb(module, func))
    return p


def add_recipe_overrides(p: argparse.ArgumentParser, recipes: Mapping[str, Any], default: str, **kwargs: Any) -> None:
    """``--recipe NAME`` and one ``--field`` per recipe field, applied only where given (``miil iqnas`` uses it too).

    Args:
        p: The verb's parser.
        recipes: The recipe table (``--recipe`` choices).
        default: The default recipe, whose values ``--help`` shows.
        **kwargs: Passed to :func:`miil.core.config.add_dataclass_arguments` (``exclude``).
    """
    ca.add_recipe(p, recipes, default)
    add_dataclass_arguments(
        p,
        recipes[default],
        group="recipe overrides (default: the value of --recipe)",
        only_if_given=True,
        recipe_name=default,
        **kwargs,
    )


def _space_arg(p: argparse.ArgumentParser, help: str | None = None) -> None:
    help = help or f"search space: {_SPACE_NAMES} or a JSON file"
    p.add_argument("--space", default="hardcorenas", metavar="NAME|FILE", help=help)


def _data(p: argparse.ArgumentParser, splits: tuple[str, ...]) -> None:
    ca.add_data_args(p, DATA_FORMATS, splits=splits, labels=False, root_required=True)


# ---------------------------------------------------------------------------------------------------- child verbs
def add_child_commands(sub: Any, *, names: Mapping[str, str] | None = None) -> None:
    """Add the commands that act on an extracted child network to a subparsers action.

    They are ``finetune`` (KD from the heaviest path), ``train`` (from scratch), ``validate`` and ``infer``; packages
    that search the same space (``miil iqnas``) reuse them, so both speak the same dialect.

    Args:
        sub: What ``ArgumentParser.add_subparsers`` returned.
        names: Which commands to add and under which name (``{"finetune": "train"}`` adds only ``finetune``, called
            ``train``); all four under their own names when not given.
    """
    names = dict(names) if names is not None else {n: n for n in ("finetune", "train", "validate", "infer")}
    unknown = sorted(set(names) - {"finetune", "train", "validate", "infer"})
    if unknown:
        raise ValueError(f"unknown child commands {unknown}; known: finetune, train, validate, infer")
    weights_help = "a finetune / train run folder, or a child .safetensors with its .json (extract, convert)"

    if "finetune" in names:
        what = "fine-tune a child sliced from a supernet, with KD"
        p = _verb(sub, names["finetune"], what, "finetune", _CHILD_COMMANDS)
        ca.add_init_checkpoint(
            p, required=True, metavar="RUN", help="the supernet run (or converted supernet) the child inherits from"
        )
        ca.add_role(
            p,
            "teacher_checkpoint",
            default=None,
            metavar="RUN",
            help="supernet run whose heaviest path teaches (default: --init-checkpoint)",
        )
        p.add_argument("--arch", required=True, help=_ARCH_HELP)
        _data(p, ("train", "val"))
        ca.add_strict(p)
        add_recipe_overrides(p, CHILD_RECIPES, "finetune-imagenet", exclude=("space",))

    if "train" in names:
        p = _verb(sub, names["train"], "train a chosen child from scratch", "train", _CHILD_COMMANDS)
        p.add_argument("--arch", required=True, help=_ARCH_HELP)
        _data(p, ("train", "val"))
        ca.add_strict(p)
        add_recipe_overrides(p, CHILD_RECIPES, "scratch-imagenet")

    if "validate" in names:
        what = "top-1 / top-5 of a child on the validation split"
        p = _verb(sub, names["validate"], what, "validate", _CHILD_COMMANDS)
        ca.add_weights(p, help=weights_help)
        _data(p, ("val",))
        _eval_args(p)
        ca.add_json(p)

    if "infer" in names:
        p = _verb(sub, names["infer"], "classify images with a child", "infer", _CHILD_COMMANDS)
        ca.add_weights(p, help=weights_help)
        p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files")
        ca.add_top_k(p)
        _eval_args(p)
        ca.add_json(p, help="also write the predictions and skipped inputs to FILE (null, never NaN)")


def _eval_args(p: argparse.ArgumentParser) -> None:
    ca.add_img_size(p, help="input resolution (default: the one stored with the weights)")
    ca.add_batch_size(p, 64)
    ca.add_num_workers(p)
    ca.add_device(p)
    ca.add_amp(p, default=None, help="autocast (default: the precision the run validated in, eval_precision)")
    ca.add_progress(p)
    ca.add_strict(p)


# ---------------------------------------------------------------------------------------------------- register
def register(parser: argparse.ArgumentParser) -> None:
    """Add the ``miil hardcore`` subcommands to ``parser``."""
    parser.description = "HardCoRe-NAS (arXiv 2102.11646): latency tables, supernet, hard-constrained search."
    sub = parser.add_subparsers(dest="subcommand", metavar="SUBCOMMAND")
    ca.add_recipes_verb(sub, ALL_RECIPES)

    p = _verb(sub, "lut", "measure the latency table on this device (ms per sample)", "lut")
    _space_arg(p)
    ca.add_img_size(p, help="input resolution (default: the space's)")
    p.add_argument("--backend", default="cpu", choices=("cpu", "cuda", "onnx"), help="CPU threads, CUDA events, ONNX")
    p.add_argument("--threads", type=int, default=1, metavar="N", help="CPU threads (cpu / onnx backends)")
    ca.add_batch_size(p, 1, help="samples per timed forward (results are per sample)")
    p.add_argument("--warmup", type=int, default=10, metavar="N", help="untimed forward passes")
    p.add_argument("--repeats", type=int, default=50, metavar="N", help="timed forward passes")
    p.add_argument("--statistic", default="median", choices=("median", "mean", "min"), help="statistic over repeats")
    p.add_argument(
        "--clock", default="wall", choices=("wall", "thread_cpu"), help="thread_cpu ignores preemption (1 CPU thread)"
    )
    ca.add_device(p, help="CUDA device of --backend cuda (auto: cuda)")
    p.add_argument("--num-classes", type=int, default=1000, metavar="N", help="classifier outputs of the timed head")
    ca.add_role(p, "output", default="lut.json", help="the latency table JSON to write")
    ca.add_progress(p)

    p = _verb(
        sub,
        "import-lut",
        "convert the original code's latency table (lut.pkl, seconds) into ours (JSON, ms per sample)",
        "import_lut",
    )
    p.add_argument("original", metavar="ORIGINAL", help="the original's lut.pkl (read without unpickling code)")
    p.add_argument("output", metavar="OUTPUT", help="the latency table JSON to write")
    _space_arg(p)
    ca.add_img_size(p, help="resolution the table was measured at (default: the space's)")
    p.add_argument(
        "--gpu-batch-size",
        type=int,
        default=1,
        metavar="N",
        help="--lut_measure_batch_size of an original table measured on its gpu target (block entries per batch)",
    )

    p = _verb(sub, "calibrate", "predicted vs measured latency of random networks", "calibrate")
    p.add_argument("--lut", required=True, metavar="FILE", help="latency table JSON")
    p.add_argument("--num-archs", type=int, default=20, metavar="N", help="networks to measure (with the extremes)")
    ca.add_seed(p, help="seed of the random networks")
    p.add_argument("--update", action=ca.BoolAction, default=False, help="store the fitted slope / intercept in --lut")
    ca.add_json(p, help="also write the measurements and the fit to FILE")
    ca.add_progress(p)

    p = _verb(sub, "train-supernet", "train the supernet (heaviest path, then multipath)", "train_supernet")
    _data(p, ("train", "val"))
    ca.add_init_checkpoint(p, metavar="RUN", help="multipath stage: the heaviest-path run (or converted w_heaviest)")
    p.add_argument("--train-percent", type=float, default=80.0, metavar="P", help="percent of train for the weights")
    p.add_argument("--split-seed", type=int, default=0, metavar="N", help="seed of the weights / search split")
    ca.add_strict(p)
    add_recipe_overrides(p, SUPERNET_RECIPES, "heaviest-path-imagenet")

    p = _verb(sub, "search", "HardCoRe search under a latency target", "search")
    ca.add_weights(p, metavar="RUN", help="the multipath supernet run (or converted w_star)")
    p.add_argument("--lut", required=True, metavar="FILE", help="latency table JSON of the target device")
    _data(p, ("train",))
    ca.add_role(p, "output", default="arch.json", help="result JSON (arch_def, its space, predicted latency, history)")
    ca.add_device(p)
    ca.add_progress(p)
    p.add_argument(
        "--closed-loop",
        action=ca.BoolAction,
        default=False,
        help="measure the chosen network on this device (the table's protocol); on a miss, correct the table's "
        "calibration on the measured networks and search again",
    )
    p.add_argument("--max-rounds", type=int, default=3, metavar="N", help="--closed-loop: searches at most")
    add_recipe_overrides(p, SEARCH_RECIPES, "hardcorenas-b")

    p = _verb(sub, "extract", "slice a child out of the supernet (timm MobileNetV3)", "extract")
    ca.add_weights(p, metavar="RUN", help="the supernet run (or converted supernet)")
    p.add_argument("--arch", required=True, help=_ARCH_HELP)
    ca.add_role(p, "output", default="child.safetensors", help="the child weights (a .json sidecar is written beside)")

    add_child_commands(sub)

    p = _verb(sub, "convert", "convert a checkpoint of the original code (w_heaviest, w_star, children)", "convert")
    p.add_argument("source", metavar="SOURCE", help="original checkpoint (.pth / .pth.tar, loaded without code)")
    p.add_argument("output", metavar="OUTPUT", help="the .safetensors to write (a .json sidecar is written beside)")
    _space_arg(p)
    ca.add_img_size(p, help="resolution stored with the result (default: the space's)")
    p.add_argument(
        "--kind",
        default="auto",
        choices=("auto", "supernet", "child"),
        help="auto: the source's layout; supernet: embed a heaviest network; child: slice a supernet to --arch",
    )
    p.add_argument("--arch", default=None, help="child architecture (inferred from the source if not given)")
    p.add_argument("--ema", action=ca.BoolAction, default=False, help="take state_dict_ema of a training output")
    p.add_argument(
        "--part",
        default=None,
        choices=("student", "teacher"),
        help="part of a multipath-stage output (default: student)",
    )
