"""``miil iqnas ...``: IQNAS on a miil-hardcore supernet and latency table from the command line.

Paper: IQNAS / BINAS (arXiv 2110.12399). The steps, after ``miil hardcore lut`` and ``miil hardcore train-supernet``::

    miil iqnas estimate --supernet runs/hardcore/multipath --data-dir train/ --out estimator.json
    miil iqnas search --estimator estimator.json --lut lut.json --latency-ms 40 [--params-m 5] --out arch.json \\
        [--supernet runs/hardcore/multipath --export child.safetensors]
    miil iqnas explain --estimator estimator.json --plot contributions.png
    miil iqnas train --supernet runs/hardcore/multipath --arch arch.json --data-dir train/ --val-dir val/
    miil iqnas validate --checkpoint runs/hardcore/finetune --data-dir val/
    miil iqnas infer --checkpoint child.safetensors image.jpg

``train``, ``validate`` and ``infer`` are miil-hardcore's ``finetune``, ``validate`` and ``infer`` (the paper fine-tunes
the chosen network exactly as HardCoRe-NAS does). ``estimate`` runs under ``torchrun`` (accuracies are summed over
processes).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from torch.utils.data import DataLoader, DistributedSampler

from miil.core import distributed as du
from miil.core.cli import HelpFormatter
from miil.core.config import add_dataclass_arguments, dataclass_from_args, pick_recipe, recipe_to_dict
from miil.core.data import skip_unreadable_collate
from miil.hardcore import LatencyTable, extract_child, held_out_split, load_supernet, read_sidecar, save_child
from miil.hardcore import cli as hardcore_cli
from miil.hardcore.data import eval_transform, image_folder

from .additive import flop_costs, latency_costs, parameter_costs
from .dynamic_program import dp_search
from .encoding import random_architectures
from .estimator import AccuracyEstimator, measure_architectures, measure_contributions
from .evolution import evolutionary_search
from .explain import format_table, insights, plot_contributions
from .frank_wolfe_search import frank_wolfe_search
from .milp import IQPSolver
from .predictors import ranking_quality
from .recipes import ESTIMATE_RECIPES, METHODS, SEARCH_RECIPES, EstimateRecipe, IQNASSearchRecipe

__all__ = ["register"]


def _add_recipe(parser: argparse.ArgumentParser, recipes: dict, default: str, cls: type) -> None:
    parser.add_argument("--recipe", default=default, choices=sorted(recipes), help="paper setting (recipes.py)")
    group = "recipe overrides (default: the value of --recipe)"
    add_dataclass_arguments(parser, cls, group=group, only_if_given=True)


def _recipe(args: argparse.Namespace, recipes: dict):
    return dataclass_from_args(pick_recipe(recipes, args.recipe), args)


# ---------------------------------------------------------------------------------------------------- estimate
def _estimate(args: argparse.Namespace) -> int:
    recipe: EstimateRecipe = _recipe(args, ESTIMATE_RECIPES)
    device = du.init_distributed(args.device)
    supernet = load_supernet(args.supernet).to(device)
    _, info = read_sidecar(args.supernet)
    recipe = hardcore_cli.with_run_img_size(recipe, args, info, args.supernet)
    plain = image_folder(args.data_dir, eval_transform(recipe.img_size))
    _, held_out = held_out_split(
        plain, train_percent=info.get("train_percent", recipe.train_percent), seed=info.get("split_seed", 0)
    )
    sampler = DistributedSampler(held_out, shuffle=False) if du.get_world_size() > 1 else None
    loader = DataLoader(held_out, batch_size=recipe.batch_size, sampler=sampler, collate_fn=skip_unreadable_collate)
    progress = not args.no_progress
    estimator = measure_contributions(
        supernet, loader, passes=recipe.passes, seed=recipe.seed, reference=recipe.reference, progress=progress
    )
    meta = dict(estimator.metadata, recipe=recipe_to_dict(recipe), supernet=str(args.supernet))
    if recipe.num_test > 0:
        archs = random_architectures(supernet.space, recipe.num_test, seed=recipe.seed + 1)
        measured = measure_architectures(supernet, archs, loader, progress=progress)
        meta["ranking"] = ranking_quality(estimator.predict(archs), measured)
    estimator = dataclasses.replace(estimator, metadata=meta)
    if du.is_main_process():
        path = estimator.save(args.out)
        print(f"wrote {path}: {meta['measurements']} measurements, base one-shot accuracy {estimator.base:.3f}%")
        if "ranking" in meta:
            q = meta["ranking"]
            print(
                f"ranking of {recipe.num_test} random networks: Kendall tau {q['kendall_tau']:.3f}, "
                f"Spearman {q['spearman']:.3f}, Pearson {q['pearson']:.3f}, MSE {q['mse']:.3f}"
            )
    return 0


# ---------------------------------------------------------------------------------------------------- search
def _search(args: argparse.Namespace) -> int:
    recipe: IQNASSearchRecipe = _recipe(args, SEARCH_RECIPES)
    if recipe.method not in METHODS:
        raise ValueError(f"search method must be one of {METHODS}, got {recipe.method!r}")
    estimator = AccuracyEstimator.load(args.estimator)
    table = LatencyTable.load(args.lut)
    space = estimator.space
    if not table.space.same_networks(space):
        raise ValueError(f"the latency table {args.lut} was measured for another search space than {args.estimator}")
    latency = latency_costs(table)
    resources = [latency]
    limits: dict[str, float | None] = {"latency": recipe.latency_ms or None}
    if recipe.params_m > 0:
        resources.append(parameter_costs(space, num_classes=args.num_classes))
        limits["params"] = recipe.params_m
    if recipe.mflops > 0:
        resources.append(flop_costs(space, num_classes=args.num_classes))
        limits["flops"] = recipe.mflops
    single = len(resources) == 1 and limits["latency"] is not None
    if recipe.method == "milp":
        result = IQPSolver(estimator, resources, solver=recipe.solver).solve(limits)
    elif recipe.method == "evolution":
        result = evolutionary_search(estimator, resources, limits, seed=recipe.seed)
    elif not single:
        raise ValueError(f"--method {recipe.method} takes exactly one limit, the latency; use milp or evolution")
    elif recipe.method == "dp":
        result = dp_search(estimator, latency, recipe.latency_ms)
    else:
        result = frank_wolfe_search(estimator, latency, recipe.latency_ms, seed=recipe.seed)
    data = {**result.to_dict(space), "recipe": recipe_to_dict(recipe), "estimator": str(args.estimator)}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(data, indent=1))
    used = ", ".join(
        f"{k} {v:.4g}" + (f" <= {limits[k]:.4g}" if limits.get(k) else "") for k, v in result.resources.items()
    )
    print(f"{result.method}: predicted accuracy {result.predicted:.3f}%; {used}; {result.seconds:.3f}s")
    print(json.dumps(data["arch_def"]))
    print(f"wrote {args.out}")
    if args.export:
        if not args.supernet:
            raise ValueError("--export needs --supernet, the run whose weights the child inherits")
        supernet = load_supernet(args.supernet)
        if not supernet.space.same_networks(space):
            raise ValueError(f"{args.supernet} has another search space than {args.estimator}")
        _, info = read_sidecar(args.supernet)
        child = extract_child(supernet, result.architecture)
        path = save_child(
            child,
            supernet.space,
            result.architecture,
            args.export,
            classes=info.get("classes"),
            img_size=info.get("img_size", 224),
        )
        print(f"wrote {path} (timm MobileNetV3 with the supernet's weights) and {path.with_suffix('.json')}")
    return 0


# ---------------------------------------------------------------------------------------------------- explain
def _explain(args: argparse.Namespace) -> int:
    estimator = AccuracyEstimator.load(args.estimator)
    if args.reference:
        estimator = estimator.with_reference(args.reference)
    print(format_table(estimator))
    for line in insights(estimator):
        print(line)
    if args.plot:
        print(f"wrote {plot_contributions(estimator, args.plot)}")
    return 0


# ---------------------------------------------------------------------------------------------------- register
def register(parser: argparse.ArgumentParser) -> None:
    """Add the ``miil iqnas`` subcommands to ``parser``."""
    parser.description = "IQNAS / BINAS (arXiv 2110.12399): measured accuracy estimator, exact integer program."
    sub = parser.add_subparsers(dest="subcommand", metavar="SUBCOMMAND")

    p = sub.add_parser("estimate", help="measure the accuracy estimator on a supernet", formatter_class=HelpFormatter)
    p.add_argument("--supernet", required=True, help="miil hardcore train-supernet run directory (multipath)")
    p.add_argument("--data-dir", required=True, help="the training images the supernet was trained on: DIR/<class>/")
    p.add_argument("--out", default="estimator.json", help="output estimator JSON")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: cuda when present)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    _add_recipe(p, ESTIMATE_RECIPES, "binas_imagenet", EstimateRecipe)
    p.set_defaults(func=_estimate)

    p = sub.add_parser(
        "search", help="exact search under latency / params / FLOPs limits", formatter_class=HelpFormatter
    )
    p.add_argument("--estimator", required=True, help="estimator JSON from `miil iqnas estimate`")
    p.add_argument("--lut", required=True, help="latency table JSON from `miil hardcore lut`")
    p.add_argument("--num-classes", type=int, default=1000, help="classifier outputs (for params / FLOPs)")
    p.add_argument("--out", default="arch.json", help="output JSON (arch_def, predicted accuracy, resources)")
    p.add_argument("--supernet", default=None, help="with --export: the supernet run the child inherits from")
    p.add_argument("--export", default=None, help="also write the child as a timm checkpoint (.safetensors)")
    _add_recipe(p, SEARCH_RECIPES, "binas_b", IQNASSearchRecipe)
    p.set_defaults(func=_search)

    p = sub.add_parser("explain", help="contribution of each design choice", formatter_class=HelpFormatter)
    p.add_argument("--estimator", required=True, help="estimator JSON")
    p.add_argument("--reference", default=None, choices=("base", "depth"), help="override the estimator's reference")
    p.add_argument("--plot", default=None, help="save the contributions figure (PNG)")
    p.set_defaults(func=_explain)

    # Training, validating and using the chosen network are miil-hardcore's child commands (finetune is "train").
    hardcore_cli.add_child_commands(sub, names={"finetune": "train", "validate": "validate", "infer": "infer"})
