"""``miil usi ...``: train any timm backbone with the USI recipe, validate, infer, convert the original checkpoints,
precompute teacher logits, and compare models on the speed-accuracy plane.

Paper: USI (arXiv 2204.03475). Examples::

    miil usi recipes
    miil usi train --data-root /data/imagenet --model convnext_small --teacher-checkpoint teacher.safetensors
    torchrun --nproc_per_node=8 -m miil.core.cli usi train --recipe usi-levit-384 --data-root /data/imagenet
    miil usi validate --weights runs/usi --data-root /data/imagenet --json val.json
    miil usi infer --weights runs/usi photo.jpg photos/
    miil usi convert tresnet_l_v2_83_9.pth teacher.safetensors --model tresnet_v2_l
    miil usi precompute-logits --data-root /data/imagenet --teacher-checkpoint t.safetensors --output logits.npy
    miil usi pareto --models resnet50 mobilenetv3_large_100 levit_384 --paper-accuracies --device cuda

This module imports no torch: each command imports what it needs when it runs.
"""

from __future__ import annotations

import argparse
import csv
import io
from pathlib import Path

from miil.core import cli_args as ca
from miil.core.cli import HelpFormatter
from miil.core.config import add_dataclass_arguments, dataclass_from_args, pick_recipe
from miil.core.errors import UserError

from .layout import DATA_FORMATS, split_folder
from .recipes import DEFAULT_TEACHER, PAPER_RESULTS, RECIPES, USI

__all__ = ["add_model_source", "infer_command", "register", "validate_command"]

_PROG = "miil usi"


def _read_classes(path: str | None) -> list[str] | None:
    if path is None:
        return None
    from miil.core.io import load_file

    names = [line.strip() for line in str(load_file(path, what="class list")).splitlines() if line.strip()]
    if not names:
        raise UserError(f"--classes {path} lists no class names (one per line)")
    return names


# --------------------------------------------------------------------------------------------------- train


def _cmd_train(args: argparse.Namespace) -> int:
    from miil.core import distributed as du
    from miil.core.evaluate import exit_status, print_skipped_summary

    from .train import train_usi

    cfg = dataclass_from_args(pick_recipe(RECIPES, args.recipe), args)
    train_dir = split_folder(args.data_root, args.train_split, default="train", flag="--train-split")
    val_dir = split_folder(
        args.data_root, args.val_split, default="val", flag="--val-split", required=args.val_split is not None
    )
    result = train_usi(cfg, train_dir=train_dir, val_dir=val_dir, recipe_name=args.recipe)
    if du.is_main_process():
        if val_dir is None:
            print(f"{_PROG} train: no {Path(args.data_root) / 'val'} folder: kept the last epoch's weights")
        print(
            f"{_PROG} train: {cfg.model}: best top-1 {result.best_metric:.2f}% ({result.best_source} weights, epoch "
            f"{result.best_epoch + 1}) -> {result.out_dir / 'best.safetensors'}"
        )
    print_skipped_summary(result.skipped, prog=f"{_PROG} train")
    ca.print_plot_hint(result.out_dir)
    return exit_status(result.skipped)


# --------------------------------------------------------------------------------------------------- validate / infer


def _load(args: argparse.Namespace, classes: list[str] | None):
    from .inference import load_classifier

    return load_classifier(
        weights=args.weights,
        model=args.model,
        pretrained=args.pretrained,
        num_classes=args.num_classes,
        classes=classes,
        img_size=args.img_size,
        crop_pct=args.crop_pct,
        model_kwargs=args.model_kwargs,
    )


def _outputs(model) -> int | None:
    value = getattr(model, "num_classes", None)
    return int(value) if isinstance(value, int) else None


