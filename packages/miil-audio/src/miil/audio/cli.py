"""``miil audio`` subcommands: train, validate, infer, convert.

Paper: Gazneli et al., 2022 (arXiv 2204.11479). ``train`` runs a recipe (every field is an option; the resolved
recipe is written into the run folder) through the core engine, so ``torchrun --nproc-per-node N -m miil.core.cli
audio train ...`` trains with DDP. ``validate`` scores finished runs (one per fold: a table and the mean over
folds), ``infer`` prints the top classes of audio files, ``convert`` turns an original checkpoint into safetensors.

    miil audio train --recipe esc50_eat_s --data-root ESC-50-master --fold 1 --out-dir runs/esc50/fold1
    miil audio validate runs/esc50/fold1 runs/esc50/fold2 runs/esc50/fold3 runs/esc50/fold4 runs/esc50/fold5
    miil audio infer dog.wav --run runs/esc50/fold1 --top-k 5
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
from pathlib import Path

import numpy as np
import torch

from miil.core import distributed as du
from miil.core.cli import HelpFormatter
from miil.core.config import add_dataclass_arguments, dataclass_from_args, pick_recipe
from miil.core.io import load_checkpoint, save_safetensors

from .convert import load_original_checkpoint
from .eat import EAT
from .io import load_audio
from .recipes import RECIPES, EATRecipe
from .training import build_datasets, build_model, evaluate, load_run, train

__all__ = ["register"]


def _recipe_from_argv(args: argparse.Namespace) -> EATRecipe:
    return dataclass_from_args(pick_recipe(RECIPES, args.recipe), args)


def _train(args: argparse.Namespace) -> int:
    recipe = _recipe_from_argv(args)
    result = train(recipe, run_info={"recipe": args.recipe})
    if du.is_main_process():
        print(
            json.dumps(
                {
                    "out_dir": str(result.out_dir),
                    "best_metric": result.best_metric,
                    "best_epoch": result.best_epoch,
                    "best_source": result.best_source,
                }
            )
        )
    return 0


def _model_for(args: argparse.Namespace, target: str) -> tuple[EAT, EATRecipe, dict]:
    """A run folder (its recipe and classes), or a checkpoint file with --recipe."""
    path = Path(target)
    if path.is_dir():
        return load_run(path, args.which)
    if not path.is_file():
        raise FileNotFoundError(f"{target} is neither a run folder nor a checkpoint file")
    recipe = pick_recipe(RECIPES, args.recipe) if args.recipe else None
    if path.suffix == ".safetensors":
        if recipe is None:
            raise ValueError(f"{target} is a bare checkpoint: pass --recipe so the model can be built")
        model = build_model(recipe)
        model.load_state_dict(load_checkpoint(path), strict=True)
    else:
        model = load_original_checkpoint(path, num_heads=args.num_heads)
        if recipe is None:
            recipe = dataclasses.replace(RECIPES["esc50_eat_s"], seq_len=model.seq_len, num_classes=model.num_classes)
    return model, recipe, {}


def _validate(args: argparse.Namespace) -> int:
    rows = []
    for target in args.runs:
        model, recipe, info = _model_for(args, target)
        changes = {k: getattr(args, k) for k in ("data_root", "fold", "val_split") if getattr(args, k) is not None}
        changes["strict"] = args.strict
        recipe = dataclasses.replace(recipe, **changes)
        _, val = build_datasets(recipe, train=False)
        if val is None:
            raise FileNotFoundError(f"no validation split {recipe.val_split!r} under {recipe.data_root}")
        metrics = evaluate(
            model,
            val,
            multilabel=recipe.multilabel,
            batch_size=args.batch_size,
            num_workers=args.num_workers,
            device=args.device,
        )
        rows.append({"run": target, "fold": recipe.fold, **metrics})
    if du.is_main_process():
        keys = [k for k in rows[0] if k not in ("run", "fold", "clips", "skipped_unreadable")]
        print("| run | fold | " + " | ".join(keys) + " | clips | skipped |")
        print("|---" * (len(keys) + 4) + "|")
        for r in rows:
            vals = " | ".join(f"{r[k]:.2f}" for k in keys)
            print(f"| {r['run']} | {r['fold']} | {vals} | {r['clips']} | {r['skipped_unreadable']} |")
        if len(rows) > 1:
            means = {k: statistics.fmean(r[k] for r in rows) for k in keys}
            stds = {k: statistics.stdev(r[k] for r in rows) for k in keys}
            print("| mean +- std | | " + " | ".join(f"{means[k]:.2f} +- {stds[k]:.2f}" for k in keys) + " | | |")
        if args.json:
            print(json.dumps(rows))
    return 0


def _windows(x: torch.Tensor, seq_len: int) -> torch.Tensor:
    """Zero-pad a short clip; cut a long one into windows of ``seq_len`` with 50 % overlap (the last one aligned)."""
    n = x.shape[-1]
    if n <= seq_len:
        return torch.nn.functional.pad(x, (0, seq_len - n)).unsqueeze(0)
    hop = seq_len // 2
    starts = list(range(0, n - seq_len + 1, hop))
    if starts[-1] != n - seq_len:
        starts.append(n - seq_len)
    return torch.stack([x[s : s + seq_len] for s in starts])


@torch.no_grad()
def _infer(args: argparse.Namespace) -> int:
    model, recipe, info = _model_for(args, args.run)
    classes = info.get("classes") or (args.classes.split(",") if args.classes else None)
    if classes is None:
        classes = [str(i) for i in range(model.num_classes)]
    if len(classes) != model.num_classes:
        raise ValueError(f"{len(classes)} class names for a model with {model.num_classes} outputs")
    device = du.init_distributed(args.device)
    model = model.to(device).eval()
    multilabel = bool(info.get("multilabel", recipe.multilabel))
    results = []
    for f in args.files:
        samples, _ = load_audio(f, sample_rate=recipe.sample_rate)
        peak = float(np.abs(samples).max())
        x = torch.from_numpy(samples * (0.95 / peak) if peak > 0 else samples)
        logits = model(_windows(x, recipe.seq_len).unsqueeze(1).to(device)).float()
        probs = (torch.sigmoid(logits) if multilabel else torch.softmax(logits, -1)).mean(0).cpu()
        top = torch.topk(probs, min(args.top_k, len(classes)))
        preds = [{"class": classes[i], "score": float(p)} for p, i in zip(top.values, top.indices.tolist())]
        results.append({"file": str(f), "seconds": len(samples) / recipe.sample_rate, "top": preds})
    if args.json:
        print(json.dumps(results))
    else:
        for r in results:
            print(f"{r['file']} ({r['seconds']:.2f} s)")
            for i, p in enumerate(r["top"], 1):
                print(f"  {i}. {p['class']:<30} {p['score']:.4f}")
    return 0


def _convert(args: argparse.Namespace) -> int:
    model = load_original_checkpoint(args.checkpoint, num_heads=args.num_heads)
    meta = {"source": str(args.checkpoint), "model_args": json.dumps(model.model_args())}
    save_safetensors(model.state_dict(), args.output, metadata=meta)
    args_file = Path(args.output).with_suffix(".json")
    args_file.write_text(json.dumps({"model_args": model.model_args(), "source": str(args.checkpoint)}, indent=2))
    n = sum(p.numel() for p in model.parameters())
    print(
        f"converted {args.checkpoint} -> {args.output} ({n / 1e6:.2f}M parameters, {model.num_classes} classes, "
        f"seq_len {model.seq_len}); model arguments in {args_file}"
    )
    return 0


def _add_model_source(p: argparse.ArgumentParser) -> None:
    p.add_argument("--recipe", default=None, choices=sorted(RECIPES), help="recipe for a bare checkpoint file")
    p.add_argument("--which", default="best", choices=("best", "last"), help="weights of a run folder")
    p.add_argument("--num-heads", type=int, default=None, help="attention heads of an original checkpoint")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")


def register(parser: argparse.ArgumentParser) -> None:
    """Add the ``miil audio`` subcommands to ``parser``."""
    parser.description = "EAT: end-to-end audio classification from raw waveforms (arXiv 2204.11479)."
    sub = parser.add_subparsers(dest="subcommand", metavar="SUBCOMMAND")

    p = sub.add_parser("train", help="train EAT with a recipe (DDP under torchrun)", formatter_class=HelpFormatter)
    p.add_argument("--recipe", default="esc50_eat_s", choices=sorted(RECIPES), help="paper recipe to start from")
    add_dataclass_arguments(
        p,
        RECIPES["esc50_eat_s"],
        group="recipe fields (default: the chosen recipe's value)",
        only_if_given=True,
        recipe_name="esc50_eat_s",
    )
    p.set_defaults(func=_train)

    p = sub.add_parser("validate", help="accuracy / mAP of finished runs (one per fold)", formatter_class=HelpFormatter)
    p.add_argument("runs", nargs="+", help="run folders (or checkpoint files with --recipe)")
    _add_model_source(p)
    p.add_argument("--data-root", default=None, help="dataset folder (default: the run's)")
    p.add_argument("--fold", type=int, default=None, help="held-out fold (default: the run's)")
    p.add_argument("--val-split", default=None, help="validation split (default: the run's)")
    p.add_argument("--strict", action="store_true", help="stop at unreadable files instead of skipping them")
    p.add_argument("--batch-size", type=int, default=32, help="batch size per process")
    p.add_argument("--num-workers", type=int, default=0, help="data-loader workers")
    p.add_argument("--json", action="store_true", help="also print the rows as JSON")
    p.set_defaults(func=_validate)

    p = sub.add_parser("infer", help="top classes of audio files", formatter_class=HelpFormatter)
    p.add_argument("files", nargs="+", help="audio files (any rate; resampled to the model's)")
    p.add_argument("--run", required=True, help="run folder, or a checkpoint file (with --recipe)")
    _add_model_source(p)
    p.add_argument("--classes", default=None, help="comma-separated class names for a bare checkpoint")
    p.add_argument("--top-k", type=int, default=5, help="classes to show")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_infer)

    p = sub.add_parser(
        "convert", help="original EAT checkpoint -> safetensors (strict key map)", formatter_class=HelpFormatter
    )
    p.add_argument("checkpoint", help="original best_model.pt or chkpnt.pt")
    p.add_argument("output", help="output .safetensors file")
    p.add_argument("--num-heads", type=int, default=None, help="attention heads (default: published configs)")
    p.set_defaults(func=_convert)
