"""``miil hardcore ...``: the HardCoRe-NAS pipeline from the command line.

Paper: HardCoRe-NAS (arXiv 2102.11646). The steps, in order::

    miil hardcore lut --out lut.json                       # latency table on this device (ms per sample)
    miil hardcore import-lut lut.pkl lut.json              # ... or the original code's table, converted
    miil hardcore calibrate --lut lut.json                 # predicted vs measured random networks
    miil hardcore train-supernet --recipe heaviest_path_imagenet --data-dir train/ --val-dir val/
    miil hardcore train-supernet --recipe multipath_imagenet --init runs/hardcore/heaviest --data-dir train/
    miil hardcore search --supernet runs/hardcore/multipath --lut lut.json --data-dir train/ --latency-ms 40
    miil hardcore extract --supernet runs/hardcore/multipath --arch arch.json --out child.safetensors
    miil hardcore finetune --supernet runs/hardcore/multipath --arch arch.json --data-dir train/ --val-dir val/
    miil hardcore train --arch hardcorenas_a --data-dir train/ --val-dir val/       # from scratch
    miil hardcore validate --checkpoint runs/hardcore/finetune --data-dir val/
    miil hardcore infer --checkpoint runs/hardcore/finetune image.jpg
    miil hardcore convert w_star_076b2ed3.pth w_star.safetensors         # original checkpoints -> ours

Training runs through the core engine, so every training command also runs under ``torchrun``; ``search`` averages
the architecture gradients over the processes.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch.utils.data import DataLoader, DistributedSampler

from miil.core import distributed as du
from miil.core.cli import HelpFormatter
from miil.core.cli_args import parse_bool
from miil.core.config import add_dataclass_arguments, dataclass_from_args, pick_recipe, recipe_to_dict
from miil.core.data import skip_unreadable_collate
from miil.core.errors import UserError
from miil.core.metrics import AccuracyMeter

from .builder import build_child, resolve_architecture
from .calibrate import calibrate_latency
from .checkpoints import load_child, load_search_result, load_supernet, read_sidecar, save_child
from .closed_loop import closed_loop_search
from .convert import convert_original_checkpoint
from .data import eval_transform, held_out_split, image_folder, image_sets
from .extract import extract_child
from .latency import BACKENDS, STATISTICS, TimingConfig, measure_latency_table
from .latency_table import LatencyTable, LatencyTableError
from .original_lut import import_original_lut
from .recipes import CHILD_RECIPES, SEARCH_RECIPES, SUPERNET_RECIPES, ChildRecipe, SearchRecipe, SupernetRecipe
from .search import hardcore_search, soft_penalty_search
from .search_space import SPACES, Architecture, SearchSpace, resolve_space
from .supernet import HardCoReSupernet
from .training import (
    ChildDistillationStep,
    MultipathDistillationStep,
    SupervisedStep,
    frozen_heaviest_teacher,
    make_trainer,
    order_channels,
    spread_heaviest_path,
)

__all__ = ["add_child_commands", "register", "with_run_img_size"]


# ---------------------------------------------------------------------------------------------------- helpers
def _add_recipe(parser: argparse.ArgumentParser, recipes: dict, default: str, cls: type) -> None:
    parser.add_argument("--recipe", default=default, choices=sorted(recipes), help="paper setting (recipes.py)")
    group = "recipe overrides (default: the value of --recipe)"
    add_dataclass_arguments(parser, cls, group=group, only_if_given=True)


def _recipe(args: argparse.Namespace, recipes: dict):
    return dataclass_from_args(pick_recipe(recipes, args.recipe), args)


def with_run_img_size(recipe, args: argparse.Namespace, info: Mapping[str, Any], run: str):
    """``recipe`` with the image size of the trained run ``info`` came from, unless ``--img-size`` was given.

    A supernet trained at 16 px is searched, estimated and fine-tuned at 16 px; the recipe's own size (224 px for
    the ImageNet recipes) applies only when the run does not record one.

    Args:
        recipe: The resolved recipe (has ``img_size``).
        args: The parsed command line (recipe fields are present only when given).
        info: The run's sidecar ``run_info``.
        run: The run's path, for the message.
    """
    if "img_size" in vars(args) or "img_size" not in info:
        return recipe
    size = int(info["img_size"])
    if size != recipe.img_size and du.is_main_process():
        print(f"image size {size} px, as {run} was trained (--img-size overrides)")
    return dataclasses.replace(recipe, img_size=size)


def _space_arg(parser: argparse.ArgumentParser, default: str | None = "hardcorenas") -> None:
    parser.add_argument(
        "--space", default=default, help=f"search space: {', '.join(sorted(SPACES))} or a JSON file of one"
    )


def _loader(dataset, batch_size: int, *, shuffle: bool, seed: int = 0) -> DataLoader:
    if du.get_world_size() > 1:
        sampler = DistributedSampler(dataset, shuffle=shuffle, seed=seed)
        return DataLoader(dataset, batch_size=batch_size, sampler=sampler, collate_fn=skip_unreadable_collate)
    gen = torch.Generator().manual_seed(seed)
    return DataLoader(
        dataset, batch_size=batch_size, shuffle=shuffle, generator=gen, collate_fn=skip_unreadable_collate
    )


def _arch(spec: str, space: SearchSpace) -> Architecture:
    """An architecture from a search/extract JSON file, a published name, or arch_def text."""
    path = Path(spec)
    if path.suffix == ".json" and path.is_file():
        return load_search_result(path, space)
    return resolve_architecture(space, spec)


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2))


# ---------------------------------------------------------------------------------------------------- lut
def _lut(args: argparse.Namespace) -> int:
    space = resolve_space(args.space, image_size=args.image_size)
    timing = TimingConfig(
        backend=args.backend,
        threads=args.threads,
        batch_size=args.batch_size,
        warmup=args.warmup,
        repeats=args.repeats,
        device=args.device,
        statistic=args.statistic,
        clock=args.clock,
    )
    table = measure_latency_table(space, timing, num_classes=args.num_classes, progress=not args.no_progress)
    path = table.save(args.out)
    lightest, heaviest = table.latency(table.lightest()), table.latency(table.heaviest())
    print(f"wrote {path}: {table.block_ms.size} block entries + stem/head, ms per sample on {table.device['cpu']}")
    print(f"fixed frame {table.t_fixed:.4f} ms; lightest network {lightest:.4f} ms; heaviest {heaviest:.4f} ms")
    return 0


def _import_lut(args: argparse.Namespace) -> int:
    space = resolve_space(args.space, image_size=args.img_size)
    try:
        table = import_original_lut(args.original, space, gpu_batch_size=args.gpu_batch_size)
    except LatencyTableError as err:
        raise UserError(str(err)) from None
    path = table.save(args.output)
    lightest, heaviest = table.latency(table.lightest()), table.latency(table.heaviest())
    ignored = table.device["ignored_entries"]
    print(f"wrote {path}: {table.block_ms.size} block entries from {args.original} ({ignored} not in the space)")
    print(f"fixed frame {table.t_fixed:.4f} ms; lightest network {lightest:.4f} ms; heaviest {heaviest:.4f} ms")
    return 0


def _calibrate(args: argparse.Namespace) -> int:
    table = LatencyTable.load(args.lut)
    report = calibrate_latency(table, num_archs=args.num_archs, seed=args.seed, progress=not args.no_progress)
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
    if args.out:
        Path(args.out).write_text(
            json.dumps({"slope": report.slope, "intercept": report.intercept, "rows": report.rows})
        )
    return 0


# ---------------------------------------------------------------------------------------------------- supernet
def _image_sets(args: argparse.Namespace, recipe, *, train_percent: float | None, seed: int):
    return image_sets(recipe, args.data_dir, args.val_dir, train_percent=train_percent, seed=seed)


def _train_supernet(args: argparse.Namespace) -> int:
    recipe: SupernetRecipe = _recipe(args, SUPERNET_RECIPES)
    if recipe.stage not in ("heaviest", "multipath"):
        raise ValueError(f"supernet stage must be 'heaviest' or 'multipath', got {recipe.stage!r}")
    if recipe.stage == "multipath" and args.init:
        recipe = with_run_img_size(recipe, args, read_sidecar(args.init)[1], args.init)
    train, val, classes = _image_sets(args, recipe, train_percent=args.train_percent, seed=args.split_seed)
    if recipe.stage == "heaviest":
        space = resolve_space(recipe.space, image_size=recipe.img_size)
        supernet = HardCoReSupernet(
            space, num_classes=len(classes), drop_rate=recipe.drop_rate, drop_path_rate=recipe.drop_path_rate
        )
        supernet.set_sampling(space.heaviest())
        step = SupervisedStep(label_smoothing=recipe.label_smoothing)
    else:
        if not args.init:
            raise ValueError("the multipath stage needs --init RUN_DIR: the heaviest-path supernet run")
        supernet = load_supernet(args.init)
        space = supernet.space
        if supernet.num_classes != len(classes):
            raise ValueError(f"{args.init} has {supernet.num_classes} classes, {args.data_dir} has {len(classes)}")
        teacher = frozen_heaviest_teacher(supernet)
        spread_heaviest_path(supernet)
        plain = image_folder(args.data_dir, eval_transform(recipe.img_size))
        part, _ = held_out_split(plain, train_percent=args.train_percent, seed=args.split_seed)
        order_channels(supernet, part, fraction=recipe.taylor_fraction, batch_size=recipe.batch_size, seed=recipe.seed)
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
    if du.is_main_process():
        print(
            f"supernet ({recipe.stage}) saved in {result.out_dir}; best {result.best_metric} "
            f"at epoch {result.best_epoch}"
        )
    return 0


# ---------------------------------------------------------------------------------------------------- search
def _search(args: argparse.Namespace) -> int:
    recipe: SearchRecipe = _recipe(args, SEARCH_RECIPES)
    device = du.init_distributed(args.device)
    supernet = load_supernet(args.supernet).to(device)
    table = LatencyTable.load(args.lut)
    _, info = read_sidecar(args.supernet)
    recipe = with_run_img_size(recipe, args, info, args.supernet)
    plain = image_folder(args.data_dir, eval_transform(recipe.img_size))
    _, search_part = held_out_split(
        plain, train_percent=info.get("train_percent", recipe.train_percent), seed=info.get("split_seed", 0)
    )
    loader = _loader(search_part, recipe.batch_size, shuffle=True, seed=recipe.seed)
    progress = not args.no_progress
    if args.closed_loop and recipe.method != "hardcore":
        raise UserError(f"--closed-loop searches with --method hardcore, not {recipe.method!r}")
    if args.max_rounds < 1:
        raise UserError(f"--max-rounds must be >= 1, got {args.max_rounds}")
    loop = None
    if recipe.method == "hardcore":
        options = dict(
            target_ms=recipe.latency_ms,
            steps=recipe.steps,
            momentum=recipe.momentum,
            gamma=recipe.gamma,
            gamma_schedule=recipe.gamma_schedule,
            seed=recipe.seed,
            progress=progress,
        )
        if args.closed_loop:
            loop = closed_loop_search(supernet, table, loader, max_rounds=args.max_rounds, **options)
            result = loop.result
        else:
            result = hardcore_search(supernet, table, loader, **options)
    elif recipe.method == "soft_penalty":
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
            progress=progress,
        )
    else:
        raise ValueError(f"search method must be 'hardcore' or 'soft_penalty', got {recipe.method!r}")
    if du.is_main_process():
        found = loop.to_dict(supernet.space) if loop is not None else result.to_dict(supernet.space)
        data = {**found, "recipe": recipe_to_dict(recipe), "latency_table": str(args.lut)}
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(data, indent=1))
        if loop is not None:
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
        status = "meets" if result.feasible else "EXCEEDS"
        print(f"{result.method}: predicted {result.predicted_ms:.4f} ms {status} the target {recipe.latency_ms} ms")
        if loop is not None and loop.met:
            print(f"measured on this device: {loop.measured_ms:.4f} ms, meets the target ({len(loop.rounds)} rounds)")
        elif loop is not None:
            why = {
                "max_rounds": f"after {len(loop.rounds)} rounds (--max-rounds {args.max_rounds}); raise --max-rounds",
                "unreachable": "and the corrected table says no network of the space can meet it on this device",
            }[loop.stopped]
            print(
                f"warning: measured on this device {loop.measured_ms:.4f} ms, ABOVE the target {recipe.latency_ms} ms "
                f"{why}, or measure the table and search on an idle device",
                file=sys.stderr,
            )
        print(json.dumps(data["arch_def"]))
        print(f"wrote {args.out}")
    return 0


# ---------------------------------------------------------------------------------------------------- children
def _extract(args: argparse.Namespace) -> int:
    supernet = load_supernet(args.supernet)
    _, info = read_sidecar(args.supernet)
    arch = _arch(args.arch, supernet.space)
    child = extract_child(supernet, arch)
    path = save_child(
        child, supernet.space, arch, args.out, classes=info.get("classes"), img_size=info.get("img_size", 224)
    )
    n = sum(p.numel() for p in child.parameters())
    print(f"wrote {path} and {path.with_suffix('.json')}: timm MobileNetV3, {n / 1e6:.3f}M parameters")
    return 0


def _child_run_info(space: SearchSpace, arch: Architecture, classes: list[str], recipe, name: str) -> dict:
    return {
        "kind": "child",
        "recipe": name,
        "space": space.to_dict(),
        "arch_def": space.arch_def(arch),
        "num_classes": len(classes),
        "classes": classes,
        "img_size": recipe.img_size,
    }


def _finetune(args: argparse.Namespace) -> int:
    recipe: ChildRecipe = _recipe(args, CHILD_RECIPES)
    supernet = load_supernet(args.supernet)
    recipe = with_run_img_size(recipe, args, read_sidecar(args.supernet)[1], args.supernet)
    arch = _arch(args.arch, supernet.space)
    train, val, classes = _image_sets(args, recipe, train_percent=None, seed=0)
    if len(classes) != supernet.num_classes:
        raise ValueError(f"{args.supernet} has {supernet.num_classes} classes, {args.data_dir} has {len(classes)}")
    teacher_net = load_supernet(args.teacher) if args.teacher else supernet
    teacher = frozen_heaviest_teacher(teacher_net) if recipe.kd_weight > 0 else None
    child = extract_child(supernet, arch, drop_rate=recipe.drop_rate, drop_path_rate=recipe.drop_path_rate)
    step = ChildDistillationStep(
        teacher, kd_weight=recipe.kd_weight, temperature=recipe.kd_temperature, label_smoothing=recipe.label_smoothing
    )
    info = _child_run_info(supernet.space, arch, classes, recipe, args.recipe)
    result = make_trainer(child, train, recipe, step_fn=step, val_dataset=val, run_info=info).fit()
    if du.is_main_process():
        print(f"fine-tuned child saved in {result.out_dir}; best {result.best_metric} at epoch {result.best_epoch}")
    return 0


def _train(args: argparse.Namespace) -> int:
    recipe: ChildRecipe = _recipe(args, CHILD_RECIPES)
    space = resolve_space(recipe.space, image_size=recipe.img_size)
    arch = _arch(args.arch, space)
    train, val, classes = _image_sets(args, recipe, train_percent=None, seed=0)
    model = build_child(
        space, arch, num_classes=len(classes), drop_rate=recipe.drop_rate, drop_path_rate=recipe.drop_path_rate
    )
    info = _child_run_info(space, arch, classes, recipe, args.recipe)
    step = SupervisedStep(label_smoothing=recipe.label_smoothing)
    result = make_trainer(model, train, recipe, step_fn=step, val_dataset=val, run_info=info).fit()
    if du.is_main_process():
        print(f"child trained from scratch in {result.out_dir}; best {result.best_metric} at epoch {result.best_epoch}")
    return 0


def _validate(args: argparse.Namespace) -> int:
    device = du.init_distributed(args.device)
    model, info = load_child(args.checkpoint)
    model = model.to(device).eval()
    img_size = args.img_size or int(info.get("img_size", 224))
    dataset = image_folder(args.data_dir, eval_transform(img_size))
    if info.get("classes") and dataset.classes != list(info["classes"]):
        raise ValueError(f"class folders of {args.data_dir} differ from the classes stored with {args.checkpoint}")
    meter = AccuracyMeter(topk=(1, 5))
    meter.reset()
    with torch.no_grad():
        for batch in _loader(dataset, args.batch_size, shuffle=False):
            if batch is None:
                continue
            meter.update(model(batch[0].to(device)).float(), batch[1].to(device))
    metrics = meter.compute()
    if du.is_main_process():
        _print_json({"checkpoint": str(args.checkpoint), "images": len(dataset), **metrics})
    return 0


def _infer(args: argparse.Namespace) -> int:
    model, info = load_child(args.checkpoint)
    model.eval()
    img_size = args.img_size or int(info.get("img_size", 224))
    transform = eval_transform(img_size)
    classes = info.get("classes") or [str(i) for i in range(model.num_classes)]
    k = min(args.top_k, len(classes))
    for name in args.images:
        path = Path(name)
        try:
            with Image.open(path) as im:
                x = transform(im.convert("RGB"))[None]
        except (OSError, ValueError) as err:
            print(f"cannot read image {path}: {err}", file=sys.stderr)
            return 1
        with torch.no_grad():
            prob = model(x).softmax(-1)[0]
        top = prob.topk(k)
        pairs = [[classes[i], round(float(p), 6)] for p, i in zip(top.values, top.indices)]
        print(json.dumps({"image": str(path), "top": pairs}))
    return 0


def _convert(args: argparse.Namespace) -> int:
    space = resolve_space(args.space, image_size=args.img_size)
    arch = _arch(args.arch, space) if args.arch else None
    dst, meta = convert_original_checkpoint(
        args.src, args.dst, space=space, to=args.to, arch=arch, use_ema=args.ema, part=args.part
    )
    what = f"{meta['kind']} ({meta['num_classes']} classes) from the original {meta['source_layout']} layout"
    print(f"wrote {dst} and {dst.with_suffix('.json')}: {what}")
    if meta.get("arch_def") or meta.get("argmax_arch_def"):
        print(json.dumps(meta.get("arch_def") or meta.get("argmax_arch_def")))
    if meta.get("initialised"):
        print(f"{len(meta['initialised'])} tensors are not in the source and keep their initialisation, e.g.")
        print("  " + "\n  ".join(meta["initialised"][:5]))
    return 0


# ---------------------------------------------------------------------------------------------------- register
def add_child_commands(sub: Any, *, names: Mapping[str, str] | None = None) -> None:
    """Add the commands that act on an extracted child network to a subparsers action.

    They are ``finetune`` (KD from the heaviest path), ``train`` (from scratch), ``validate`` and ``infer``; packages
    that search the same space (``miil iqnas``) reuse them.

    Args:
        sub: What ``ArgumentParser.add_subparsers`` returned.
        names: Which commands to add and under which name (``{"finetune": "train"}`` adds only ``finetune``, called
            ``train``); all four under their own names when not given.
    """
    names = dict(names) if names is not None else {n: n for n in ("finetune", "train", "validate", "infer")}
    unknown = sorted(set(names) - {"finetune", "train", "validate", "infer"})
    if unknown:
        raise ValueError(f"unknown child commands {unknown}; known: finetune, train, validate, infer")
    checkpoint_help = "child .safetensors (with .json) or a finetune/train run"
    if "finetune" in names:
        p = sub.add_parser(
            names["finetune"], help="fine-tune an extracted child with KD", formatter_class=HelpFormatter
        )
        p.add_argument("--supernet", required=True, help="supernet run directory (weights to inherit)")
        teacher_help = "supernet run whose heaviest path teaches (default: --supernet)"
        p.add_argument("--teacher", default=None, help=teacher_help)
        p.add_argument("--arch", required=True, help="search output JSON, a published name, or arch_def text")
        p.add_argument("--data-dir", required=True, help="training images: DIR/<class>/<image>")
        p.add_argument("--val-dir", default=None, help="validation images")
        _add_recipe(p, CHILD_RECIPES, "finetune_imagenet", ChildRecipe)
        p.set_defaults(func=_finetune)

    if "train" in names:
        p = sub.add_parser(names["train"], help="train a chosen child from scratch", formatter_class=HelpFormatter)
        p.add_argument(
            "--arch", required=True, help="search output JSON, a published name (hardcorenas_a), or arch_def"
        )
        p.add_argument("--data-dir", required=True, help="training images: DIR/<class>/<image>")
        p.add_argument("--val-dir", default=None, help="validation images")
        _add_recipe(p, CHILD_RECIPES, "scratch_imagenet", ChildRecipe)
        p.set_defaults(func=_train)

    if "validate" in names:
        p = sub.add_parser(
            names["validate"], help="top-1 / top-5 of a child on an image folder", formatter_class=HelpFormatter
        )
        p.add_argument("--checkpoint", required=True, help=checkpoint_help)
        p.add_argument("--data-dir", required=True, help="validation images: DIR/<class>/<image>")
        p.add_argument("--img-size", type=int, default=None, help="resolution (default: stored with the checkpoint)")
        p.add_argument("--batch-size", type=int, default=64, help="batch size")
        p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
        p.set_defaults(func=_validate)

    if "infer" in names:
        p = sub.add_parser(names["infer"], help="classify images with a child", formatter_class=HelpFormatter)
        p.add_argument("--checkpoint", required=True, help=checkpoint_help)
        p.add_argument("images", nargs="+", help="image files")
        p.add_argument("--img-size", type=int, default=None, help="resolution (default: stored with the checkpoint)")
        p.add_argument("--top-k", type=int, default=5, help="classes to print per image")
        p.set_defaults(func=_infer)


def register(parser: argparse.ArgumentParser) -> None:
    """Add the ``miil hardcore`` subcommands to ``parser``."""
    parser.description = "HardCoRe-NAS (arXiv 2102.11646): latency tables, supernet, hard-constrained search."
    sub = parser.add_subparsers(dest="subcommand", metavar="SUBCOMMAND")

    p = sub.add_parser(
        "lut",
        aliases=["measure-latency"],
        help="measure the latency table on this device",
        formatter_class=HelpFormatter,
    )
    _space_arg(p)
    p.add_argument("--image-size", type=int, default=None, help="input resolution (default: the space's)")
    p.add_argument("--backend", default="cpu", choices=BACKENDS, help="cpu threads, CUDA events, or ONNX Runtime")
    p.add_argument("--threads", type=int, default=1, help="CPU threads (cpu / onnx backends)")
    p.add_argument("--batch-size", type=int, default=1, help="samples per timed forward (results are per sample)")
    p.add_argument("--warmup", type=int, default=10, help="untimed forward passes")
    p.add_argument("--repeats", type=int, default=50, help="timed forward passes")
    p.add_argument("--statistic", default="median", choices=sorted(STATISTICS), help="statistic over the repeats")
    p.add_argument(
        "--clock", default="wall", choices=("wall", "thread_cpu"), help="thread_cpu ignores preemption (1 CPU thread)"
    )
    p.add_argument("--device", default="cuda", help="CUDA device for --backend cuda")
    p.add_argument("--num-classes", type=int, default=1000, help="classifier outputs of the timed head")
    p.add_argument("--out", default="latency_table.json", help="output JSON file")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=_lut)

    p = sub.add_parser(
        "import-lut",
        help="convert the original code's latency table (lut.pkl, seconds) into ours (JSON, ms per sample)",
        formatter_class=HelpFormatter,
    )
    p.add_argument("original", help="the original's lut.pkl (read without unpickling code)")
    p.add_argument("output", help="output latency table JSON")
    _space_arg(p)
    p.add_argument("--img-size", type=int, default=None, help="resolution the table was measured at (the space's)")
    p.add_argument(
        "--gpu-batch-size",
        type=int,
        default=1,
        help="--lut_measure_batch_size of an original table measured on its gpu target (block entries per batch)",
    )
    p.set_defaults(func=_import_lut)

    p = sub.add_parser(
        "calibrate", help="predicted vs measured latency of random networks", formatter_class=HelpFormatter
    )
    p.add_argument("--lut", required=True, help="latency table JSON")
    p.add_argument("--num-archs", type=int, default=20, help="networks to measure (incl. lightest and heaviest)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random networks")
    p.add_argument("--update", action="store_true", help="store the fitted slope/intercept in the table")
    p.add_argument("--out", default=None, help="also write the measurements as JSON")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=_calibrate)

    p = sub.add_parser(
        "train-supernet", help="train the supernet (heaviest path / multipath)", formatter_class=HelpFormatter
    )
    p.add_argument("--data-dir", required=True, help="training images: DIR/<class>/<image>")
    p.add_argument("--val-dir", default=None, help="validation images: DIR/<class>/<image>")
    p.add_argument("--init", default=None, help="multipath: the heaviest-path run directory")
    p.add_argument("--train-percent", type=float, default=80.0, help="percent of --data-dir for the weights")
    p.add_argument("--split-seed", type=int, default=0, help="seed of the weights / search split")
    _add_recipe(p, SUPERNET_RECIPES, "heaviest_path_imagenet", SupernetRecipe)
    p.set_defaults(func=_train_supernet)

    p = sub.add_parser("search", help="HardCoRe search under a latency target", formatter_class=HelpFormatter)
    p.add_argument("--supernet", required=True, help="multipath supernet run directory")
    p.add_argument("--lut", required=True, help="latency table JSON of the target device")
    p.add_argument("--data-dir", required=True, help="the supernet's training images (the held-out part is used)")
    p.add_argument("--out", default="arch.json", help="output JSON (arch_def, predicted latency, history)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument(
        "--closed-loop",
        type=parse_bool,
        nargs="?",
        const=True,
        default=False,
        metavar="BOOL",
        help="measure the chosen network on this device (the table's protocol); on a miss, correct the table's "
        "calibration on the measured networks and search again",
    )
    p.add_argument("--max-rounds", type=int, default=3, help="--closed-loop: searches at most, the first included")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    _add_recipe(p, SEARCH_RECIPES, "hardcorenas_b", SearchRecipe)
    p.set_defaults(func=_search)

    p = sub.add_parser(
        "extract", help="slice a child out of the supernet (timm MobileNetV3)", formatter_class=HelpFormatter
    )
    p.add_argument("--supernet", required=True, help="supernet run directory")
    p.add_argument("--arch", required=True, help="search output JSON, a published name, or arch_def text")
    p.add_argument("--out", default="child.safetensors", help="output weights (+ .json sidecar)")
    p.set_defaults(func=_extract)

    add_child_commands(sub)

    p = sub.add_parser(
        "convert",
        help="convert a checkpoint of the original HardCoReNAS code (w_heaviest, w_star, children)",
        formatter_class=HelpFormatter,
    )
    p.add_argument("src", help="original checkpoint (.pth / .pth.tar, loaded without unpickling code)")
    p.add_argument("dst", help="output .safetensors (a .json sidecar is written beside it)")
    _space_arg(p)
    p.add_argument(
        "--img-size", type=int, default=None, help="resolution stored with the result; the space's if not given"
    )
    p.add_argument(
        "--to",
        default="auto",
        choices=("auto", "supernet", "child"),
        help="auto: the source's layout; supernet: embed a heaviest network; child: slice a supernet to --arch",
    )
    p.add_argument(
        "--arch", default=None, help="child architecture (search JSON, published name, arch_def); inferred if not given"
    )
    p.add_argument("--ema", action="store_true", help="take state_dict_ema of a training output")
    p.add_argument(
        "--part",
        default=None,
        choices=("student", "teacher"),
        help="part of a multipath-stage output; student if not given",
    )
    p.set_defaults(func=_convert)