def validate_command(args: argparse.Namespace, prog: str = _PROG) -> int:
    """``validate``: top-1 / top-5 and loss of ``--weights`` on the ``--val-split`` folder (see :func:`register`).

    Args:
        args: The parsed options of a parser built with :func:`add_model_source` and the dataset options.
        prog: The command's name in messages (``miil diversity`` reuses this verb).
    """
    from miil.core import distributed as du
    from miil.core.data import ImageFolderDataset
    from miil.core.evaluate import choose_precision, exit_status, print_skipped_summary, write_json

    from .inference import evaluate_classifier, prepare_for_inference

    val_dir = split_folder(args.data_root, args.val_split, default="val", flag="--val-split")
    loaded = _load(args, _read_classes(args.classes))
    classes = loaded.classes or ImageFolderDataset(val_dir).classes
    outputs = _outputs(loaded.model)
    if outputs is not None and outputs != len(classes):
        raise UserError(
            f"the model predicts {outputs} classes but {val_dir} has {len(classes)} class folders; pass --classes "
            "FILE listing the model's classes in output order"
        )
    dataset = ImageFolderDataset(val_dir, transform=loaded.transform(), classes=classes, strict=args.strict)
    device = du.init_distributed(args.device)
    net = prepare_for_inference(loaded, device=device, fuse_bn=args.fuse_bn, channels_last=args.channels_last)
    precision = choose_precision(loaded.precision, amp=args.amp, amp_dtype=args.amp_dtype, device=device)
    report = evaluate_classifier(
        net,
        dataset,
        batch_size=args.batch_size or loaded.eval_batch_size or 64,
        device=device,
        precision=precision,
        num_workers=args.num_workers,
        channels_last=args.channels_last,
        progress=args.progress,
    )
    if report.samples == 0:
        raise UserError(f"no readable image in {val_dir} ({report.skipped_count} unreadable)")
    if du.is_main_process():
        shown = "  ".join(f"{k} {v:.4g}" + ("%" if k.startswith("top") else "") for k, v in report.metrics.items())
        print(f"{prog} validate: {loaded.name} on {val_dir}: {shown} ({report.samples} images, {precision})")
        if args.json:
            write_json(
                args.json,
                {
                    "model": loaded.name,
                    **loaded.info,
                    "data_root": str(args.data_root),
                    "split": str(val_dir),
                    "img_size": loaded.img_size,
                    "crop_pct": loaded.crop_pct,
                    **report.as_dict(),
                },
            )
    print_skipped_summary(report.skipped, prog=f"{prog} validate")
    return exit_status(report.skipped)


def infer_command(args: argparse.Namespace, prog: str = _PROG) -> int:
    """``infer``: top-k classes of the ``INPUT`` files with ``--weights`` (see :func:`register`).

    Args:
        args: The parsed options of a parser built with :func:`add_model_source`, ``--top-k`` and ``inputs``.
        prog: The command's name in messages.
    """
    from miil.core import distributed as du
    from miil.core.evaluate import choose_precision, exit_status, print_skipped_summary, write_json

    from .inference import collect_images, predict, prepare_for_inference

    files = collect_images(args.inputs)
    loaded = _load(args, _read_classes(args.classes))
    device = du.init_distributed(args.device)
    net = prepare_for_inference(loaded, device=device, fuse_bn=args.fuse_bn)
    precision = choose_precision(loaded.precision, amp=args.amp, amp_dtype=args.amp_dtype, device=device)
    rows, report = predict(
        net,
        files,
        transform=loaded.transform(),
        classes=loaded.classes,
        top_k=args.top_k,
        batch_size=args.batch_size or 64,
        device=device,
        precision=precision,
        num_workers=args.num_workers,
        strict=args.strict,
        progress=args.progress,
    )
    if du.is_main_process():
        for row in rows:
            print(row["file"] + "\t" + "  ".join(f"{t['class']} {t['prob']:.3f}" for t in row["top"]))
        if args.json:
            write_json(
                args.json,
                {"model": loaded.name, **loaded.info, "predictions": rows, **report.as_dict()},
            )
    print_skipped_summary(report.skipped, prog=f"{prog} infer")
    return exit_status(report.skipped)


# --------------------------------------------------------------------------------------------------- other verbs


def _cmd_convert(args: argparse.Namespace) -> int:
    from .convert import convert_checkpoint

    out = convert_checkpoint(
        args.source,
        args.output,
        model=args.model,
        num_classes=args.num_classes,
        img_size=args.img_size,
        crop_pct=args.crop_pct,
    )
    print(f"{_PROG} convert: {args.source} -> {out} (sidecar {out.with_suffix('.json')}; use it with --weights)")
    return 0


