"""The verbs that act on a child network: ``finetune``, ``train``, ``validate`` and ``infer`` (``miil hardcore``, and
``miil iqnas`` under the names ``train``, ``validate``, ``infer``).

Paper: HardCoRe-NAS (arXiv 2102.11646), section 3.5 (fine-tuning the extracted child with KD from the heaviest path)
and section 4 (training a chosen network from scratch). Validation and inference run through the core
:func:`miil.core.evaluate.evaluate` in the precision the run validated in, so ``validate`` reports the metric that
picked ``best.safetensors``; unreadable inputs are skipped with a warning and listed (exit status 3), or fatal with
``--strict``. Imported only when one of these verbs runs (:mod:`.cli` builds the parsers).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import torch.nn as nn

from miil.core import distributed as du
from miil.core.cli_args import print_plot_hint
from miil.core.errors import UserError
from miil.core.evaluate import PredictionMeter, evaluate, exit_status, print_skipped_summary, write_json
from miil.core.metrics import AccuracyMeter

from .builder import build_child
from .checkpoints import load_child, load_supernet, read_search_result, read_sidecar
from .cli_support import one_line_warnings, run_precision, split_folder, with_run_img_size
from .commands import ARCH_FILE_SUFFIXES, check_classes, note_no_validation, recipe_from_args, resolve_arch
from .data import ImageFiles, eval_transform, image_folder, image_sets
from .extract import extract_child
from .recipes import CHILD_RECIPES, ChildRecipe
from .search_space import Architecture, SearchSpace, resolve_space
from .training import ChildDistillationStep, SupervisedStep, frozen_heaviest_teacher, make_trainer

__all__ = ["child_run_info", "finetune", "infer", "train", "train_space", "validate"]


def _prog(args: argparse.Namespace, verb: str) -> str:
    return getattr(args, "_miil_prog", f"miil hardcore {verb}")  # "miil iqnas train" when iqnas runs it


def child_run_info(space: SearchSpace, arch: Architecture, classes: list[str], recipe, name: str) -> dict:
    """The ``run_info`` of a child run: what ``validate`` / ``infer`` rebuild the network from."""
    return {
        "kind": "child",
        "recipe": name,
        "space": space.to_dict(),
        "arch_def": space.arch_def(arch),
        "num_classes": len(classes),
        "classes": classes,
        "img_size": recipe.img_size,
    }


def train_space(args: argparse.Namespace, recipe: ChildRecipe) -> tuple[SearchSpace, Architecture, ChildRecipe]:
    """The space, architecture and recipe of ``train --arch``.

    A search result records the space it was searched in (and its image size): that space is used, so a network
    searched in a reduced space trains without repeating ``--space``; ``--img-size`` still overrides the size, and a
    ``--space`` that differs from the recorded one is refused. A published name or ``arch_def`` text uses the recipe's
    ``--space``.
    """
    path = Path(args.arch)
    if path.exists() or path.suffix.lower() in ARCH_FILE_SUFFIXES:
        if not path.exists():
            raise UserError(f"--arch {args.arch}: no such file (a search result JSON, a published name or arch_def)")
        arch_def, recorded = read_search_result(path)
        if recorded is not None:
            if "space" in vars(args) and not resolve_space(recipe.space).same_networks(recorded):
                raise UserError(
                    f"--space {recipe.space} is not the search space {args.arch} was searched in; drop --space to "
                    "use the recorded one"
                )
            recipe = with_run_img_size(recipe, args, {"img_size": recorded.image_size}, args.arch)
            space = dataclasses.replace(recorded, image_size=recipe.img_size)
            recipe = dataclasses.replace(recipe, space="recorded in " + str(args.arch))
            return space, space.parse_arch_def(arch_def), recipe
    space = resolve_space(recipe.space, image_size=recipe.img_size)
    return space, resolve_arch(args.arch, space), recipe


def _finish_training(args: argparse.Namespace, verb: str, result, what: str) -> int:
    print_skipped_summary(result.skipped, prog=_prog(args, verb))
    if du.is_main_process():
        print(f"{what} in {result.out_dir}; best {result.best_metric} at epoch {result.best_epoch}")
    print_plot_hint(result.out_dir)
    return exit_status(result.skipped)


# ---------------------------------------------------------------------------------------------------- training
def finetune(args: argparse.Namespace) -> int:
    """Fine-tune a child sliced from the supernet ``--init-checkpoint``, with KD from a heaviest path."""
    recipe: ChildRecipe = recipe_from_args(args, CHILD_RECIPES)
    init = args.init_checkpoint
    supernet = load_supernet(init)
    _, info = read_sidecar(init)
    recipe = with_run_img_size(recipe, args, info, init)
    arch = resolve_arch(args.arch, supernet.space)
    train_dir = split_folder(args, "train")
    val_dir = split_folder(args, "val", required=False)
    note_no_validation(args, val_dir)
    with one_line_warnings():
        train, val, classes = image_sets(recipe, train_dir, val_dir, strict=args.strict)
        check_classes(init, info, train_dir, classes, supernet.num_classes)
        teacher = None
        if recipe.kd_weight > 0:
            teacher_net = supernet
            if args.teacher_checkpoint:
                teacher_net = load_supernet(args.teacher_checkpoint)
                check_classes(
                    args.teacher_checkpoint,
                    read_sidecar(args.teacher_checkpoint)[1],
                    train_dir,
                    classes,
                    teacher_net.num_classes,
                )
            teacher = frozen_heaviest_teacher(teacher_net)
        child = extract_child(supernet, arch, drop_rate=recipe.drop_rate, drop_path_rate=recipe.drop_path_rate)
        step = ChildDistillationStep(
            teacher,
            kd_weight=recipe.kd_weight,
            temperature=recipe.kd_temperature,
            label_smoothing=recipe.label_smoothing,
        )
        run_info = child_run_info(supernet.space, arch, classes, recipe, args.recipe)
        result = make_trainer(child, train, recipe, step_fn=step, val_dataset=val, run_info=run_info).fit()
    return _finish_training(args, "finetune", result, "fine-tuned child saved")


def train(args: argparse.Namespace) -> int:
    """Train a chosen child from scratch (``--arch``: a search result, a published name or ``arch_def``)."""
    recipe: ChildRecipe = recipe_from_args(args, CHILD_RECIPES)
    space, arch, recipe = train_space(args, recipe)
    train_dir = split_folder(args, "train")
    val_dir = split_folder(args, "val", required=False)
    note_no_validation(args, val_dir)
    with one_line_warnings():
        train_set, val, classes = image_sets(recipe, train_dir, val_dir, strict=args.strict)
        model = build_child(
            space, arch, num_classes=len(classes), drop_rate=recipe.drop_rate, drop_path_rate=recipe.drop_path_rate
        )
        run_info = child_run_info(space, arch, classes, recipe, args.recipe)
        step = SupervisedStep(label_smoothing=recipe.label_smoothing)
        result = make_trainer(model, train_set, recipe, step_fn=step, val_dataset=val, run_info=run_info).fit()
    return _finish_training(args, "train", result, "child trained from scratch")


# ---------------------------------------------------------------------------------------------------- evaluation
def validate(args: argparse.Namespace) -> int:
    """Top-1 / top-5 (and loss) of a child on the validation split, in the run's precision unless ``--amp``."""
    device = du.init_distributed(args.device)
    model, info = load_child(args.weights)
    model = model.to(device)
    img_size = args.img_size or int(info.get("img_size", 224))
    precision = run_precision(args.amp, info.get("eval_precision"), device.type)
    val_dir = split_folder(args, "val")
    with one_line_warnings():
        dataset = image_folder(val_dir, eval_transform(img_size), strict=args.strict)
        check_classes(args.weights, info, val_dir, dataset.classes, model.num_classes)
        report = evaluate(
            model,
            dataset,
            meter=AccuracyMeter(topk=(1, 5)),
            loss_fn=nn.CrossEntropyLoss(),
            device=device,
            precision=precision,
            batch_size=args.batch_size,
            num_workers=args.num_workers,
            progress=args.progress,
            desc="validate",
        )
    print_skipped_summary(report.skipped, prog=_prog(args, "validate"))
    if du.is_main_process():
        shown = " ".join(f"{k} {v:.4f}" for k, v in report.metrics.items())
        print(f"{args.weights} on {val_dir}: {shown} ({report.samples} images, {report.precision})")
        if args.json:
            write_json(args.json, {"weights": str(args.weights), "data": str(val_dir), **report.as_dict()})
    return exit_status(report.skipped)


