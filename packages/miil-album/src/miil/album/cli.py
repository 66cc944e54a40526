"""``miil album train | validate | infer | convert``: PETA from the command line (CPU, one GPU, or torchrun).

Paper: PETA (arXiv 2109.12499). Data come in the layouts of :mod:`miil.album.data.layouts`: ``--layout folders``
(``<root>/<event>/<album_id>/*.jpg``: PETA's ``albums/``, PEC, CUFED by event) or ``--layout cufed``
(``<root>/images/<album_id>/*.jpg`` + ``event_type.json``: ML-CUFED / CUFED as distributed).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from miil.core.cli import HelpFormatter
from miil.core.config import add_dataclass_arguments, dataclass_from_args, pick_recipe, recipe_to_dict
from miil.core.distributed import is_main_process
from miil.core.io import atomic_write_text, save_safetensors

from .data import (
    AlbumDataset,
    album_classes,
    collate_albums,
    load_event_labels,
    load_importance_scores,
    read_album_list,
    read_cufed,
    read_event_folders,
)
from .export import album_report, write_album_reports
from .importance import mean_ignoring_nan
from .inference import load_album_model, predict_album
from .metrics import EventMeter
from .models import PETA
from .recipes import RECIPES, PETARecipe
from .train import album_datasets, build_model, make_trainer

__all__ = ["register"]


def _add_data_arguments(p: argparse.ArgumentParser, *, split_help: str) -> None:
    g = p.add_argument_group("data")
    g.add_argument("--data", required=True, help="dataset root")
    g.add_argument("--layout", choices=("folders", "cufed"), default="folders", help="on-disk layout of --data")
    g.add_argument("--split", default=None, help=split_help)
    g.add_argument(
        "--labels-file",
        default=None,
        help="album -> events JSON (folders: optional multi-label file; cufed: default <data>/event_type.json)",
    )


def _records(root: str, layout: str, split: str | None, labels_file: str | None):
    albums = read_album_list(split) if split else None
    if layout == "cufed":
        return read_cufed(root, labels_file=labels_file or "event_type.json", albums=albums)
    labels = load_event_labels(labels_file) if labels_file else None
    return read_event_folders(root, labels=labels, albums=albums)


def _backbone_kwargs(text: str | None) -> dict | None:
    if not text:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise SystemExit(f"--backbone-kwargs must be a JSON object, got {text!r}: {err}") from None
    if not isinstance(value, dict):
        raise SystemExit(f"--backbone-kwargs must be a JSON object, got {text!r}")
    return value


# ----------------------------------------------------------------------------------------------------------- train
def _add_recipe_overrides(p: argparse.ArgumentParser) -> None:
    """One option per recipe field; only options given on the command line override the chosen --recipe."""
    add_dataclass_arguments(
        p,
        PETARecipe(),
        exclude=("resume", "num_classes"),
        group="recipe overrides (default: from --recipe)",
        only_if_given=True,
        recipe_name="peta_ml_cufed",
    )


def _train(args: argparse.Namespace) -> int:
    recipe = dataclass_from_args(pick_recipe(RECIPES, args.recipe), args)
    train_records = _records(args.data, args.layout, args.split, args.labels_file)
    val_records = None
    if args.val_data or args.val_split:
        val_records = _records(args.val_data or args.data, args.layout, args.val_split, args.labels_file)
    classes = album_classes(train_records + (val_records or []))
    if args.classes:
        given = [c.strip() for c in args.classes.split(",") if c.strip()]
        missing = [c for c in classes if c not in given]
        if missing:
            raise SystemExit(f"events {missing} of the data are not in --classes")
        classes = given
    recipe = dataclasses.replace(recipe, num_classes=len(classes))
    train_ds, val_ds = album_datasets(recipe, train_records, classes, val_records)
    backbone_kwargs = _backbone_kwargs(args.backbone_kwargs)
    model = build_model(recipe, backbone_kwargs=backbone_kwargs)
    run_info = {
        "recipe": args.recipe,
        "classes": classes,
        "backbone_kwargs": backbone_kwargs,
        "data": {"root": str(args.data), "layout": args.layout, "split": args.split, "val_split": args.val_split},
    }
    result = make_trainer(recipe, model, train_ds, val_dataset=val_ds, run_info=run_info).fit()
    if is_main_process():
        best = "n/a" if math.isnan(result.best_metric) else f"{result.best_metric:.2f}"
        print(
            f"best {recipe.eval_metric or 'metric'} {best} (epoch {result.best_epoch + 1}, {result.best_source}) "
            f"-> {result.out_dir}"
        )
    return 0


# -------------------------------------------------------------------------------------------------------- validate
def _checkpoint_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--checkpoint",
        required=True,
        help="run directory of `miil album train`, a .safetensors with its .json sidecar, or an original peta_32.pth",
    )
    p.add_argument("--recipe", default=None, help=f"recipe for original checkpoints: {', '.join(sorted(RECIPES))}")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")


def _device(name: str) -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu") if name == "auto" else torch.device(name)


def _load(args: argparse.Namespace):
    recipe = pick_recipe(RECIPES, args.recipe) if args.recipe else None
    return load_album_model(args.checkpoint, recipe=recipe, device=_device(args.device))


@torch.no_grad()
def _validate(args: argparse.Namespace) -> int:
    loaded = _load(args)
    rec = loaded.recipe
    records = _records(args.data, args.layout, args.split, args.labels_file)
    unknown = sorted({e for r in records for e in r.labels} - set(loaded.classes))
    if unknown:
        raise SystemExit(f"events {unknown} of the data are not among the model's classes {loaded.classes}")
    ds = AlbumDataset(records, loaded.classes, album_size=rec.album_size, img_size=rec.img_size, pad=rec.pad)
    loader = DataLoader(ds, batch_size=args.batch_size, num_workers=args.num_workers, collate_fn=collate_albums)
    human_all = load_importance_scores(args.importance_file) if args.importance_file else None
    device = next(loaded.model.parameters()).device
    meter = EventMeter()
    reports, correlations = [], {"last_layer": [], "rollout": []}
    want_attention = isinstance(loaded.model, PETA) and (human_all is not None or args.reports)
    for images, targets, mask, indices in loader:
        images, mask = images.to(device), mask.to(device)
        if want_attention:
            logits, attention = loaded.model(images, mask, return_attention=True)
        else:
            logits, attention = loaded.model(images, mask), None
        meter.update(logits.float().cpu(), targets)
        if attention is None:
            continue
        for row, index in enumerate(indices.tolist()):
            record = ds.records[index]
            n = int(mask[row].sum())
            names = ds.sampled_images(index)
            if len(names) != n:  # an unreadable photo was dropped: names and attention no longer line up
                continue
            human = human_all.get(record.album_id) if human_all is not None else None
            report = album_report(
                record.album_id,
                names,
                logits[row].float().sigmoid().cpu(),
                attention[row, :, :, : n + 1, : n + 1].float().cpu(),
                loaded.classes,
                human=human,
            )
            for key, value in (report.get("human_spearman") or {}).items():
                correlations[key].append(math.nan if value is None else value)
            if args.reports:
                reports.append(report)
    metrics = meter.compute()
    line = f"albums {len(ds)} | mAP {metrics['mAP']:.2f} | top1 {metrics['top1']:.2f}"
    if human_all is not None and not want_attention:
        print("note: the mean-of-predictions baseline has no attention, so no importance to correlate")
    if human_all is not None and want_attention:
        for key, values in correlations.items():
            metrics[f"spearman_{key}"] = mean_ignoring_nan(values)
            line += f" | spearman ({key}) {metrics[f'spearman_{key}']:.4f} over {len(values)} albums"
    print(line)
    if args.reports and reports:
        write_album_reports(args.reports, reports)
        print(f"importance reports -> {args.reports}")
    if args.metrics_json:
        atomic_write_text(args.metrics_json, json.dumps(metrics, indent=2) + "\n")
    return 0


# ----------------------------------------------------------------------------------------------------------- infer
def _infer(args: argparse.Namespace) -> int:
    loaded = _load(args)
    human = None
    if args.importance_file:
        album = Path(args.album).name
        human = load_importance_scores(args.importance_file).get(album)
        if human is None:
            print(f"note: album {album} has no entry in {args.importance_file}", file=sys.stderr)
    report = predict_album(loaded, args.album, human=human)
    events = list(report["events"].items())
    chosen = [(e, p) for e, p in events[: args.top_k] if p >= args.threshold]
    print(f"album {report['album']} ({len(report['images'])} photos)")
    print("events: " + (", ".join(f"{e} {p:.3f}" for e, p in chosen) or f"none above {args.threshold}"))
    print("top scores: " + ", ".join(f"{e} {p:.3f}" for e, p in events[: args.top_k]))
    if "ranking" in report:
        scores = dict(zip(report["images"], report["importance"]["last_layer"]))
        top = report["ranking"][: args.num_important]
        print("most important photos: " + ", ".join(f"{n} ({scores[n]:.3f})" for n in top))
        if report.get("human_spearman"):
            print("spearman vs human importance: " + json.dumps(report["human_spearman"]))
    if args.json:
        write_album_reports(args.json, [report])
        print(f"report -> {args.json}")
    return 0


# --------------------------------------------------------------------------------------------------------- convert
def _convert(args: argparse.Namespace) -> int:
    base = pick_recipe(RECIPES, args.recipe)
    recipe = dataclass_from_args(base, args)
    loaded = load_album_model(args.source, recipe=recipe, backbone_kwargs=_backbone_kwargs(args.backbone_kwargs))
    out = Path(args.output)
    if out.suffix.lower() != ".safetensors":
        raise SystemExit(f"output must end in .safetensors, got {out}")
    save_safetensors(loaded.model.state_dict(), out, metadata={"source": Path(args.source).name})
    sidecar = {
        "config": recipe_to_dict(loaded.recipe),
        "run_info": {
            "classes": loaded.classes,
            "backbone_kwargs": loaded.backbone_kwargs,
            "converted_from": str(args.source),
        },
    }
    atomic_write_text(out.with_suffix(".json"), json.dumps(sidecar, indent=2) + "\n")
    print(f"converted {args.source} -> {out} (+ {out.with_suffix('.json').name}), {len(loaded.classes)} events")
    return 0


def register(parser: argparse.ArgumentParser) -> None:
    """Add the ``train``, ``validate``, ``infer`` and ``convert`` sub-commands to ``miil album``."""
    parser.description = "PETA: photo-album event recognition with a transformer over the album's photos."
    sub = parser.add_subparsers(dest="album_command", metavar="COMMAND")

    p = sub.add_parser("train", help="train PETA or the mean baseline", formatter_class=HelpFormatter)
    p.add_argument("--recipe", default="peta_ml_cufed", help=f"one of {', '.join(sorted(RECIPES))}")
    _add_data_arguments(p, split_help="file listing the training albums (default: every album under --data)")
    p.add_argument("--val-data", default=None, help="root of the validation albums (none: --data)")
    p.add_argument("--val-split", default=None, help="file listing the validation albums")
    p.add_argument(
        "--classes", default=None, help="comma-separated event names in output order (none: the data's, sorted)"
    )
    p.add_argument(
        "--backbone-kwargs", default=None, help="timm keyword arguments as JSON, e.g. '{\"drop_path_rate\": 0.1}'"
    )
    _add_recipe_overrides(p)
    p.add_argument("--resume", action="store_true", help="continue the run in --out-dir")
    p.set_defaults(func=_train)

    p = sub.add_parser("validate", help="mAP, top-1 and importance Spearman on albums", formatter_class=HelpFormatter)
    _checkpoint_arguments(p)
    _add_data_arguments(p, split_help="file listing the albums to evaluate (default: every album)")
    p.add_argument("--importance-file", default=None, help="human importance JSON (ML-CUFED image_importance.json)")
    p.add_argument("--reports", default=None, help="write the per-album importance reports to this JSON file")
    p.add_argument("--metrics-json", default=None, help="write the metrics to this JSON file")
    p.add_argument("--batch-size", type=int, default=4, help="albums per batch")
    p.add_argument("--num-workers", type=int, default=0, help="data-loader workers")
    p.set_defaults(func=_validate)

    p = sub.add_parser("infer", help="events and most important photos of one album", formatter_class=HelpFormatter)
    p.add_argument("album", help="folder of the album's photos")
    _checkpoint_arguments(p)
    p.add_argument("--top-k", type=int, default=3, help="report at most this many events")
    p.add_argument("--threshold", type=float, default=0.5, help="probability an event needs (the original: 0.85)")
    p.add_argument("--num-important", type=int, default=5, help="how many of the most important photos to print")
    p.add_argument("--importance-file", default=None, help="human importance JSON, for a Spearman correlation")
    p.add_argument("--json", default=None, help="write the album report (events, importance) to this JSON file")
    p.set_defaults(func=_infer)

    p = sub.add_parser("convert", help="original peta_32.pth -> safetensors + sidecar", formatter_class=HelpFormatter)
    p.add_argument("source", help="original PETA checkpoint (peta_32.pth)")
    p.add_argument("output", help="output .safetensors (a .json sidecar is written beside it)")
    p.add_argument("--recipe", default="peta_32_release", help="recipe of the checkpoint")
    p.add_argument("--backbone-kwargs", default=None, help="timm keyword arguments of the backbone as JSON")
    _add_recipe_overrides(p)
    p.set_defaults(func=_convert)