def _cmd_precompute(args: argparse.Namespace) -> int:
    from miil.core import distributed as du

    from .data import image_folder, usi_eval_transform
    from .teacher import create_teacher
    from .teacher_logits import precompute_teacher_logits

    train_dir = split_folder(args.data_root, args.train_split, default="train", flag="--train-split")
    device = du.init_distributed(args.device)
    probe = image_folder(train_dir, transform=None)
    num_classes = args.num_classes or len(probe.classes)
    teacher = create_teacher(
        args.teacher,
        num_classes=num_classes,
        student_mean=None,
        student_std=None,
        checkpoint=args.teacher_checkpoint,
        pretrained=args.teacher_pretrained,
        img_size=args.img_size,
        fuse_bn=args.fuse_bn,
        device=device,
    )
    tf = usi_eval_transform(args.img_size, mean=teacher.mean, std=teacher.std, crop_pct=args.crop_pct)
    dataset = image_folder(train_dir, transform=tf, strict=args.strict)
    out = precompute_teacher_logits(
        teacher,
        dataset,
        args.output,
        batch_size=args.batch_size,
        num_workers=args.num_workers,
        device=device,
        amp=args.amp,
        dtype=args.dtype,
        progress=args.progress,
        info={
            "teacher": args.teacher,
            "teacher_checkpoint": args.teacher_checkpoint,
            "img_size": args.img_size,
            "crop_pct": args.crop_pct,
            "data": str(train_dir),
            "classes": dataset.classes,
        },
    )
    if du.is_main_process():
        print(f"{_PROG} precompute-logits: teacher logits of {len(dataset)} images -> {out}")
    return 0


def _accuracy_of(item: object, where: str) -> tuple[str, float]:
    if isinstance(item, dict) and "model" in item:
        top1 = item.get("top1", (item.get("metrics") or {}).get("top1"))
        if isinstance(top1, int | float):
            return str(item["model"]), float(top1)
    raise UserError(f"{where} must hold {{'model': ..., 'top1': ...}} objects or `miil usi validate --json` reports")


def _read_accuracy_files(paths: list[str]) -> dict[str, float]:
    from miil.core.io import load_file

    found: dict[str, float] = {}
    for path in paths:
        value = load_file(path, what="accuracy file")
        if Path(path).suffix.lower() == ".json":
            for item in value if isinstance(value, list) else [value]:
                name, top1 = _accuracy_of(item, path)
                found[name] = top1
            continue
        reader = csv.DictReader(io.StringIO(str(value)))
        if not reader.fieldnames or not {"model", "top1"} <= set(reader.fieldnames):
            raise UserError(f"accuracy file {path} needs a header with 'model' and 'top1' columns")
        for row in reader:
            try:
                found[row["model"].strip()] = float(row["top1"])
            except (TypeError, ValueError):
                raise UserError(
                    f"accuracy file {path}: top1 {row['top1']!r} of {row['model']!r} is not a number"
                ) from None
    return found


def _cmd_pareto(args: argparse.Namespace) -> int:
    from miil.core.distributed import resolve_device

    from .pareto import ParetoPoint, pareto_table, write_pareto
    from .throughput import measure_throughput

    accuracies: dict[str, float] = {}
    if args.paper_accuracies:
        accuracies.update({row.model: row.top1 for row in PAPER_RESULTS.values() if row.epochs == 300})
    accuracies.update(_read_accuracy_files(args.accuracy_file or []))
    for item in args.accuracy or []:
        name, sep, value = item.partition("=")
        try:
            accuracies[name.strip()] = float(value)
        except ValueError:
            raise UserError(f"--accuracy expects NAME=TOP1, got {item!r}") from None
        if not sep:
            raise UserError(f"--accuracy expects NAME=TOP1, got {item!r}")
    missing = [m for m in args.models if m not in accuracies]
    if missing:
        raise UserError(
            f"no top-1 for {', '.join(missing)}; give --accuracy NAME=TOP1, --accuracy-file (CSV model,top1 or a "
            "`miil usi validate --json` report) or --paper-accuracies"
        )
    device = resolve_device(args.device)
    points = []
    for name in args.models:
        res = measure_throughput(
            name,
            batch_size=args.batch_size,
            img_size=args.img_size,
            device=device,
            fuse_bn=args.fuse_bn,
            channels_last=args.channels_last,
            compile=args.compile,
            amp=args.amp,
            warmup=args.warmup,
            iters=args.iters,
            min_seconds=args.min_seconds,
            model_kwargs=args.model_kwargs,
        )
        print(
            f"{_PROG} pareto: {name}: {res.images_per_s:.1f} img/s (batch {res.batch_size}, {res.img_size}px, "
            f"{res.bn_fused} BN fused, {res.params_m:.1f}M params)",
            flush=True,
        )
        points.append(ParetoPoint(name, res.images_per_s, accuracies[name]))
    paths = write_pareto(points, args.out_dir, title=args.title or f"USI speed-accuracy ({device})", device=str(device))
    print(pareto_table(points, device=str(device)), end="")
    print(f"{_PROG} pareto: wrote {paths['csv']}, {paths['md']}, {paths['png']}")
    if args.json:
        from dataclasses import asdict

        from miil.core.evaluate import write_json

        # The reproduction script and other tools read the front from here instead of parsing the CSV.
        write_json(
            args.json,
            {
                "device": str(device),
                "batch_size": args.batch_size,
                "img_size": args.img_size,
                "amp": args.amp,
                "models": [asdict(p) for p in points],
                "front": [p.model for p in points if p.on_front],
                "front_size": sum(p.on_front for p in points),
                "files": {k: str(v) for k, v in paths.items()},
            },
        )
    return 0


