"""``miil diversity ...``: measure diversity, pretrain (self-supervised then USI), transfer, report.

Paper: "Diverse ImageNet Models Transfer Better" (arXiv 2204.09134 / WACV 2024). Examples::

    miil diversity measure --model resnet50 --checkpoint r50.safetensors --data /data/imagenet/val --output div.json
    miil diversity pretrain --recipe ssl_usi --data /data/imagenet --model resnet50 --teacher-checkpoint t.pth
    torchrun --nproc_per_node=8 -m miil.core.cli diversity pretrain --recipe dino_usi_vit_s --data /data/imagenet
    miil diversity transfer --run runs/diversity/supervised --train /data/voc/train.csv --val /data/voc/val.csv \\
        --task multi --recipe linear_probe --out-dir runs/transfer/voc-ssl_usi
    miil diversity report runs/transfer/* --output report.md --plot report.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import torch.nn as nn

from miil.core import distributed as du
from miil.core.cli import HelpFormatter
from miil.core.config import add_dataclass_arguments, dataclass_from_args, pick_recipe

from .recipes import RECIPES, TRANSFER_RECIPES

__all__ = ["register"]


def _load_model(args: argparse.Namespace) -> tuple[nn.Module, dict[str, Any]]:
    """The pretrained model: a run folder (``best.safetensors`` + sidecar) or a timm name with optional weights."""
    from miil.core.backbones import create_backbone
    from miil.core.io import load_checkpoint, load_into
    from miil.core.train import load_run_weights

    if args.run:
        state, sidecar = load_run_weights(args.run, args.which)
        config = sidecar.get("config", {})
        name = args.model or config.get("model")
        if not name:
            raise SystemExit(f"{args.run}: the run's sidecar names no model; pass --model")
        num_classes = config.get("num_classes", args.num_classes)
        model = create_backbone(name, num_classes=num_classes, **_kwargs(args))
        load_into(model, state)
        metrics = sidecar.get("metrics", {})
        return model, {"name": args.name or Path(args.run).name, "model": name, "source_top1": metrics.get("top1")}
    if not args.model:
        raise SystemExit("give --run RUN_DIR (a finished pretraining run) or --model TIMM_NAME [--checkpoint FILE]")
    model = create_backbone(args.model, pretrained=args.pretrained, num_classes=args.num_classes, **_kwargs(args))
    if args.checkpoint:
        from .convert import load_ssl_weights

        obj = load_checkpoint(args.checkpoint)
        try:
            load_into(model, obj)
        except (RuntimeError, KeyError, TypeError):
            load_ssl_weights(model, args.checkpoint)  # a backbone-only / SSL checkpoint: every backbone key must fit
    return model, {"name": args.name or args.model, "model": args.model, "source_top1": args.source_top1}


def _kwargs(args: argparse.Namespace) -> dict[str, Any]:
    return json.loads(args.model_kwargs) if args.model_kwargs else {}


def _add_model_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("pretrained model")
    g.add_argument("--run", help="a pretraining run folder (best.safetensors + best.json)")
    g.add_argument("--which", default="best", choices=("best", "last"), help="which weights of --run")
    g.add_argument("--model", help="timm model name (read from --run when given)")
    g.add_argument("--model-kwargs", help="extra timm kwargs as JSON, e.g. '{\"embed_dim\": 64}'")
    g.add_argument("--checkpoint", help="weights file for --model (full, or backbone-only SSL weights)")
    g.add_argument("--pretrained", action="store_true", help="timm pretrained weights for --model (downloads)")
    g.add_argument("--num-classes", type=int, default=1000, help="classes of --model's head")
    g.add_argument("--name", help="name of the model in reports")
    g.add_argument("--source-top1", type=float, help="source (ImageNet) top-1 of --model, for the report")
    g.add_argument("--img-size", type=int, default=224, help="input side")
    g.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")


def _write_json(path: str | Path, payload: Any) -> None:
    from miil.core.io import atomic_write_text

    if du.is_main_process():
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(payload, indent=2))


def _cmd_measure(args: argparse.Namespace) -> int:
    from miil.usi import model_mean_std

    from .measure import measure_diversity
    from .recipes import TransferRecipe
    from .transfer import load_transfer_dataset, transfer_transforms

    device = du.init_distributed(args.device)
    model, meta = _load_model(args)
    model.to(device)
    mean, std = model_mean_std(model)
    _, eval_tf = transfer_transforms(TransferRecipe(img_size=args.img_size), mean=mean, std=std)
    data = load_transfer_dataset(args.data, transform=eval_tf, root=args.root, strict=args.strict)
    features = None if args.features is None else [f for f in args.features if f]
    weights = None if args.weights is None else [w for w in args.weights if w]
    report = measure_diversity(
        model,
        data,
        layers=args.layers,
        weights=weights,
        features=features,
        batch_size=args.batch_size,
        max_batches=args.max_batches,
        device=device,
        materialize=args.materialize,
        progress=not args.no_progress,
    )
    payload = {**meta, "data": str(args.data), **report.to_dict()}
    if du.is_main_process():
        print(f"[miil diversity] {meta['name']} on {args.data} ({report.images} images):")
        for k, v in report.overall.items():
            print(f"  {k:<28} {v:.6g}")
        if args.per_layer:
            for layer, values in report.per_layer.items():
                print(f"  {layer:<40} " + "  ".join(f"{k} {v:.4g}" for k, v in values.items()))
    if args.output:
        _write_json(args.output, payload)
    return 0


def _cmd_pretrain(args: argparse.Namespace) -> int:
    from .pretrain import pretrain_folders

    cfg = dataclass_from_args(pick_recipe(RECIPES, args.recipe), args)
    root = Path(args.data) if args.data else None
    train_dir = Path(args.train_dir) if args.train_dir else (root / "train" if root else None)
    if train_dir is None or not train_dir.is_dir():
        raise SystemExit(
            f"miil diversity pretrain: {train_dir} is not a folder; give --data ROOT (ROOT/train/<class>/"
            "<image>) or --train-dir"
        )
    val_dir = Path(args.val_dir) if args.val_dir else (root / "val" if root and (root / "val").is_dir() else None)
    result = pretrain_folders(cfg, train_dir=train_dir, val_dir=val_dir, recipe_name=args.recipe)
    if du.is_main_process():
        last = result.supervised.history[-1].get("val", {})
        shown = "  ".join(f"{k} {v:.4g}" for k, v in last.items() if isinstance(v, float))
        print(
            f"[miil diversity] {cfg.model} ({cfg.init} init -> USI): last epoch {shown} -> {result.supervised.out_dir}"
        )
    return 0


def _cmd_transfer(args: argparse.Namespace) -> int:
    from miil.usi import model_mean_std

    from .measure import measure_diversity
    from .transfer import transfer, transfer_datasets

    cfg = dataclass_from_args(pick_recipe(TRANSFER_RECIPES, args.recipe), args)
    du.init_distributed(cfg.device)
    model, meta = _load_model(args)
    mean, std = model_mean_std(model)
    train_ds, val_ds = transfer_datasets(
        cfg, args.train, args.val, mean=mean, std=std, root=args.root, val_root=args.val_root, strict=args.strict
    )
    classes = getattr(train_ds, "classes", None)
    if classes is None:
        raise SystemExit(f"{args.train}: the dataset does not list its classes")
    diversity = {}
    if not args.no_diversity:
        report = measure_diversity(model, val_ds, batch_size=cfg.batch_size, max_batches=args.max_batches)
        diversity = report.overall
    result = transfer(model, train_ds, val_ds, cfg, num_classes=len(classes))
    record = {
        **meta,
        "diversity": diversity,
        **result.to_dict(),
        "recipe": args.recipe,
        "train": str(args.train),
        "val": str(args.val),
    }
    if du.is_main_process():
        print(f"[miil diversity] {meta['name']}: {cfg.mode} {cfg.task} {result.metric} {result.value:.2f}%")
    _write_json(Path(cfg.out_dir) / "transfer.json", record)
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from .report import correlations, load_records, plot_transfer, report_table

    records = load_records(args.records)
    table = report_table(records)
    print(table)
    corr = correlations(records)
    if corr:
        print("Spearman correlation with the transfer metric: " + ", ".join(f"{k} {v:+.3f}" for k, v in corr.items()))
    if args.output:
        text = table + ("\n\nSpearman: " + json.dumps(corr) if corr else "") + "\n"
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(text)
    if args.plot:
        print(f"plot: {plot_transfer(records, args.plot, diversity=args.diversity)}")
    return 0


def register(parser: argparse.ArgumentParser) -> None:
    """Add ``measure``, ``pretrain``, ``transfer`` and ``report`` to ``miil diversity``.

    Args:
        parser: The ``miil diversity`` parser.
    """
    parser.description = "Diverse ImageNet Models Transfer Better (arXiv 2204.09134): diversity, pretraining, transfer"
    sub = parser.add_subparsers(dest="diversity_command", metavar="COMMAND")

    p = sub.add_parser("measure", help="diversity of a model over a dataset", formatter_class=HelpFormatter)
    _add_model_options(p)
    p.add_argument("--data", required=True, help="image folder (<class>/<image>) or multi-label CSV")
    p.add_argument("--root", help="image root of a CSV (default: its folder)")
    p.add_argument("--layers", nargs="*", help="module names to measure (default: timm stages + penultimate)")
    p.add_argument("--weights", nargs="*", help="weight metrics (default: all; give '' for none)")
    p.add_argument("--features", nargs="*", help="feature metrics (default: all; give '' for none)")
    p.add_argument("--batch-size", type=int, default=64, help="batch size")
    p.add_argument("--max-batches", type=int, help="stop after this many batches")
    p.add_argument("--materialize", action="store_true", help="keep all features (reference path)")
    p.add_argument("--per-layer", action="store_true", help="print every layer's values")
    p.add_argument("--strict", action="store_true", help="fail on unreadable images")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--output", help="write the report as JSON")
    p.set_defaults(func=_cmd_measure)

    p = sub.add_parser("pretrain", help="self-supervised init, then USI supervised KD", formatter_class=HelpFormatter)
    p.add_argument("--recipe", default="ssl_usi", choices=sorted(RECIPES), help="paper setting")
    p.add_argument("--data", help="ROOT with ROOT/train/<class>/<image> (and ROOT/val)")
    p.add_argument("--train-dir", help="training folder instead of ROOT/train")
    p.add_argument("--val-dir", help="validation folder instead of ROOT/val")
    recipe_group = "recipe overrides (defaults come from --recipe)"
    add_dataclass_arguments(p, RECIPES["ssl_usi"], group=recipe_group, only_if_given=True)
    p.set_defaults(func=_cmd_pretrain)

    p = sub.add_parser("transfer", help="linear probe / fine-tune on a downstream task", formatter_class=HelpFormatter)
    _add_model_options(p)
    p.add_argument("--recipe", default="linear_probe", choices=sorted(TRANSFER_RECIPES), help="fixed hyperparameters")
    p.add_argument("--train", required=True, help="training folder (<class>/<image>) or multi-label CSV")
    p.add_argument("--val", required=True, help="evaluation folder or CSV")
    p.add_argument("--root", help="image root of the CSVs")
    p.add_argument("--val-root", help="image root of the evaluation CSV (default: --root)")
    p.add_argument("--strict", action="store_true", help="fail on unreadable images")
    p.add_argument("--no-diversity", action="store_true", help="do not measure diversity on the evaluation split")
    p.add_argument("--max-batches", type=int, help="diversity: stop after this many batches")
    add_dataclass_arguments(
        p, TRANSFER_RECIPES["linear_probe"], exclude=("img_size", "device"), group=recipe_group, only_if_given=True
    )
    p.set_defaults(func=_cmd_transfer)

    p = sub.add_parser("report", help="table and plot of transfer vs diversity", formatter_class=HelpFormatter)
    p.add_argument("records", nargs="+", help="transfer.json files or transfer run folders")
    p.add_argument("--output", help="write the table (Markdown)")
    p.add_argument("--plot", help="write the plot (PNG)")
    p.add_argument("--diversity", default="filter_diversity", help="diversity value on the plot's x axis")
    p.set_defaults(func=_cmd_report)
