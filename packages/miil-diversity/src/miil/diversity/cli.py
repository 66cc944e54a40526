"""``miil diversity ...``: pretrain (self-supervised or DINO init, then USI KD), validate, infer, measure diversity,
transfer with fixed hyperparameters, report, and convert DINO checkpoints.

Paper: "Diverse ImageNet Models Transfer Better" (arXiv 2204.09134 / WACV 2024). Examples::

    miil diversity recipes
    miil diversity train --recipe ssl-usi --data-root /data/imagenet --model resnet50 --teacher-checkpoint t.pth
    torchrun --nproc_per_node=8 -m miil.core.cli diversity train --recipe dino-usi-vit-s --data-root /data/imagenet
    miil diversity validate --weights runs/diversity --data-root /data/imagenet
    miil diversity infer --weights runs/diversity photo.jpg
    miil diversity measure --weights runs/diversity --data-root /data/imagenet --json div.json --per-layer
    miil diversity transfer --weights runs/diversity --recipe linear-probe --data-root /data/cifar100 \\
        --val-split test --out-dir runs/transfer/cifar-ssl-usi
    miil diversity report runs/transfer/* --output report.md --plot report.png
    miil diversity convert dino_resnet50_pretrain.pth dino_r50.safetensors --model resnet50

This module imports no torch: each command imports what it needs when it runs.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from miil.core import cli_args as ca
from miil.core.cli import HelpFormatter
from miil.core.config import add_dataclass_arguments, dataclass_from_args, pick_recipe
from miil.core.errors import UserError
from miil.usi.cli import add_model_source, infer_command, validate_command
from miil.usi.layout import split_folder

from .recipes import RECIPES, TRANSFER_RECIPES

__all__ = ["register"]

_PROG = "miil diversity"
TRAIN_FORMATS = ("folder",)
# folder: ROOT/<split>/<class>/<image> (single-label); csv: the core multi-label CSV, ROOT/<split>.csv by default,
# image paths relative to ROOT.
TRANSFER_FORMATS = ("folder", "csv")


# --------------------------------------------------------------------------------------------------- train


def _cmd_train(args: argparse.Namespace) -> int:
    from miil.core import distributed as du
    from miil.core.evaluate import exit_status, print_skipped_summary

    from .pretrain import pretrain_folders

    cfg = dataclass_from_args(pick_recipe(RECIPES, args.recipe), args)
    train_dir = split_folder(args.data_root, args.train_split, default="train", flag="--train-split")
    val_dir = split_folder(
        args.data_root, args.val_split, default="val", flag="--val-split", required=args.val_split is not None
    )
    result = pretrain_folders(cfg, train_dir=train_dir, val_dir=val_dir, recipe_name=args.recipe)
    run = result.supervised
    if du.is_main_process():
        last = run.history[-1].get("val", {}) if run.history else {}
        shown = "  ".join(f"{k} {v:.4g}" for k, v in last.items() if isinstance(v, float))
        print(f"{_PROG} train: {cfg.model} ({cfg.init} init -> USI): last epoch {shown} -> {run.out_dir}")
    stages = [result.ssl, run] if result.ssl is not None else [run]
    skipped = {item.file: item for stage in stages for item in stage.skipped}
    print_skipped_summary([skipped[f] for f in sorted(skipped)], prog=f"{_PROG} train")
    ca.print_plot_hint(run.out_dir)
    return exit_status(len(skipped))


# --------------------------------------------------------------------------------------------------- validate / infer


def _with_run_weights(command):
    def run(args: argparse.Namespace) -> int:
        from .models import run_weights

        if args.weights is not None:
            args.weights = str(run_weights(args.weights))
        return command(args, prog=_PROG)

    return run


# --------------------------------------------------------------------------------------------------- measure / transfer


def _split_source(args: argparse.Namespace, split: str) -> Path:
    """The folder (``folder`` format) or label file (``csv``) of ``split`` ("train" or "val")."""
    name = getattr(args, f"{split}_split")
    if args.data_format == "folder":
        return split_folder(args.data_root, name, default=split, flag=f"--{split}-split")
    labels = getattr(args, f"{split}_labels")
    if labels is None:
        root = Path(args.data_root)
        if not root.is_dir():
            raise UserError(f"--data-root {root} does not exist or is not a folder")
        labels = root / f"{name or split}.csv"
    if not Path(labels).is_file():
        raise UserError(
            f"label file {labels} does not exist: --data-format csv reads ROOT/<split>.csv; give --{split}-labels FILE"
        )
    return Path(labels)


def _load_model(args: argparse.Namespace):
    from .models import load_pretrained

    return load_pretrained(
        weights=args.weights,
        model=args.model,
        pretrained=args.pretrained,
        num_classes=args.num_classes,
        model_kwargs=args.model_kwargs,
    )


def _report_name(args: argparse.Namespace, model: str) -> str:
    if args.name:
        return args.name
    return Path(args.weights).name if args.weights else model


def _write_json(path: str | Path, payload: dict) -> None:
    from miil.core import distributed as du
    from miil.core.evaluate import write_json

    if du.is_main_process():
        write_json(path, payload)


def _cmd_measure(args: argparse.Namespace) -> int:
    from miil.core import distributed as du
    from miil.core.evaluate import exit_status, print_skipped_summary

    from .measure import FEATURE_METRICS, WEIGHT_METRICS, measure_diversity
    from .recipes import TransferRecipe
    from .transfer import load_transfer_dataset, transfer_transforms

    source = _split_source(args, "val")
    metrics = None if args.metrics is None else list(args.metrics)
    unknown = [m for m in metrics or () if m not in WEIGHT_METRICS and m not in FEATURE_METRICS]
    if unknown:
        raise UserError(f"--metrics: unknown {unknown}; known: {', '.join([*WEIGHT_METRICS, *FEATURE_METRICS])}")
    device = du.init_distributed(args.device)
    loaded = _load_model(args)
    model = loaded.model.to(device)
    _, eval_tf = transfer_transforms(TransferRecipe(img_size=args.img_size), mean=loaded.mean, std=loaded.std)
    data = load_transfer_dataset(source, transform=eval_tf, root=args.data_root, strict=args.strict)
    report = measure_diversity(
        model,
        data,
        layers=args.layers,
        weights=None if metrics is None else [m for m in metrics if m in WEIGHT_METRICS],
        features=None if metrics is None else [m for m in metrics if m in FEATURE_METRICS],
        batch_size=args.batch_size,
        max_batches=args.max_batches,
        device=device,
        materialize=args.materialize,
        progress=args.progress,
    )
    name = _report_name(args, loaded.name)
    if du.is_main_process():
        print(f"{_PROG} measure: {name} on {source} ({report.images} images):")
        for k, v in report.overall.items():
            print(f"  {k:<28} {v:.6g}")
        if args.per_layer:
            for layer, values in report.per_layer.items():
                print(f"  {layer:<40} " + "  ".join(f"{k} {v:.4g}" for k, v in values.items()))
    if args.json:
        payload = {
            "name": name,
            "model": loaded.name,
            **loaded.info,
            "source_top1": args.source_top1 or loaded.source_top1,
        }
        _write_json(args.json, {**payload, "data": str(source), **report.to_dict()})
    print_skipped_summary(report.skipped, prog=f"{_PROG} measure")
    return exit_status(report.skipped)


def _check_task(data_format: str, task: str, recipe: str) -> None:
    if data_format == "csv" and task != "multi":
        raise UserError(
            f"--data-format csv holds multi-label annotations but the recipe {recipe!r} runs --task {task}: "
            "pass --task multi (mAP, ASL loss)"
        )
    if data_format == "folder" and task != "single":
        raise UserError(
            f"--data-format folder is single-label (one class folder per image) but the recipe {recipe!r} runs "
            f"--task {task}: pass --task single (top-1), or give the multi-label labels as --data-format csv"
        )


def _cmd_transfer(args: argparse.Namespace) -> int:
    from miil.core import distributed as du
    from miil.core.data import Skipped
    from miil.core.evaluate import exit_status, print_skipped_summary

    from .measure import measure_diversity
    from .transfer import transfer, transfer_datasets

    cfg = dataclass_from_args(pick_recipe(TRANSFER_RECIPES, args.recipe), args)
    _check_task(args.data_format, cfg.task, args.recipe)
    train_source, val_source = _split_source(args, "train"), _split_source(args, "val")
    du.init_distributed(cfg.device)
    loaded = _load_model(args)
    train_ds, val_ds = transfer_datasets(
        cfg, train_source, val_source, mean=loaded.mean, std=loaded.std, root=args.data_root, strict=args.strict
    )
    classes = getattr(train_ds, "classes", None)
    if not classes:
        raise UserError(f"{train_source}: the dataset does not list its classes")
    diversity = {}
    if args.diversity:
        report = measure_diversity(loaded.model, val_ds, batch_size=cfg.batch_size, max_batches=args.max_batches)
        diversity = report.overall
    result = transfer(loaded.model, train_ds, val_ds, cfg, num_classes=len(classes))
    name = _report_name(args, loaded.name)
    record = {
        "name": name,
        "model": loaded.name,
        **loaded.info,
        "source_top1": args.source_top1 or loaded.source_top1,
        "diversity": diversity,
        **result.to_dict(),
        "recipe": args.recipe,
        "train": str(train_source),
        "val": str(val_source),
    }
    # The files this process could not read (num_workers 0, the recipes' default: loader workers count their own).
    reasons = {**train_ds.policy.reasons, **val_ds.policy.reasons}
    skipped = [Skipped(f, reasons[f]) for f in sorted(reasons)]
    record["skipped"] = [s.as_dict() for s in skipped]
    if du.is_main_process():
        print(f"{_PROG} transfer: {name}: {cfg.mode} {cfg.task} {result.metric} {result.value:.2f}%")
    _write_json(Path(cfg.out_dir) / "transfer.json", record)
    print_skipped_summary(skipped, prog=f"{_PROG} transfer")
    return exit_status(skipped)


# --------------------------------------------------------------------------------------------------- report / convert


def _cmd_report(args: argparse.Namespace) -> int:
    from .report import correlations, load_records, plot_transfer, report_table

    records = load_records(args.records)
    table = report_table(records)
    print(table)
    corr = correlations(records)
    if corr:
        print("Spearman correlation with the transfer metric: " + ", ".join(f"{k} {v:+.3f}" for k, v in corr.items()))
    if args.output:
        from miil.core.io import atomic_write_text

        text = table + ("\n\nSpearman: " + json.dumps(corr) if corr else "") + "\n"
        atomic_write_text(args.output, text)
    if args.plot:
        print(f"plot: {plot_transfer(records, args.plot, diversity=args.plot_metric)}")
    return 0


def _cmd_convert(args: argparse.Namespace) -> int:
    from .convert import convert_ssl_checkpoint

    out = convert_ssl_checkpoint(args.source, args.output, model=args.model)
    print(f"{_PROG} convert: {args.source} -> {out} (backbone of {args.model}; use it as --init-checkpoint)")
    return 0


# --------------------------------------------------------------------------------------------------- parsers


def _add_pretrained_model(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("pretrained model (--weights, or a timm name with --pretrained)")
    ca.add_weights(
        g,
        required=False,
        help="a `miil diversity train` run folder, a weights file (with a classifier), or backbone-only "
        "self-supervised weights (e.g. `miil diversity convert` output)",
    )
    ca.add_model(g, help="timm model name (default: the one the weights' sidecar names)")
    ca.add_role(g, "pretrained", help="without --weights: timm's pretrained weights of --model (downloads)")
    ca.add_model_kwargs(g, default=None)
    g.add_argument("--num-classes", type=int, default=None, help="classifier outputs; default: the weights'")
    g.add_argument("--name", default=None, help="name of the model in reports (default: the run folder's)")
    g.add_argument("--source-top1", type=float, default=None, help="source (ImageNet) top-1, for the report")


def _verb(sub, name: str, help: str, description: str | None = None) -> argparse.ArgumentParser:
    return sub.add_parser(name, help=help, description=description or help, formatter_class=HelpFormatter)


def register(parser: argparse.ArgumentParser) -> None:
    """Add ``recipes``, ``train``, ``validate``, ``infer``, ``measure``, ``transfer``, ``report`` and ``convert``.

    Args:
        parser: The ``miil diversity`` parser.
    """
    parser.description = "Diverse ImageNet Models Transfer Better (arXiv 2204.09134): diversity, pretraining, transfer"
    sub = parser.add_subparsers(dest="diversity_command", metavar="COMMAND")

    ca.add_recipes_verb(
        sub, {**RECIPES, **TRANSFER_RECIPES}, help="list the pretraining (train) and transfer recipes, or show one"
    )

    p = _verb(
        sub,
        "train",
        "pretrain: self-supervised (SimCLR here) or DINO init, then USI supervised KD",
        "Writes OUT_DIR/ssl (init ssl) and OUT_DIR/supervised; top-1 and diversity are logged every epoch. Data: "
        "--data-root ROOT holding train/<class>/<image> and val/<class>/<image>.",
    )
    ca.add_recipe(p, RECIPES, default="ssl-usi")
    ca.add_data_args(p, TRAIN_FORMATS, labels=False, root_required=True)
    add_dataclass_arguments(
        p, RECIPES["ssl-usi"], group="recipe (default: the --recipe row)", only_if_given=True, recipe_name="ssl-usi"
    )
    p.set_defaults(func=_cmd_train)

    p = _verb(sub, "validate", "top-1 / top-5 of a pretraining run or weights on the validation split")
    ca.add_data_args(p, TRAIN_FORMATS, splits=("val",), labels=False, root_required=True)
    add_model_source(p, runs="`miil diversity train`")
    p.add_argument("--channels-last", action=ca.BoolAction, default=False, help="channels-last batches")
    p.set_defaults(func=_with_run_weights(validate_command))

    p = _verb(sub, "infer", "top-k classes of image files (folders are searched)")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders")
    add_model_source(p, runs="`miil diversity train`")
    ca.add_top_k(p)
    p.set_defaults(func=_with_run_weights(infer_command))

    p = _verb(sub, "measure", "diversity of a model over a dataset (filter diversity, effective rank, correlation)")
    ca.add_data_args(p, TRANSFER_FORMATS, splits=("val",), root_required=True)
    _add_pretrained_model(p)
    ca.add_img_size(p, default=224)
    ca.add_device(p)
    p.add_argument(
        "--layers", nargs="*", metavar="MODULE", help="modules to measure (default: timm stages + penultimate)"
    )
    p.add_argument("--metrics", nargs="*", metavar="NAME", help="diversity metrics to compute (default: all)")
    ca.add_batch_size(p, default=64)
    p.add_argument("--max-batches", type=int, default=None, metavar="N", help="stop after this many batches")
    p.add_argument("--materialize", action=ca.BoolAction, default=False, help="keep all features (reference path)")
    p.add_argument("--per-layer", action=ca.BoolAction, default=False, help="print every layer's values")
    ca.add_strict(p)
    ca.add_progress(p)
    ca.add_json(p)
    p.set_defaults(func=_cmd_measure)

    p = _verb(
        sub,
        "transfer",
        "linear probe / fine-tune on a downstream task with fixed hyperparameters",
        "Writes OUT_DIR/transfer.json (source top-1, diversity on the evaluation split, transfer metric) for "
        "`report`. Data: --data-format folder (ROOT/<split>/<class>/<image>, single-label) or csv (multi-label, "
        "ROOT/<split>.csv).",
    )
    ca.add_recipe(p, TRANSFER_RECIPES, default="linear-probe")
    ca.add_data_args(p, TRANSFER_FORMATS, root_required=True)
    _add_pretrained_model(p)
    ca.add_strict(p)
    p.add_argument(
        "--diversity", action=ca.BoolAction, default=True, help="measure diversity on the evaluation split first"
    )
    p.add_argument("--max-batches", type=int, default=None, metavar="N", help="diversity: stop after N batches")
    add_dataclass_arguments(
        p,
        TRANSFER_RECIPES["linear-probe"],
        group="recipe (default: the --recipe row)",
        only_if_given=True,
        recipe_name="linear-probe",
    )
    p.set_defaults(func=_cmd_transfer)

    p = _verb(sub, "report", "table and plot of transfer vs diversity")
    p.add_argument("records", nargs="+", metavar="RECORD", help="transfer.json files or transfer run folders")
    ca.add_output(p, help="write the table (Markdown)")
    p.add_argument("--plot", default=None, metavar="FILE", help="write the plot (PNG)")
    p.add_argument("--plot-metric", default="filter_diversity", metavar="NAME", help="diversity on the plot's x axis")
    p.set_defaults(func=_cmd_report)

    p = _verb(
        sub,
        "convert",
        "convert a DINO checkpoint into a timm model's backbone weights (safetensors)",
        "Reads a DINO release (dino_resnet50_pretrain.pth, dino_deitsmall16_pretrain.pth) or a DINO training "
        "checkpoint (its teacher); every backbone key must map. The output starts `train --init dino` "
        "(--init-checkpoint) and is measured with `measure --weights`.",
    )
    p.add_argument("source", metavar="SOURCE", help="the DINO checkpoint")
    p.add_argument("output", metavar="OUTPUT", help="the .safetensors file to write")
    ca.add_model(p, required=True, help="timm name of the architecture (resnet50, vit_small_patch16_224, ...)")
    p.set_defaults(func=_cmd_convert)


def main(argv: list[str] | None = None) -> int:
    """``python -m miil.diversity.cli``: the ``miil diversity`` command."""
    from miil.core.cli import package_main

    return package_main("diversity", register, argv)


if __name__ == "__main__":
    raise SystemExit(main())