# --------------------------------------------------------------------------------------------------- parsers


def add_model_source(p: argparse.ArgumentParser, *, runs: str = "`miil usi train`") -> None:
    """The options of ``validate`` and ``infer``: the model (``--weights`` or a timm name with ``--pretrained``), its
    input, the device and precision, the bad-input policy and the ``--json`` report.

    Args:
        p: The verb's parser.
        runs: Which train verb writes the run folders ``--weights`` takes (for the help).
    """
    g = p.add_argument_group("model (--weights, or a timm name with --pretrained)")
    ca.add_weights(g, required=False, help=f"a {runs} run folder (its best weights) or a weights file")
    ca.add_model(g, help="timm model name (default: the one the weights' sidecar names)")
    ca.add_role(g, "pretrained", help="without --weights: timm's pretrained weights of --model (downloads)")
    ca.add_model_kwargs(g, default=None, help="extra timm.create_model arguments as a JSON object")
    g.add_argument("--num-classes", type=int, default=None, help="outputs of the model; default: the weights'")
    ca.add_classes(g, help="text file with the class names in output order (default: the run's)")
    ca.add_img_size(g, help="input side (default: the run's, else the model's)")
    g.add_argument("--crop-pct", type=float, default=None, help="center-crop fraction (default: the run's, else 0.95)")
    ca.add_device(p)
    ca.add_batch_size(p, default=None, help="images per forward pass (default: the run's validation batch, or 64)")
    ca.add_num_workers(p)
    ca.add_amp(
        p,
        dtype=True,
        default=None,
        help="autocast; default: the precision the run validated in (its eval_precision), fp32 for other weights",
    )
    p.add_argument(
        "--fuse-bn", action=ca.BoolAction, default=False, help="fold batch norms first (the paper's deployment)"
    )
    ca.add_progress(p)
    ca.add_strict(p)
    ca.add_json(p)


def _verb(sub, name: str, help: str, description: str | None = None) -> argparse.ArgumentParser:
    return sub.add_parser(name, help=help, description=description or help, formatter_class=HelpFormatter)


