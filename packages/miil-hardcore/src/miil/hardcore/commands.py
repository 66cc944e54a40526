"""The ``miil hardcore`` verbs that measure, search and convert: ``lut``, ``import-lut``, ``calibrate``,
``train-supernet``, ``search``, ``extract`` and ``convert`` (the child verbs are in :mod:`.child_commands`).

Paper: HardCoRe-NAS (arXiv 2102.11646): latency tables (section 3.3), the two supernet stages (section 3.2, 3.5), the
hard-constrained search on the 20% of the training set held out from the supernet (section 3.4, 4), and the original
code's checkpoints and latency table. Imported only when one of these verbs runs (:mod:`.cli` builds the parsers).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from torch.utils.data import DataLoader, DistributedSampler

from miil.core import distributed as du
from miil.core.cli_args import print_plot_hint
from miil.core.config import dataclass_from_args, pick_recipe, recipe_to_dict
from miil.core.data import skip_unreadable_collate
from miil.core.errors import UserError
from miil.core.evaluate import exit_status, print_skipped_summary, write_json
from miil.core.io import atomic_write_text

from .builder import resolve_architecture
from .calibrate import calibrate_latency
from .checkpoints import load_search_result, load_supernet, read_sidecar, save_child
from .cli_support import one_line_warnings, split_folder, with_run_img_size
from .closed_loop import closed_loop_search
from .convert import convert_original_checkpoint
from .data import eval_transform, held_out_split, image_folder, image_sets
from .extract import extract_child
from .latency import TimingConfig, measure_latency_table
from .latency_table import LatencyTable, LatencyTableError
from .original_lut import import_original_lut
from .recipes import SEARCH_RECIPES, SUPERNET_RECIPES, SearchRecipe, SupernetRecipe
from .search import hardcore_search, soft_penalty_search
from .search_space import Architecture, SearchSpace, resolve_space
from .supernet import HardCoReSupernet
from .training import (
    MultipathDistillationStep,
    SupervisedStep,
    frozen_heaviest_teacher,
    make_trainer,
    order_channels,
    spread_heaviest_path,
)

__all__ = [
    "ARCH_FILE_SUFFIXES",
    "calibrate",
    "check_classes",
    "convert",
    "extract",
    "import_lut",
    "lut",
    "note_no_validation",
    "recipe_from_args",
    "resolve_arch",
    "search",
    "train_supernet",
]

# What --arch treats as a file name (read through load_file) rather than a published name or arch_def text.
ARCH_FILE_SUFFIXES = (".json", ".pkl", ".pickle", ".pt", ".pth", ".tar", ".safetensors", ".npy")


# ---------------------------------------------------------------------------------------------------- helpers
def recipe_from_args(args: argparse.Namespace, recipes: dict):
    """The ``--recipe`` row with the fields given on the command line."""
    return dataclass_from_args(pick_recipe(recipes, args.recipe), args)


def resolve_arch(spec: str, space: SearchSpace) -> Architecture:
    """``--arch``: a search / extract result file (read through ``load_file``; its recorded space must be ``space``'s),
    a published name (``hardcorenas_a``) or ``arch_def`` text."""
    path = Path(spec)
    if path.exists() or path.suffix.lower() in ARCH_FILE_SUFFIXES:
        if not path.exists():
            raise UserError(f"--arch {spec}: no such file (a search result JSON, a published name or arch_def text)")
        return load_search_result(path, space)
    try:
        return resolve_architecture(space, spec)
    except (ValueError, KeyError) as err:
        raise UserError(
            f"--arch {spec!r} is not a result file, a published name (hardcorenas_a) or arch_def: {err}"
        ) from None


def check_classes(run: str, run_info: dict, data_dir: Path, classes: list[str], num_classes: int) -> None:
    """Refuse data whose class folders are not the ones the run was trained on (before the first step).

    Args:
        run: The run or weights file, for the message.
        run_info: Its sidecar (``classes`` when recorded).
        data_dir: The folder read, for the message.
        classes: Its class folders.
        num_classes: The network's classifier outputs.
    """
    recorded = run_info.get("classes")
    if recorded and list(recorded) != list(classes):
        raise UserError(
            f"{data_dir} has {len(classes)} class folders ({', '.join(classes[:3])}, ...) but {run} was trained on "
            f"{len(recorded)} ({', '.join(recorded[:3])}, ...): use the dataset (--data-root, --*-split) it was "
            "trained on"
        )
    if len(classes) != num_classes:
        raise UserError(
            f"{data_dir} has {len(classes)} class folders but {run} classifies {num_classes} classes: use the dataset "
            "it was trained on"
        )


def note_no_validation(args: argparse.Namespace, val_dir: Path | None) -> None:
    """Say (on rank 0) that a run trains without validation, because the root has no ``val`` split."""
    if val_dir is None and du.is_main_process():
        print(
            f"no val split in {args.data_root}: training without validation (best.safetensors = the last epoch); "
            "name one with --val-split"
        )


def _search_loader(dataset, batch_size: int, *, seed: int) -> DataLoader:
    if du.get_world_size() > 1:
        sampler = DistributedSampler(dataset, shuffle=True, seed=seed)
        return DataLoader(dataset, batch_size=batch_size, sampler=sampler, collate_fn=skip_unreadable_collate)
    gen = torch.Generator().manual_seed(seed)
    return DataLoader(dataset, batch_size=batch_size, shuffle=True, generator=gen, collate_fn=skip_unreadable_collate)


def _print_table_summary(table: LatencyTable) -> None:
    lightest, heaviest = table.latency(table.lightest()), table.latency(table.heaviest())
    print(f"fixed frame {table.t_fixed:.4f} ms; lightest network {lightest:.4f} ms; heaviest {heaviest:.4f} ms")


# ---------------------------------------------------------------------------------------------------- tables
def lut(args: argparse.Namespace) -> int:
    """``miil hardcore lut``: time every block option of the space on this device."""
    space = resolve_space(args.space, image_size=args.img_size)
    timing = TimingConfig(
        backend=args.backend,
        threads=args.threads,
        batch_size=args.batch_size,
        warmup=args.warmup,
        repeats=args.repeats,
        device="cuda" if args.device == "auto" else args.device,
        statistic=args.statistic,
        clock=args.clock,
    )
    table = measure_latency_table(space, timing, num_classes=args.num_classes, progress=args.progress)
    path = table.save(args.output)
    print(f"wrote {path}: {table.block_ms.size} block entries + stem/head, ms per sample on {table.device['cpu']}")
    _print_table_summary(table)
    return 0


def import_lut(args: argparse.Namespace) -> int:
    """``miil hardcore import-lut ORIGINAL OUTPUT``: the original code's ``lut.pkl`` as our table."""
    space = resolve_space(args.space, image_size=args.img_size)
    try:
        table = import_original_lut(args.original, space, gpu_batch_size=args.gpu_batch_size)
    except LatencyTableError as err:
        raise UserError(str(err)) from None
    path = table.save(args.output)
    ignored = table.device["ignored_entries"]
    print(f"wrote {path}: {table.block_ms.size} block entries from {args.original} ({ignored} not in the space)")
    _print_table_summary(table)
    return 0


def calibrate(args: argparse.Namespace) -> int:
    """``miil hardcore calibrate``: predicted vs measured latency of random networks, and the affine fit."""
    table = LatencyTable.load(args.lut)
    report = calibrate_latency(table, num_archs=args.num_archs, seed=args.seed, progress=args.progress)
    print(f"{'predicted ms':>12} {'measured ms':>12} {'rel. error':>10}")
    for p, m in zip(report.predicted, report.measured):
        print(f"{p:12.4f} {m:12.4f} {abs(m - p) / m:10.3%}")
    print(
        f"mean |measured - predicted| / measured: {report.mean_relative_error:.3%}; fit measured = "
        f"{report.slope:.4f} * raw + {report.intercept:.4f} ms -> {report.calibrated_mean_relative_error:.3%}"
    )
    if args.update:
        table.with_calibration(report.slope, report.intercept).save(args.lut)
        print(f"stored the calibration in {args.lut}")
    if args.json:
        write_json(
            args.json,
            {
                "lut": str(args.lut),
                "slope": report.slope,
                "intercept": report.intercept,
                "mean_relative_error": report.mean_relative_error,
                "calibrated_mean_relative_error": report.calibrated_mean_relative_error,
                "rows": report.rows,
            },
        )
    return 0


# ---------------------------------------------------------------------------------------------------- supernet
def train_supernet(args: argparse.Namespace) -> int:
    """``miil hardcore train-supernet``: the heaviest-path stage, or the multipath stage (``--init-checkpoint``)."""
    recipe: SupernetRecipe = recipe_from_args(args, SUPERNET_RECIPES)
    if recipe.stage not in ("heaviest", "multipath"):
        raise UserError(f"--stage must be heaviest or multipath, got {recipe.stage!r}")
    init = args.init_checkpoint
    if recipe.stage == "multipath":
        if not init:
            raise UserError(
                f"recipe {args.recipe} is the multipath stage: pass --init-checkpoint RUN, the heaviest-path run "
                "(or a converted w_heaviest) it starts from"
            )
        recipe = with_run_img_size(recipe, args, read_sidecar(init)[1], init)
    elif init:
        raise UserError(
            f"recipe {args.recipe} is the heaviest-path stage, which starts from scratch: drop --init-checkpoint, or "
            "choose a multipath recipe (multipath-imagenet)"
        )
    train_dir = split_folder(args, "train")
    val_dir = split_folder(args, "val", required=False)
    note_no_validation(args, val_dir)
    prog = "miil hardcore train-supernet"
    with one_line_warnings():
        train, val, classes = image_sets(
            recipe, train_dir, val_dir, train_percent=args.train_percent, seed=args.split_seed, strict=args.strict
        )
        if recipe.stage == "heaviest":
            space = resolve_space(recipe.space, image_size=recipe.img_size)
            supernet = HardCoReSupernet(
                space, num_classes=len(classes), drop_rate=recipe.drop_rate, drop_path_rate=recipe.drop_path_rate
            )
            supernet.set_sampling(space.heaviest())
            step = SupervisedStep(label_smoothing=recipe.label_smoothing)
        else:
            supernet = load_supernet(init)
            check_classes(init, read_sidecar(init)[1], train_dir, classes, supernet.num_classes)
            space = supernet.space
            teacher = frozen_heaviest_teacher(supernet)
            spread_heaviest_path(supernet)
            plain = image_folder(train_dir, eval_transform(recipe.img_size), strict=args.strict)
            part, _ = held_out_split(plain, train_percent=args.train_percent, seed=args.split_seed)
            order_channels(
                supernet,
                part,
                fraction=recipe.taylor_fraction,
                batch_size=recipe.batch_size,
                seed=recipe.seed,
                progress=recipe.progress,
            )
            supernet.set_sampling(None)
            step = MultipathDistillationStep(
                teacher,
                kd_weight=recipe.kd_weight,
                feature_kd_divisor=recipe.feature_kd_divisor,
                temperature=recipe.kd_temperature,
                label_smoothing=recipe.label_smoothing,
            )
        run_info = {
            "kind": "supernet",
            "recipe": args.recipe,
            "stage": recipe.stage,
            "space": space.to_dict(),
            "num_classes": len(classes),
            "classes": classes,
            "img_size": recipe.img_size,
            "train_percent": args.train_percent,
            "split_seed": args.split_seed,
        }
        result = make_trainer(supernet, train, recipe, step_fn=step, val_dataset=val, run_info=run_info).fit()
    print_skipped_summary(result.skipped, prog=prog)
    if du.is_main_process():
        best = f"best {result.best_metric} at epoch {result.best_epoch}"
        print(f"supernet ({recipe.stage}) saved in {result.out_dir}; {best}")
    print_plot_hint(result.out_dir)
    return exit_status(result.skipped)


# ---------------------------------------------------------------------------------------------------- search
def search(args: argparse.Namespace) -> int:
    """``miil hardcore search``: BCSFW (or the soft-penalty baseline) on the held-out part of the training split."""
    recipe: SearchRecipe = recipe_from_args(args, SEARCH_RECIPES)
    if recipe.method not in ("hardcore", "soft_penalty"):
        raise UserError(f"--method must be hardcore or soft_penalty, got {recipe.method!r}")
    if args.closed_loop and recipe.method != "hardcore":
        raise UserError(f"--closed-loop searches with --method hardcore, not {recipe.method!r}")
    if args.max_rounds < 1:
        raise UserError(f"--max-rounds must be >= 1, got {args.max_rounds}")
    device = du.init_distributed(args.device)
    supernet = load_supernet(args.weights).to(device)
    table = LatencyTable.load(args.lut)
    if not table.space.same_networks(supernet.space):
        raise UserError(f"the latency table {args.lut} was measured for another search space than {args.weights}")
    _, info = read_sidecar(args.weights)
    recipe = with_run_img_size(recipe, args, info, args.weights)
    train_dir = split_folder(args, "train")
    with one_line_warnings():
        plain = image_folder(train_dir, eval_transform(recipe.img_size))
        check_classes(args.weights, info, train_dir, plain.classes, supernet.num_classes)
        _, search_part = held_out_split(
            plain, train_percent=info.get("train_percent", recipe.train_percent), seed=info.get("split_seed", 0)
        )
        loader = _search_loader(search_part, recipe.batch_size, seed=recipe.seed)
        loop = None
        if recipe.method == "hardcore":
            options = dict(
                target_ms=recipe.latency_ms,
                steps=recipe.steps,
                momentum=recipe.momentum,
                gamma=recipe.gamma,
                gamma_schedule=recipe.gamma_schedule,
                seed=recipe.seed,
                progress=args.progress,
            )
            if args.closed_loop:
                loop = closed_loop_search(supernet, table, loader, max_rounds=args.max_rounds, **options)
                result = loop.result
            else:
                result = hardcore_search(supernet, table, loader, **options)
        else:
            result = soft_penalty_search(
                supernet,
                table,
                loader,
                target_ms=recipe.latency_ms,
                steps=recipe.steps,
                lr=recipe.lr,
                penalty=recipe.penalty,
                tau=recipe.tau,
                seed=recipe.seed,
                progress=args.progress,
            )
    if du.is_main_process():
        found = loop.to_dict(supernet.space) if loop is not None else result.to_dict(supernet.space)
        data = {
            **found,
            "recipe": recipe_to_dict(recipe),
            "supernet": str(args.weights),
            "latency_table": str(args.lut),
            "img_size": recipe.img_size,
        }
        atomic_write_text(args.output, json.dumps(data, indent=1))
        if loop is not None:
            _print_rounds(loop)
        status = "meets" if result.feasible else "EXCEEDS"
        print(f"{result.method}: predicted {result.predicted_ms:.4f} ms {status} the target {recipe.latency_ms} ms")
        if loop is not None:
            _print_loop_outcome(loop, recipe.latency_ms, args.max_rounds)
        print(json.dumps(data["arch_def"]))
        print(f"wrote {args.output}")
    return 0


def _print_rounds(loop) -> None:
    for r in loop.rounds:
        if "unreachable" in r:
            verdict = "above the target" if r["unreachable"] else "within the target: it is the result"
            print(
                f"round {r['round']}: the corrected table puts every network above the target; the lightest "
                f"network measures {r['lightest_measured_ms']:.4f} ms, {verdict}"
            )
            continue
        print(
            f"round {r['round']}: predicted {r['predicted_ms']:.4f} ms (calibration {r['slope']:.4f} * raw + "
            f"{r['intercept']:.4f}), measured {r['measured_ms']:.4f} ms: "
            + ("meets the target" if r["met"] else "misses the target")
        )


def _print_loop_outcome(loop, target_ms: float, max_rounds: int) -> None:
    if loop.met:
        print(f"measured on this device: {loop.measured_ms:.4f} ms, meets the target ({len(loop.rounds)} rounds)")
        return
    why = {
        "max_rounds": f"after {len(loop.rounds)} rounds (--max-rounds {max_rounds}); raise --max-rounds",
        "unreachable": "and the corrected table says no network of the space can meet it on this device",
    }[loop.stopped]
    print(
        f"warning: measured on this device {loop.measured_ms:.4f} ms, ABOVE the target {target_ms} ms "
        f"{why}, or measure the table and search on an idle device",
        file=sys.stderr,
    )


# ---------------------------------------------------------------------------------------------------- children
def extract(args: argparse.Namespace) -> int:
    """``miil hardcore extract``: a child's weights sliced out of the supernet, as a timm ``MobileNetV3``."""
    supernet = load_supernet(args.weights)
    _, info = read_sidecar(args.weights)
    arch = resolve_arch(args.arch, supernet.space)
    child = extract_child(supernet, arch)
    path = save_child(
        child, supernet.space, arch, args.output, classes=info.get("classes"), img_size=info.get("img_size", 224)
    )
    n = sum(p.numel() for p in child.parameters())
    print(f"wrote {path} and {path.with_suffix('.json')}: timm MobileNetV3, {n / 1e6:.3f}M parameters")
    return 0


def convert(args: argparse.Namespace) -> int:
    """``miil hardcore convert SOURCE OUTPUT``: an original checkpoint as ours (weights + sidecar)."""
    space = resolve_space(args.space, image_size=args.img_size)
    arch = resolve_arch(args.arch, space) if args.arch else None
    dst, meta = convert_original_checkpoint(
        args.source, args.output, space=space, to=args.kind, arch=arch, use_ema=args.ema, part=args.part
    )
    what = f"{meta['kind']} ({meta['num_classes']} classes) from the original {meta['source_layout']} layout"
    print(f"wrote {dst} and {dst.with_suffix('.json')}: {what}")
    if meta.get("arch_def") or meta.get("argmax_arch_def"):
        print(json.dumps(meta.get("arch_def") or meta.get("argmax_arch_def")))
    if meta.get("initialised"):
        print(f"{len(meta['initialised'])} tensors are not in the source and keep their initialisation, e.g.")
        print("  " + "\n  ".join(meta["initialised"][:5]))
    return 0
