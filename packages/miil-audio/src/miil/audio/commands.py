"""What the ``miil audio`` verbs do (the parsers are in :mod:`miil.audio.cli`, which imports none of this).

Paper: Gazneli et al., 2022 (arXiv 2204.11479). Every verb follows the ``miil`` dialect: user errors are one line
(exit 2), validation and inference run miil-core's evaluation loop (progress bar, sharded over torchrun ranks), the
precision is the run's own unless ``--amp`` overrides it, ``--json FILE`` writes strict JSON (``null``, never NaN)
with the skipped inputs and their reasons, and a command that skipped inputs exits with status 3.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import torch

from miil.core import distributed as du
from miil.core.cli_args import print_plot_hint
from miil.core.config import dataclass_from_args, pick_recipe
from miil.core.errors import UserError
from miil.core.evaluate import PredictionMeter, exit_status, print_skipped_summary
from miil.core.evaluate import evaluate as core_evaluate
from miil.core.io import atomic_write_text, save_safetensors
from miil.core.verbs import finish

from .convert import load_original_checkpoint
from .data.files import AudioFileDataset, list_audio_inputs
from .io import AudioReader
from .recipes import RECIPES
from .training import build_datasets, criterion, eval_precision, evaluate_clips, load_weights
from .training import train as train_run

__all__ = ["convert", "infer", "train", "validate"]


def _metric_text(metrics: dict[str, float]) -> str:
    return " ".join(f"{k} {v:.4g}" for k, v in metrics.items() if isinstance(v, float) and math.isfinite(v))


def train(args: argparse.Namespace) -> int:
    """``miil audio train``: the recipe with the options given, through the core engine."""
    recipe = dataclass_from_args(pick_recipe(RECIPES, args.recipe), args)
    result = train_run(recipe, run_info={"recipe": args.recipe})
    if du.is_main_process():
        metric = "n/a" if math.isnan(result.best_metric) else f"{result.best_metric:.4g}"
        print(
            f"miil audio train: best {recipe.eval_metric or 'metric'} {metric} at epoch {result.best_epoch + 1} "
            f"({result.best_source} weights): {Path(result.out_dir) / 'best.safetensors'}",
            flush=True,
        )
    print_skipped_summary(result.skipped, prog="miil audio train")
    print_plot_hint(result.out_dir)
    return exit_status(result.skipped)


def validate(args: argparse.Namespace) -> int:
    """``miil audio validate``: accuracy or mAP of ``--weights`` on the run's (or the given) validation data."""
    loaded = load_weights(args.weights, num_heads=args.num_heads)
    changes: dict[str, Any] = {"strict": args.strict}
    for name in ("data_format", "data_root", "val_split", "val_labels"):
        if getattr(args, name) is not None:
            changes[name] = getattr(args, name)
    recipe = dataclasses.replace(loaded.recipe, **changes)
    if not recipe.data_root:
        raise UserError(f"--data-root is needed: {args.weights} names no dataset to validate on")
    known = loaded.info.get("classes")
    _, data = build_datasets(recipe, train=False, classes=list(known) if known else None)
    if data is None:
        raise UserError(f"no validation data: {recipe.data_format} split {recipe.splits()[1]!r} is absent")
    if known and list(data.classes) != list(known):
        raise UserError(
            f"the classes of {recipe.data_root} ({len(data.classes)}) are not the {len(known)} classes the weights "
            f"were trained on; check --data-root / --data-format"
        )
    if len(data.classes) != loaded.model.num_classes:
        raise UserError(
            f"the data has {len(data.classes)} classes, the model {loaded.model.num_classes} outputs: check --data-root"
        )
    device = du.init_distributed(args.device)
    precision = eval_precision(loaded.eval_precision, amp=args.amp, amp_dtype=args.amp_dtype, device=device)
    batch_size = args.batch_size or recipe.eval_batch_size or 2 * recipe.batch_size
    report = evaluate_clips(
        loaded.model,
        data,
        multilabel=loaded.multilabel,
        loss=criterion(recipe, "mean"),
        batch_size=batch_size,
        num_workers=args.num_workers,
        device=device,
        precision=precision,
        progress=args.progress,
    )
    if du.is_main_process():
        where = f"{recipe.data_format} {recipe.data_root} split {recipe.splits()[1]}"
        scores = _metric_text(report.metrics) or "no readable clips"
        print(f"miil audio validate: {args.weights} on {where}: {scores} over {report.samples} clips ({precision})")
    data_info = {k: getattr(recipe, k) for k in ("data_format", "data_root", "val_split", "val_labels")}
    return finish("miil audio validate", report, args.json, {"weights": str(args.weights), "data": data_info})


