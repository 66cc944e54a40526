"""``miil usi ...``: train any timm backbone with the USI recipe, validate, infer, precompute teacher logits, and
compare models on the speed-accuracy plane.

Paper: USI (arXiv 2204.03475). Examples::

    miil usi train --data /data/imagenet --model convnext_small --teacher-checkpoint tresnet_l_v2_83_9.pth
    torchrun --nproc_per_node=8 -m miil.core.cli usi train --data /data/imagenet --model levit_384
    miil usi validate --run runs/usi --data /data/imagenet/val
    miil usi infer --run runs/usi photo.jpg
    miil usi precompute-logits --data /data/imagenet/train --teacher-checkpoint t.pth --out logits.npy
    miil usi pareto --models resnet50 mobilenetv3_large_100 levit_384 --paper-accuracies --device cuda
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import torch

from miil.core import distributed as du
from miil.core.cli import HelpFormatter
from miil.core.config import add_dataclass_arguments, dataclass_from_args, pick_recipe

from .recipes import PAPER_RESULTS, RECIPES, USI
from .teacher import DEFAULT_TEACHER

__all__ = ["register"]


def _bool(text: str) -> bool:
    low = text.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected a boolean (true/false), got {text!r}")


def _split_dirs(args: argparse.Namespace) -> tuple[Path, Path | None]:
    if args.train_dir:
        return Path(args.train_dir), Path(args.val_dir) if args.val_dir else None
    if not args.data:
        raise SystemExit("miil usi train: give --data ROOT (with ROOT/train and ROOT/val) or --train-dir")
    root = Path(args.data)
    train = root / "train"
    if not train.is_dir():
        raise SystemExit(f"miil usi train: {train} is not a folder; --data expects ROOT/train/<class>/<image>")
    val = Path(args.val_dir) if args.val_dir else (root / "val" if (root / "val").is_dir() else None)
    return train, val


def _cmd_train(args: argparse.Namespace) -> int:
    from .train import train_usi

    recipe = pick_recipe(RECIPES, args.recipe)
    values = {k: v for k, v in vars(args).items() if not (k in ("model", "epochs") and v is None)}
    cfg = dataclass_from_args(recipe, values)
    train_dir, val_dir = _split_dirs(args)
    result = train_usi(cfg, train_dir=train_dir, val_dir=val_dir, recipe_name=args.recipe)
    if du.is_main_process():
        print(
            f"[miil usi] {cfg.model}: best top-1 {result.best_metric:.2f}% ({result.best_source} weights, epoch "
            f"{result.best_epoch + 1}) -> {result.out_dir / 'best.safetensors'}"
        )
    if du.is_distributed():
        torch.distributed.destroy_process_group()
    return 0


def _loaded(args: argparse.Namespace, classes=None):
    from .inference import load_classifier

    return load_classifier(
        run_dir=args.run,
        which=args.which,
        model=args.model,
        checkpoint=args.checkpoint,
        num_classes=args.num_classes,
        classes=classes,
        img_size=args.img_size,
        crop_pct=args.crop_pct,
        pretrained=args.pretrained,
    )


def _cmd_validate(args: argparse.Namespace) -> int:
    from miil.core.data import ImageFolderDataset

    from .inference import prepare_for_inference, validate, write_json
    from .throughput import resolve_device

    folder_classes = None
    if args.run is None:
        folder_classes = ImageFolderDataset(args.data).classes
    loaded = _loaded(args, classes=folder_classes)
    classes = loaded.classes
    dataset = ImageFolderDataset(args.data, transform=loaded.transform(), classes=classes, strict=args.strict)
    device = resolve_device(args.device)
    net = prepare_for_inference(loaded, device=device, fuse_bn=args.fuse_bn, channels_last=args.channels_last)
    metrics = validate(
        net,
        dataset,
        batch_size=args.batch_size,
        device=device,
        amp=args.amp,
        num_workers=args.num_workers,
        channels_last=args.channels_last,
    )
    report = {
        "model": loaded.name,
        **{k: metrics[k] for k in ("top1", "top5") if k in metrics},
        "images": int(metrics["images"]),
        "skipped_unreadable": int(metrics["skipped_unreadable"]),
        "data": str(args.data),
        "img_size": loaded.img_size,
        "crop_pct": loaded.crop_pct,
        **loaded.info,
    }
    tops = " ".join(f"{k} {report[k]:.2f}%" for k in ("top1", "top5") if k in report)
    print(f"[miil usi] {loaded.name} on {args.data}: {tops} ({report['images']} images)")
    if args.output:
        write_json(args.output, report)
    return 0


def _read_classes(path: str | None) -> list[str] | None:
    if path is None:
        return None
    names = [line.strip() for line in Path(path).read_text().splitlines() if line.strip()]
    if not names:
        raise SystemExit(f"miil usi infer: {path} lists no class names (one per line)")
    return names


def _cmd_infer(args: argparse.Namespace) -> int:
    from .inference import collect_images, predict, prepare_for_inference
    from .throughput import resolve_device

    loaded = _loaded(args, classes=_read_classes(args.classes))
    device = resolve_device(args.device)
    net = prepare_for_inference(loaded, device=device, fuse_bn=args.fuse_bn)
    rows = predict(
        net,
        collect_images(args.images),
        transform=loaded.transform(),
        classes=loaded.classes,
        topk=args.topk,
        batch_size=args.batch_size,
        device=device,
        strict=args.strict,
    )
    for row in rows:
        if "error" in row:
            print(f"{row['image']}\t{row['error']}")
        else:
            print(row["image"] + "\t" + "  ".join(f"{t['class']} {t['prob']:.3f}" for t in row["top"]))
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text("".join(json.dumps(r) + "\n" for r in rows))
    return 0


def _cmd_precompute(args: argparse.Namespace) -> int:
    from .data import image_folder, usi_eval_transform
    from .teacher import create_teacher
    from .teacher_logits import precompute_teacher_logits
    from .throughput import resolve_device

    device = du.init_distributed(str(resolve_device(args.device)))
    probe = image_folder(args.data, transform=None)
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
    dataset = image_folder(args.data, transform=tf, strict=args.strict)
    out = precompute_teacher_logits(
        teacher,
        dataset,
        args.out,
        batch_size=args.batch_size,
        num_workers=args.num_workers,
        device=device,
        amp=args.amp,
        dtype=args.dtype,
        info={
            "teacher": args.teacher,
            "teacher_checkpoint": args.teacher_checkpoint,
            "img_size": args.img_size,
            "crop_pct": args.crop_pct,
            "data": str(args.data),
            "classes": dataset.classes,
        },
    )
    if du.is_main_process():
        print(f"[miil usi] teacher logits of {len(dataset)} images -> {out}")
    if du.is_distributed():
        torch.distributed.destroy_process_group()
    return 0


def _read_accuracy_files(paths: list[str]) -> dict[str, float]:
    found: dict[str, float] = {}
    for path in paths:
        p = Path(path)
        if not p.is_file():
            raise SystemExit(f"miil usi pareto: accuracy file {p} does not exist")
        if p.suffix.lower() == ".json":
            data = json.loads(p.read_text())
            items = data if isinstance(data, list) else [data]
            for item in items:
                if not isinstance(item, dict) or "model" not in item or "top1" not in item:
                    raise SystemExit(f"miil usi pareto: {p} must hold {{'model': ..., 'top1': ...}} objects")
                found[str(item["model"])] = float(item["top1"])
        else:
            with open(p, newline="") as fh:
                reader = csv.DictReader(fh)
                if not reader.fieldnames or not {"model", "top1"} <= set(reader.fieldnames):
                    raise SystemExit(f"miil usi pareto: {p} needs a header with 'model' and 'top1' columns")
                for row in reader:
                    found[row["model"].strip()] = float(row["top1"])
    return found


def _cmd_pareto(args: argparse.Namespace) -> int:
    from .pareto import ParetoPoint, pareto_table, write_pareto
    from .throughput import measure_throughput, resolve_device

    accuracies: dict[str, float] = {}
    if args.paper_accuracies:
        accuracies.update({row.model: row.top1 for row in PAPER_RESULTS.values() if row.epochs == 300})
    accuracies.update(_read_accuracy_files(args.accuracy_file or []))
    for item in args.accuracy or []:
        name, sep, value = item.partition("=")
        try:
            accuracies[name.strip()] = float(value)
        except ValueError:
            raise SystemExit(f"miil usi pareto: --accuracy expects NAME=TOP1, got {item!r}") from None
        if not sep:
            raise SystemExit(f"miil usi pareto: --accuracy expects NAME=TOP1, got {item!r}")
    missing = [m for m in args.models if m not in accuracies]
    if missing:
        raise SystemExit(
            f"miil usi pareto: no top-1 for {', '.join(missing)}; give --accuracy NAME=TOP1, --accuracy-file "
            "(CSV model,top1 or `miil usi validate --output` JSON) or --paper-accuracies"
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
        )
        print(
            f"[miil usi] {name}: {res.images_per_s:.1f} img/s (batch {res.batch_size}, {res.img_size}px, "
            f"{res.bn_fused} BN fused, {res.params_m:.1f}M params)",
            flush=True,
        )
        points.append(ParetoPoint(name, res.images_per_s, accuracies[name]))
    paths = write_pareto(points, args.out_dir, title=args.title or f"USI speed-accuracy ({device})", device=str(device))
    print(pareto_table(points, device=str(device)), end="")
    print(f"[miil usi] wrote {paths['csv']}, {paths['md']}, {paths['png']}")
    return 0


def _add_model_source(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model (a run directory, or a timm name with weights)")
    g.add_argument("--run", default=None, help="run directory written by `miil usi train`")
    g.add_argument("--which", default="best", choices=("best", "last"), help="which weights of the run")
    g.add_argument("--model", default=None, help="timm model name (without --run)")
    g.add_argument("--checkpoint", default=None, help="weights file for --model (safetensors / weights-only .pth)")
    g.add_argument("--pretrained", type=_bool, default=False, metavar="BOOL", help="timm weights (downloads)")
    g.add_argument(
        "--num-classes", type=int, default=None, help="outputs of --model; None: the number of class folders"
    )
    g.add_argument("--img-size", type=int, default=None, help="input side; None: the run's, else the model's")
    g.add_argument("--crop-pct", type=float, default=None, help="center-crop fraction; None: the run's, else 0.95")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--batch-size", type=int, default=64, help="images per forward pass")
    p.add_argument("--fuse-bn", type=_bool, default=True, metavar="BOOL", help="fold batch norms before running")
    p.add_argument("--strict", type=_bool, default=False, metavar="BOOL", help="fail on unreadable images")


def register(parser: argparse.ArgumentParser) -> None:
    """Add the ``train``, ``validate``, ``infer``, ``precompute-logits`` and ``pareto`` sub-commands."""
    parser.description = "USI (arXiv 2204.03475): one KD recipe for any timm backbone, and a speed-accuracy tool."
    sub = parser.add_subparsers(dest="usi_command", metavar="COMMAND")

    p = sub.add_parser(
        "train",
        help="train any timm model with the USI recipe (KD from a frozen teacher)",
        formatter_class=HelpFormatter,
        description="Defaults below are the USI preset (the authors' train.py); every --recipe shares them and only "
        f"sets --model and --epochs. Recipes: {', '.join(RECIPES)}.",
    )
    p.add_argument("--recipe", default="usi", help="paper row to start from (see the description)")
    p.add_argument("--data", default=None, help="ImageNet-style root holding train/<class>/... and val/<class>/...")
    p.add_argument("--train-dir", default=None, help="training folder (instead of --data)")
    p.add_argument("--val-dir", default=None, help="validation folder; None: DATA/val when it exists")
    p.add_argument("--model", default=None, help=f"student: any timm model name; None: the recipe's ({USI.model})")
    p.add_argument("--epochs", type=int, default=None, help=f"epochs; None: the recipe's ({USI.epochs})")
    add_dataclass_arguments(p, USI, exclude=("model", "epochs"), group="USI recipe (the authors' train.py defaults)")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("validate", help="top-1 / top-5 on an image folder", formatter_class=HelpFormatter)
    p.add_argument("--data", required=True, help="validation folder: DATA/<class>/<image>")
    _add_model_source(p)
    p.add_argument("--amp", type=_bool, default=False, metavar="BOOL", help="autocast (fp16 CUDA / bf16 CPU)")
    p.add_argument("--channels-last", type=_bool, default=False, metavar="BOOL", help="channels-last batches")
    p.add_argument("--num-workers", type=int, default=0, help="data-loader workers")
    p.add_argument("--output", default=None, help="write the metrics as JSON (usable by `pareto --accuracy-file`)")
    p.set_defaults(func=_cmd_validate)

    p = sub.add_parser("infer", help="top-k classes of images", formatter_class=HelpFormatter)
    p.add_argument("images", nargs="+", help="image files or folders")
    _add_model_source(p)
    p.add_argument("--classes", default=None, help="text file with one class name per line (without --run)")
    p.add_argument("--topk", type=int, default=5, help="classes to print per image")
    p.add_argument("--output", default=None, help="also write JSON lines here")
    p.set_defaults(func=_cmd_infer)

    p = sub.add_parser(
        "precompute-logits",
        help="run the teacher once over a training folder and store its logits",
        formatter_class=HelpFormatter,
    )
    p.add_argument("--data", required=True, help="training folder: DATA/<class>/<image>")
    p.add_argument("--out", required=True, help="output .npy file (a .json sidecar is written beside it)")
    p.add_argument("--teacher", default=DEFAULT_TEACHER, help="teacher timm name")
    p.add_argument("--teacher-checkpoint", default=None, help="teacher weights file")
    p.add_argument("--teacher-pretrained", type=_bool, default=True, metavar="BOOL", help="timm weights if no file")
    p.add_argument("--num-classes", type=int, default=None, help="teacher outputs; None: the number of class folders")
    p.add_argument("--img-size", type=int, default=USI.img_size, help="input side")
    p.add_argument("--crop-pct", type=float, default=USI.crop_pct, help="center-crop fraction of the teacher's view")
    p.add_argument("--batch-size", type=int, default=128, help="images per forward pass")
    p.add_argument("--num-workers", type=int, default=0, help="data-loader workers")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--amp", type=_bool, default=False, metavar="BOOL", help="autocast")
    p.add_argument("--fuse-bn", type=_bool, default=True, metavar="BOOL", help="fold the teacher's batch norms")
    p.add_argument("--dtype", default="float16", choices=("float16", "float32"), help="storage precision")
    p.add_argument("--strict", type=_bool, default=False, metavar="BOOL", help="fail on unreadable images")
    p.set_defaults(func=_cmd_precompute)

    p = sub.add_parser(
        "pareto",
        help="throughput of timm models, joined with accuracies: Pareto front table and plot",
        formatter_class=HelpFormatter,
    )
    p.add_argument("--models", nargs="+", required=True, help="timm model names")
    p.add_argument("--accuracy", action="append", help="NAME=TOP1 (repeatable)")
    p.add_argument("--accuracy-file", nargs="+", help="CSV (model,top1) or `miil usi validate --output` JSON files")
    p.add_argument("--paper-accuracies", action="store_true", help="use the USI paper's top-1 where listed")
    p.add_argument("--batch-size", type=int, default=64, help="images per forward pass")
    p.add_argument("--img-size", type=int, default=None, help="input side; None: each model's")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--fuse-bn", type=_bool, default=True, metavar="BOOL", help="fold batch norms (as the paper)")
    p.add_argument("--channels-last", type=_bool, default=True, metavar="BOOL", help="channels-last format")
    p.add_argument("--compile", type=_bool, default=False, metavar="BOOL", help="torch.compile each model")
    p.add_argument("--amp", type=_bool, default=False, metavar="BOOL", help="autocast (fp16 CUDA / bf16 CPU)")
    p.add_argument("--warmup", type=int, default=3, help="untimed forward passes")
    p.add_argument("--iters", type=int, default=10, help="minimum timed forward passes")
    p.add_argument("--min-seconds", type=float, default=1.0, help="minimum timed duration per model")
    p.add_argument("--out-dir", default="runs/pareto", help="where pareto.csv / .md / .png go")
    p.add_argument("--title", default=None, help="plot title")
    p.set_defaults(func=_cmd_pareto)