def _softmax_eval(model: nn.Module, batch) -> tuple:
    return model(batch[0]).float().softmax(-1), batch[1]


def infer(args: argparse.Namespace) -> int:
    """Top-k classes of each input image (one JSON line per readable input)."""
    device = du.init_distributed(args.device)
    model, info = load_child(args.weights)
    model = model.to(device)
    img_size = args.img_size or int(info.get("img_size", 224))
    precision = run_precision(args.amp, info.get("eval_precision"), device.type)
    classes = info.get("classes") or [str(i) for i in range(model.num_classes)]
    if args.top_k < 1:
        raise UserError(f"--top-k must be >= 1, got {args.top_k}")
    k = min(args.top_k, len(classes))
    files = ImageFiles(args.inputs, eval_transform(img_size), strict=args.strict)
    meter = PredictionMeter()
    with one_line_warnings():
        report = evaluate(
            model,
            files,
            meter=meter,
            eval_fn=_softmax_eval,
            device=device,
            precision=precision,
            batch_size=args.batch_size,
            num_workers=args.num_workers,
            progress=args.progress,
            desc="infer",
        )
    probs, index = meter.predictions()
    print_skipped_summary(report.skipped, prog=_prog(args, "infer"))
    if du.is_main_process():
        predictions = []
        for row, i in zip(probs, index.tolist()):
            top = row.topk(k)
            pairs = [[classes[c], round(float(p), 6)] for p, c in zip(top.values, top.indices)]
            predictions.append({"image": files.paths[i], "top": pairs})
            print(json.dumps(predictions[-1]))
        if args.json:
            write_json(
                args.json,
                {"weights": str(args.weights), "predictions": predictions, **report.as_dict()},
            )
    return exit_status(report.skipped)