def _class_names(path: str, count: int) -> list[str]:
    file = Path(path)
    if not file.is_file():
        raise UserError(f"--classes {file} does not exist")
    names = [line.strip() for line in file.read_text(encoding="utf-8").splitlines() if line.strip()]
    if len(names) != count:
        raise UserError(f"--classes {file} lists {len(names)} names, the model has {count} outputs")
    return names


def _gather(values: dict[int, int]) -> dict[int, int]:
    if not du.is_distributed():
        return values
    parts: list[Any] = [None] * du.get_world_size()
    torch.distributed.all_gather_object(parts, values)
    return {k: v for part in parts for k, v in part.items()}


def infer(args: argparse.Namespace) -> int:
    """``miil audio infer``: the top classes of each readable input; unreadable ones are reported, not fatal."""
    loaded = load_weights(args.weights, num_heads=args.num_heads)
    model, recipe = loaded.model, loaded.recipe
    classes = _class_names(args.classes, model.num_classes) if args.classes else loaded.classes
    files = list_audio_inputs(args.inputs)
    if not files:
        raise UserError(f"no audio files in {', '.join(args.inputs)}")
    reader = AudioReader(recipe.sample_rate, strict=args.strict)
    dataset = AudioFileDataset(files, reader, recipe.seq_len)
    device = du.init_distributed(args.device)
    precision = eval_precision(loaded.eval_precision, amp=args.amp, amp_dtype=args.amp_dtype, device=device)
    lengths: dict[int, int] = {}
    squash = torch.sigmoid if loaded.multilabel else (lambda z: torch.softmax(z, dim=-1))

    def eval_fn(net: torch.nn.Module, batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
        windows, index, samples = batch  # one file per batch: its windows share the file's prediction
        lengths[int(index[0])] = int(samples[0])
        return squash(net(windows[0]).float()).mean(0, keepdim=True), index

    meter = PredictionMeter()
    report = core_evaluate(
        model.to(device),
        dataset,
        meter=meter,
        eval_fn=eval_fn,
        device=device,
        precision=precision,
        batch_size=1,
        num_workers=args.num_workers,
        progress=args.progress,
        desc="infer",
    )
    probs, order = meter.predictions()
    lengths = _gather(lengths)
    k = min(args.top_k, len(classes))
    predictions = []
    for p, i in zip(probs, order.tolist()):
        top = torch.topk(p, k)
        predictions.append(
            {
                "file": str(files[i]),
                "seconds": lengths.get(i, 0) / recipe.sample_rate,
                "top": [{"class": classes[c], "score": float(s)} for s, c in zip(top.values, top.indices.tolist())],
            }
        )
    if du.is_main_process():
        for entry in predictions:
            print(f"{entry['file']} ({entry['seconds']:.2f} s)")
            for rank, pred in enumerate(entry["top"], 1):
                print(f"  {rank}. {pred['class']:<30} {pred['score']:.4f}")
    return finish("miil audio infer", report, args.json, {"weights": str(args.weights), "predictions": predictions})


def convert(args: argparse.Namespace) -> int:
    """``miil audio convert SOURCE OUTPUT``: an original checkpoint as safetensors plus a sidecar that describes it."""
    out = Path(args.output)
    if out.suffix != ".safetensors":
        raise UserError(f"OUTPUT must end with .safetensors, got {out}")
    model = load_original_checkpoint(args.source, num_heads=args.num_heads)
    meta = {"source": str(args.source), "model_args": json.dumps(model.model_args())}
    save_safetensors(model.state_dict(), out, metadata=meta)
    recipe = dataclasses.replace(RECIPES["esc50-eat-s"], seq_len=model.seq_len, num_classes=model.num_classes)
    sidecar = {
        "model_args": model.model_args(),
        "source": str(args.source),
        "config": dataclasses.asdict(recipe),
        "run_info": {"model_args": model.model_args(), "converted_from": str(args.source)},
    }
    atomic_write_text(out.with_suffix(".json"), json.dumps(sidecar, indent=2))
    n = sum(p.numel() for p in model.parameters())
    print(
        f"converted {args.source} -> {out} ({n / 1e6:.2f}M parameters, {model.num_classes} classes, "
        f"seq_len {model.seq_len}); sidecar {out.with_suffix('.json')}"
    )
    return 0
