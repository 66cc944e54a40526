"""``miil album recipes | train | validate | infer | convert``: PETA from the command line (CPU, GPU, or torchrun).

Paper: PETA (arXiv 2109.12499). The options follow the ``miil`` dialect (miil-core README). Datasets come in the
``--data-format`` of :mod:`miil.album.formats` (``ml-cufed``, ``cufed``, ``pec``, ``folder``), whose defaults read
the datasets as distributed and the miniatures of :mod:`miil.album.miniature` without further flags::

    miil album train --data-root ML_CUFED --out-dir runs/peta
    miil album validate --weights runs/peta --data-root ML_CUFED --json metrics.json
    miil album infer ML_CUFED/images/0_55737440@N02 --weights runs/peta --json album.json
    miil album convert peta_32.pth peta_32.safetensors

This module imports no torch: the verbs import what they need when they run.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from pathlib import Path
from typing import Any

from miil.core import cli_args
from miil.core.cli import HelpFormatter
from miil.core.config import add_dataclass_arguments, dataclass_from_args, pick_recipe, recipe_to_dict
from miil.core.errors import UserError

from .formats import DATA_FORMATS, default_importance_file, read_albums, resolve_split
from .recipes import RECIPES, PETARecipe

__all__ = ["main", "register"]

DEFAULT_RECIPE = "peta-ml-cufed"
RELEASE_RECIPE = "peta-32-release"
# Recipe fields that describe the model (all ``convert`` needs to rebuild a released checkpoint's architecture).
_MODEL_FIELDS = (
    "model",
    "aggregator",
    "depth",
    "num_heads",
    "ffn_dim",
    "transformer_dropout",
    "activation",
    "norm_first",
    "pos_embed",
    "mean_score",
    "album_size",
    "img_size",
    "pad",
)


def _read_classes(path: str) -> list[str]:
    file = Path(path)
    if not file.is_file():
        raise UserError(f"--classes {path} does not exist or is not a file (one event name per line)")
    names = [line.strip() for line in file.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not names or len(set(names)) != len(names):
        raise UserError(f"--classes {path} must list distinct event names, one per line")
    return names


def _print_skipped(prog: str, skipped: list) -> None:
    from miil.core.evaluate import print_skipped_summary

    print_skipped_summary(skipped, prog=prog)


# ----------------------------------------------------------------------------------------------------------- train
def _train(args: argparse.Namespace) -> int:
    from miil.core.cli_args import print_plot_hint
    from miil.core.distributed import is_main_process
    from miil.core.evaluate import exit_status

    from .data import album_classes
    from .train import album_datasets, build_model, make_trainer

    recipe = dataclass_from_args(pick_recipe(RECIPES, args.recipe), args)
    if args.data_root is None:
        raise UserError("train needs --data-root (the dataset's top folder)")
    train_split = resolve_split(args.data_root, args.train_split, "train")
    val_split = resolve_split(args.data_root, args.val_split, "val")
    train_records = read_albums(
        args.data_format, args.data_root, split=train_split, labels=args.train_labels, part="train"
    )
    val_records = None
    if val_split is not None or args.val_split is not None:
        labels = args.val_labels or args.train_labels
        val_records = read_albums(args.data_format, args.data_root, split=val_split, labels=labels, part="val")
    classes = album_classes(train_records)
    if args.classes:
        given = _read_classes(args.classes)
        missing = sorted({e for r in train_records + (val_records or []) for e in r.labels} - set(given))
        if missing:
            raise UserError(f"events {missing} of the data are not in --classes {args.classes}")
        classes = given
    elif val_records:
        unseen = sorted({e for r in val_records for e in r.labels} - set(classes))
        if unseen:
            raise UserError(
                f"validation events {unseen} never occur in the training albums, so the model cannot learn them; "
                "choose other splits, or list every event with --classes FILE"
            )
    recipe = dataclasses.replace(recipe, num_classes=len(classes))
    train_ds, val_ds = album_datasets(recipe, train_records, classes, val_records, strict=args.strict)
    model = build_model(recipe, backbone_kwargs=args.model_kwargs or None)
    run_info = {
        "recipe": args.recipe,
        "classes": classes,
        "model_kwargs": args.model_kwargs or None,
        "data": {
            "format": args.data_format,
            "root": str(args.data_root),
            "train_split": None if train_split is None else str(train_split),
            "val_split": None if val_split is None else str(val_split),
        },
    }
    result = make_trainer(recipe, model, train_ds, val_dataset=val_ds, run_info=run_info).fit()
    if is_main_process():
        if not math.isnan(result.best_metric):  # validation ran
            print(
                f"best {recipe.eval_metric or 'metric'} {result.best_metric:.2f} (epoch {result.best_epoch + 1}, "
                f"{result.best_source}) -> {result.out_dir}"
            )
        else:
            print(f"trained {recipe.epochs} epochs (no validation split) -> {result.out_dir}")
    _print_skipped("miil album train", result.skipped)
    print_plot_hint(result.out_dir)
    return exit_status(result.skipped)


# ----------------------------------------------------------------------------------------------------------- load
def _load(args: argparse.Namespace, device):
    from .inference import load_album_model

    recipe = pick_recipe(RECIPES, args.recipe) if args.recipe else None
    return load_album_model(args.weights, recipe=recipe, device=device)


def _precision(args: argparse.Namespace, loaded, device) -> str:
    from miil.core.evaluate import choose_precision

    return choose_precision(loaded.precision, amp=args.amp, amp_dtype=args.amp_dtype, device=device)


def _batch_size(args: argparse.Namespace, recipe: PETARecipe) -> int:
    # The run's own validation batches by default: the same padding per batch as the numbers that picked "best".
    return args.batch_size or recipe.eval_batch_size or 2 * recipe.batch_size


def _human_scores(path: Path | None):
    from .data import load_importance_scores

    if path is None:
        return None
    try:
        return load_importance_scores(path)
    except (FileNotFoundError, ValueError) as err:
        raise UserError(f"--importance-file: {err}") from None


# -------------------------------------------------------------------------------------------------------- validate
def _validate(args: argparse.Namespace) -> int:
    from miil.core.distributed import init_distributed, is_main_process
    from miil.core.evaluate import exit_status, write_json

    from .data import AlbumDataset
    from .evaluation import AlbumReportMeter, evaluate_albums
    from .export import write_album_reports

    device = init_distributed(args.device)
    loaded = _load(args, device)
    rec = loaded.recipe
    split = resolve_split(args.data_root, args.val_split, "val")
    records = read_albums(args.data_format, args.data_root, split=split, labels=args.val_labels, part="val")
    unknown = sorted({e for r in records for e in r.labels} - set(loaded.classes))
    if unknown:
        raise UserError(
            f"events {unknown} of the data are not among the model's {len(loaded.classes)} events "
            f"({', '.join(loaded.classes[:8])}{' ...' if len(loaded.classes) > 8 else ''}); validate on data of the "
            "same events, or pass the weights of a model trained on them"
        )
    importance = Path(args.importance_file) if args.importance_file else default_importance_file(args.data_root)
    human = _human_scores(importance)
    dataset = AlbumDataset(
        records, loaded.classes, album_size=rec.album_size, img_size=rec.img_size, pad=rec.pad, strict=args.strict
    )
    meter = AlbumReportMeter(
        [r.album_id for r in records], loaded.classes, human=human, keep_reports=args.output is not None
    )
    precision = _precision(args, loaded, device)
    report = evaluate_albums(
        loaded.model,
        dataset,
        meter,
        device=device,
        precision=precision,
        batch_size=_batch_size(args, rec),
        num_workers=args.num_workers,
        progress=args.progress,
    )
    metrics = report.metrics
    if is_main_process():
        line = f"albums {report.samples}"
        for key in ("mAP", "top1"):
            if key in metrics:
                line += f" | {key} {metrics[key]:.2f}"
        for key in ("last_layer", "rollout"):
            if f"spearman_{key}" in metrics:
                albums = int(metrics[f"spearman_{key}_albums"])
                line += f" | spearman ({key}) {metrics[f'spearman_{key}']:.4f} over {albums} albums"
        print(line + f" | {precision}")
        if human is not None and not any("importance" in r for r in meter.reports):
            print("note: the mean-of-predictions baseline has no attention, so no importance to correlate")
        if args.output is not None:
            write_album_reports(args.output, meter.reports)
            print(f"importance reports -> {args.output}")
        if args.json is not None:
            write_json(args.json, {**report.as_dict(), "weights": loaded.source, "classes": loaded.classes})
            print(f"report -> {args.json}")
    _print_skipped("miil album validate", report.skipped)
    return exit_status(report.skipped)


# ----------------------------------------------------------------------------------------------------------- infer
def _infer_records(folders: list[str]):
    from .data import AlbumRecord, list_album_images

    records = []
    for folder in folders:
        path = Path(folder)
        images = list_album_images(path) if path.is_dir() else ()
        records.append(AlbumRecord(path.name or str(path), path, images, ()))
    return records


def _infer_importance(args: argparse.Namespace, folders: list[str]) -> Path | None:
    if args.importance_file:
        return Path(args.importance_file)
    roots = {Path(f).resolve().parent.parent for f in folders}  # ML-CUFED: <root>/images/<album_id>
    found = [default_importance_file(root) for root in roots]
    return found[0] if len(found) == 1 else None


def _print_album(report: dict[str, Any], top_k: int, threshold: float, num_important: int) -> None:
    events = list(report["events"].items())
    chosen = [(e, p) for e, p in events[:top_k] if p >= threshold]
    print(f"album {report['album']} ({len(report['images'])} photos)")
    print("  events: " + (", ".join(f"{e} {p:.3f}" for e, p in chosen) or f"none above {threshold}"))
    print("  top scores: " + ", ".join(f"{e} {p:.3f}" for e, p in events[:top_k]))
    if "ranking" in report:
        scores = dict(zip(report["images"], report["importance"]["last_layer"]))
        top = report["ranking"][:num_important]
        print("  most important photos: " + ", ".join(f"{n} ({scores[n]:.3f})" for n in top))
        if report.get("human_spearman"):
            print("  spearman vs human importance: " + json.dumps(report["human_spearman"]))


def _infer(args: argparse.Namespace) -> int:
    from miil.core.distributed import init_distributed, is_main_process
    from miil.core.evaluate import exit_status, write_json

    from .data import AlbumDataset
    from .evaluation import AlbumReportMeter, evaluate_albums

    device = init_distributed(args.device)
    loaded = _load(args, device)
    rec = loaded.recipe
    records = _infer_records(args.albums)
    human = _human_scores(_infer_importance(args, args.albums))
    dataset = AlbumDataset(
        records, loaded.classes, album_size=rec.album_size, img_size=rec.img_size, pad=rec.pad, strict=args.strict
    )
    meter = AlbumReportMeter(
        [r.album_id for r in records], loaded.classes, targets=False, human=human, keep_reports=True
    )
    precision = _precision(args, loaded, device)
    report = evaluate_albums(
        loaded.model,
        dataset,
        meter,
        device=device,
        precision=precision,
        batch_size=args.batch_size or 1,
        num_workers=args.num_workers,
        progress=args.progress,
        desc="infer",
    )
    if is_main_process():
        for album in meter.reports:
            _print_album(album, args.top_k, args.threshold, args.num_important)
        if args.json is not None:
            payload = {**report.as_dict(), "weights": loaded.source, "classes": loaded.classes}
            payload["albums"] = meter.reports
            write_json(args.json, payload)
            print(f"report -> {args.json}")
    _print_skipped("miil album infer", report.skipped)
    return exit_status(report.skipped)


# --------------------------------------------------------------------------------------------------------- convert
def _convert(args: argparse.Namespace) -> int:
    from miil.core.io import atomic_write_text, save_safetensors

    from .inference import load_album_model

    out = Path(args.output)
    if out.suffix.lower() != ".safetensors":
        raise UserError(f"OUTPUT must end in .safetensors, got {out}")
    recipe = dataclass_from_args(pick_recipe(RECIPES, args.recipe), args)
    loaded = load_album_model(args.source, recipe=recipe, model_kwargs=args.model_kwargs or None)
    save_safetensors(loaded.model.state_dict(), out, metadata={"source": Path(args.source).name})
    sidecar = {
        "config": recipe_to_dict(loaded.recipe),
        "run_info": {
            "recipe": args.recipe,
            "classes": loaded.classes,
            "model_kwargs": loaded.model_kwargs,
            "converted_from": str(args.source),
        },
        "eval_precision": "fp32",
    }
    atomic_write_text(out.with_suffix(".json"), json.dumps(sidecar, indent=2) + "\n")
    print(f"converted {args.source} -> {out} (+ {out.with_suffix('.json').name}), {len(loaded.classes)} events")
    return 0


# -------------------------------------------------------------------------------------------------------- parsers
def _add_data(p: argparse.ArgumentParser, splits: tuple[str, ...], *, root_required: bool) -> None:
    group = cli_args.add_data_args(p, DATA_FORMATS, splits=splits, root_required=root_required)
    group.description = (
        "ml-cufed / cufed: <root>/images/<album>/ + event_type.json; pec / folder: <root>/<event>/<album>/. A split "
        "is 'all', a file listing albums, or a name S for <root>/S_split.txt (default: train_split.txt, and "
        "val_split.txt or test_split.txt, when the root has them)"
    )


def _add_eval_options(p: argparse.ArgumentParser) -> None:
    cli_args.add_weights(p, help="a run folder of `miil album train`, a .safetensors with its .json, or peta_32.pth")
    cli_args.add_recipe(
        p, RECIPES, default=None, help=f"the recipe of an original .pth checkpoint (default: {RELEASE_RECIPE})"
    )
    cli_args.add_batch_size(p, default=None, help="albums per batch (default: the run's validation batch)")
    cli_args.add_num_workers(p)
    cli_args.add_device(p)
    cli_args.add_amp(p, dtype=True, default=None, help="autocast (default: the precision the run validated in)")
    cli_args.add_progress(p)
    cli_args.add_strict(p)
    p.add_argument(
        "--importance-file",
        metavar="FILE",
        default=None,
        help="human importance JSON (ML-CUFED's image_importance.json; default: the one at the data root)",
    )


def register(parser: argparse.ArgumentParser) -> None:
    """Add the ``recipes``, ``train``, ``validate``, ``infer`` and ``convert`` verbs to ``miil album``."""
    parser.description = "PETA: photo-album event recognition with a transformer over the album's photos."
    sub = parser.add_subparsers(dest="album_command", metavar="COMMAND")
    cli_args.add_recipes_verb(sub, RECIPES)

    p = sub.add_parser("train", help="train PETA or the mean baseline", formatter_class=HelpFormatter)
    cli_args.add_recipe(p, RECIPES, default=DEFAULT_RECIPE)
    _add_data(p, ("train", "val"), root_required=False)
    cli_args.add_classes(p, help="event names in output order, one per line (default: the training data's, sorted)")
    cli_args.add_model_kwargs(p)
    cli_args.add_strict(p)
    add_dataclass_arguments(
        p,
        RECIPES[DEFAULT_RECIPE],
        exclude=("num_classes",),
        group="recipe overrides (default: from --recipe)",
        only_if_given=True,
        recipe_name=DEFAULT_RECIPE,
    )
    p.set_defaults(func=_train)

    p = sub.add_parser("validate", help="mAP, top-1 and importance Spearman on albums", formatter_class=HelpFormatter)
    _add_eval_options(p)
    _add_data(p, ("val",), root_required=True)
    cli_args.add_json(p, help="write metrics, counts and skipped inputs to FILE")
    cli_args.add_output(p, help="write every album's importance report (events, CLS attention, rollout) to FILE")
    p.set_defaults(func=_validate)

    p = sub.add_parser("infer", help="events and most important photos of albums", formatter_class=HelpFormatter)
    p.add_argument("albums", nargs="+", metavar="ALBUM", help="folders of the albums' photos")
    _add_eval_options(p)
    cli_args.add_top_k(p, default=3, help="events shown per album")
    cli_args.add_threshold(p, default=0.5, help="probability an event needs (the original: 0.85)")
    p.add_argument("--num-important", type=int, default=5, metavar="N", help="most important photos shown")
    cli_args.add_json(p, help="write every album's report (events, importance) and skipped inputs to FILE")
    p.set_defaults(func=_infer)

    p = sub.add_parser("convert", help="original peta_32.pth -> safetensors + sidecar", formatter_class=HelpFormatter)
    p.add_argument("source", metavar="SOURCE", help="original PETA checkpoint (peta_32.pth)")
    p.add_argument("output", metavar="OUTPUT", help="output .safetensors (a .json sidecar is written beside it)")
    cli_args.add_recipe(p, RECIPES, default=RELEASE_RECIPE, help="the recipe the checkpoint was trained with")
    cli_args.add_model_kwargs(p)
    add_dataclass_arguments(
        p,
        RECIPES[RELEASE_RECIPE],
        exclude=tuple(f.name for f in dataclasses.fields(PETARecipe) if f.name not in _MODEL_FIELDS),
        group="model overrides (default: from --recipe)",
        only_if_given=True,
        recipe_name=RELEASE_RECIPE,
    )
    p.set_defaults(func=_convert)


def main(argv: list[str] | None = None) -> int:
    """``python -m miil.album.cli``: the same as ``miil album``."""
    from miil.core.cli import package_main

    return package_main("album", register, argv)


if __name__ == "__main__":
    sys.exit(main())