def register(parser: argparse.ArgumentParser) -> None:
    """Add ``recipes``, ``train``, ``validate``, ``infer``, ``convert``, ``precompute-logits`` and ``pareto``."""
    parser.description = "USI (arXiv 2204.03475): one KD recipe for any timm backbone, and a speed-accuracy tool."
    sub = parser.add_subparsers(dest="usi_command", metavar="COMMAND")

    ca.add_recipes_verb(sub, RECIPES, help="list the paper's rows (one recipe, its backbone and epochs), or show one")

    p = _verb(
        sub,
        "train",
        "train any timm model with the USI recipe (KD from a frozen teacher)",
        "Every recipe is the USI preset (the authors' train.py) with its row's --model and --epochs; options below "
        "override it. Data: --data-root ROOT holding train/<class>/<image> and val/<class>/<image>.",
    )
    ca.add_recipe(p, RECIPES, default="usi")
    ca.add_data_args(p, DATA_FORMATS, labels=False, root_required=True)
    add_dataclass_arguments(p, USI, group="recipe (default: the --recipe row)", only_if_given=True, recipe_name="usi")
    p.set_defaults(func=_cmd_train)

    p = _verb(sub, "validate", "top-1 / top-5 of a run or weights on the validation split")
    ca.add_data_args(p, DATA_FORMATS, splits=("val",), labels=False, root_required=True)
    add_model_source(p)
    p.add_argument("--channels-last", action=ca.BoolAction, default=False, help="channels-last batches")
    p.set_defaults(func=validate_command)

    p = _verb(sub, "infer", "top-k classes of image files (folders are searched)")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders")
    add_model_source(p)
    ca.add_top_k(p)
    p.set_defaults(func=infer_command)

    p = _verb(
        sub,
        "convert",
        "convert an original USI / MIIL checkpoint (e.g. the teacher tresnet_l_v2_83_9.pth) to safetensors",
        "Reads the authors' weights-only .pth (InplaceABN TResNets converted key by key; every key must map) and "
        "writes OUTPUT.safetensors with a JSON sidecar naming the model, for --weights and --teacher-checkpoint.",
    )
    p.add_argument("source", metavar="SOURCE", help="the original checkpoint")
    p.add_argument("output", metavar="OUTPUT", help="the .safetensors file to write")
    ca.add_model(p, required=True, help="timm name of the architecture: tresnet_v2_l (the teacher), tresnet_m, ...")
    p.add_argument("--num-classes", type=int, default=None, help="classifier outputs; default: the checkpoint's")
    ca.add_img_size(p, help="evaluation input side stored in the sidecar (default: the model's)")
    p.add_argument("--crop-pct", type=float, default=USI.crop_pct, help="evaluation center crop stored in the sidecar")
    p.set_defaults(func=_cmd_convert)

    p = _verb(sub, "precompute-logits", "run the teacher once over the training split and store its logits")
    ca.add_data_args(p, DATA_FORMATS, splits=("train",), labels=False, root_required=True)
    ca.add_output(p, required=True, help="the .npy file to write (a .json sidecar is written beside it)")
    ca.add_role(p, "teacher", default=DEFAULT_TEACHER)
    ca.add_role(p, "teacher_checkpoint", default=None)
    p.add_argument(
        "--teacher-pretrained",
        action=ca.BoolAction,
        default=True,
        help="download the teacher's timm weights when no --teacher-checkpoint is given",
    )
    p.add_argument("--num-classes", type=int, default=None, help="teacher outputs; default: the class folders")
    ca.add_img_size(p, default=USI.img_size)
    p.add_argument("--crop-pct", type=float, default=USI.crop_pct, help="center-crop fraction of the teacher's view")
    ca.add_batch_size(p, default=128)
    ca.add_num_workers(p)
    ca.add_device(p)
    ca.add_amp(p)
    p.add_argument("--fuse-bn", action=ca.BoolAction, default=True, help="fold the teacher's batch norms")
    p.add_argument("--dtype", default="float16", choices=("float16", "float32"), help="storage precision")
    ca.add_strict(p)
    ca.add_progress(p)
    p.set_defaults(func=_cmd_precompute)

    p = _verb(sub, "pareto", "throughput of timm models, joined with accuracies: Pareto front table and plot")
    p.add_argument("--models", nargs="+", required=True, metavar="NAME", help="timm model names")
    p.add_argument("--accuracy", action="append", metavar="NAME=TOP1", help="a model's top-1 (repeatable)")
    p.add_argument(
        "--accuracy-file",
        nargs="+",
        metavar="FILE",
        help="CSV files (model,top1) or `miil usi validate --json` reports",
    )
    p.add_argument("--paper-accuracies", action=ca.BoolAction, default=False, help="the paper's top-1 where listed")
    ca.add_model_kwargs(p, help="extra timm.create_model arguments for every model, as a JSON object")
    ca.add_batch_size(p, default=64)
    ca.add_img_size(p, help="input side (default: each model's)")
    ca.add_device(p)
    p.add_argument("--fuse-bn", action=ca.BoolAction, default=True, help="fold batch norms (as the paper)")
    p.add_argument("--channels-last", action=ca.BoolAction, default=True, help="channels-last memory format")
    p.add_argument("--compile", action=ca.BoolAction, default=False, help="torch.compile each model")
    ca.add_amp(p, help="autocast (fp16 on CUDA, bf16 on CPU)")
    p.add_argument("--warmup", type=int, default=3, metavar="N", help="untimed forward passes")
    p.add_argument("--iters", type=int, default=10, metavar="N", help="minimum timed forward passes")
    p.add_argument("--min-seconds", type=float, default=1.0, metavar="S", help="minimum timed duration per model")
    ca.add_out_dir(p, default="runs/pareto", help="where pareto.csv, pareto.md and pareto.png go")
    p.add_argument("--title", default=None, help="plot title")
    ca.add_json(p, help="also write the measured points and the front as JSON")
    p.set_defaults(func=_cmd_pareto)


def main(argv: list[str] | None = None) -> int:
    """``python -m miil.usi.cli``: the ``miil usi`` command."""
    from miil.core.cli import package_main

    return package_main("usi", register, argv)


if __name__ == "__main__":
    raise SystemExit(main())
