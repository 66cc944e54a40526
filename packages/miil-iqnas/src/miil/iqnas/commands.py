"""The ``miil iqnas`` verbs of its own: ``estimate``, ``search`` and ``explain`` (``train``, ``validate`` and ``infer``
are miil-hardcore's child verbs).

Paper: IQNAS / BINAS (arXiv 2110.12399): the measured accuracy estimator on the 20% of the training set the supernet
did not train on (section 3.1), the exact search under resource limits (section 3.2) and the insights read off the
coefficients (section 5). Imported only when one of these verbs runs (:mod:`.cli` builds the parsers).
"""

from __future__ import annotations

import argparse
import dataclasses
import json

from torch.utils.data import DataLoader

from miil.core import distributed as du
from miil.core.config import recipe_to_dict
from miil.core.data import skip_unreadable_collate
from miil.core.errors import UserError
from miil.core.evaluate import ShardSampler, write_json
from miil.core.io import atomic_write_text
from miil.hardcore import LatencyTable, extract_child, held_out_split, load_supernet, read_sidecar, save_child
from miil.hardcore.cli_support import one_line_warnings, split_folder, with_run_img_size
from miil.hardcore.commands import check_classes, recipe_from_args
from miil.hardcore.data import eval_transform, image_folder

from .additive import flop_costs, latency_costs, parameter_costs
from .dynamic_program import dp_search
from .encoding import random_architectures
from .estimator import AccuracyEstimator, measure_architectures, measure_contributions
from .evolution import evolutionary_search
from .explain import contribution_table, format_table, insights, plot_contributions
from .frank_wolfe_search import frank_wolfe_search
from .milp import IQPSolver
from .predictors import ranking_quality
from .recipes import ESTIMATE_RECIPES, METHODS, SEARCH_RECIPES, EstimateRecipe, IQNASSearchRecipe

__all__ = ["estimate", "explain", "search"]


# ---------------------------------------------------------------------------------------------------- estimate
def estimate(args: argparse.Namespace) -> int:
    """``miil iqnas estimate``: one one-shot accuracy per design decision on the held-out training images."""
    recipe: EstimateRecipe = recipe_from_args(args, ESTIMATE_RECIPES)
    device = du.init_distributed(args.device)
    supernet = load_supernet(args.weights).to(device)
    _, info = read_sidecar(args.weights)
    recipe = with_run_img_size(recipe, args, info, args.weights)
    train_dir = split_folder(args, "train")
    with one_line_warnings():
        plain = image_folder(train_dir, eval_transform(recipe.img_size))
        check_classes(args.weights, info, train_dir, plain.classes, supernet.num_classes)
        _, held_out = held_out_split(
            plain, train_percent=info.get("train_percent", recipe.train_percent), seed=info.get("split_seed", 0)
        )
        # Each rank measures its own shard (every image once); the accuracies are summed over the ranks.
        loader = DataLoader(
            held_out,
            batch_size=recipe.batch_size,
            sampler=ShardSampler(len(held_out)) if du.get_world_size() > 1 else None,
            collate_fn=skip_unreadable_collate,
        )
        estimator = measure_contributions(
            supernet, loader, passes=recipe.passes, seed=recipe.seed, reference=recipe.reference, progress=args.progress
        )
        meta = dict(estimator.metadata, recipe=recipe_to_dict(recipe), supernet=str(args.weights))
        if recipe.num_test > 0:
            archs = random_architectures(supernet.space, recipe.num_test, seed=recipe.seed + 1)
            measured = measure_architectures(supernet, archs, loader, progress=args.progress)
            meta["ranking"] = ranking_quality(estimator.predict(archs), measured)
    estimator = dataclasses.replace(estimator, metadata=meta)
    if du.is_main_process():
        path = estimator.save(args.output)
        print(f"wrote {path}: {meta['measurements']} measurements, base one-shot accuracy {estimator.base:.3f}%")
        if "ranking" in meta:
            q = meta["ranking"]
            print(
                f"ranking of {recipe.num_test} random networks: Kendall tau {q['kendall_tau']:.3f}, "
                f"Spearman {q['spearman']:.3f}, Pearson {q['pearson']:.3f}, MSE {q['mse']:.3f}"
            )
    return 0


# ---------------------------------------------------------------------------------------------------- search
def search(args: argparse.Namespace) -> int:
    """``miil iqnas search``: the most accurate network (by the estimator) under the recipe's limits."""
    recipe: IQNASSearchRecipe = recipe_from_args(args, SEARCH_RECIPES)
    if recipe.method not in METHODS:
        raise UserError(f"--method must be one of {', '.join(METHODS)}, got {recipe.method!r}")
    if args.export and not args.weights:
        raise UserError("--export needs --weights, the supernet run whose weights the child inherits")
    estimator = AccuracyEstimator.load(args.estimator)
    table = LatencyTable.load(args.lut)
    space = estimator.space
    if not table.space.same_networks(space):
        raise UserError(f"the latency table {args.lut} was measured for another search space than {args.estimator}")
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
        result = evolutionary_search(estimator, resources, limits, seed=recipe.seed, progress=args.progress)
    elif not single:
        raise UserError(f"--method {recipe.method} takes exactly one limit, the latency; use milp or evolution")
    elif recipe.method == "dp":
        result = dp_search(estimator, latency, recipe.latency_ms)
    else:
        result = frank_wolfe_search(estimator, latency, recipe.latency_ms, seed=recipe.seed, progress=args.progress)
    data = {**result.to_dict(space), "recipe": recipe_to_dict(recipe), "estimator": str(args.estimator)}
    atomic_write_text(args.output, json.dumps(data, indent=1))
    used = ", ".join(
        f"{k} {v:.4g}" + (f" <= {limits[k]:.4g}" if limits.get(k) else "") for k, v in result.resources.items()
    )
    print(f"{result.method}: predicted accuracy {result.predicted:.3f}%; {used}; {result.seconds:.3f}s")
    print(json.dumps(data["arch_def"]))
    print(f"wrote {args.output}")
    if args.export:
        supernet = load_supernet(args.weights)
        if not supernet.space.same_networks(space):
            raise UserError(f"{args.weights} has another search space than {args.estimator}")
        _, info = read_sidecar(args.weights)
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
def explain(args: argparse.Namespace) -> int:
    """``miil iqnas explain``: the gain of each design choice per stage, as a table, sentences and a figure."""
    estimator = AccuracyEstimator.load(args.estimator)
    if args.reference:
        estimator = estimator.with_reference(args.reference)
    print(format_table(estimator))
    lines = insights(estimator)
    for line in lines:
        print(line)
    if args.output:
        print(f"wrote {plot_contributions(estimator, args.output)}")
    if args.json:
        write_json(
            args.json,
            {
                "estimator": str(args.estimator),
                "reference": estimator.reference,
                "contributions": contribution_table(estimator),
                "insights": lines,
            },
        )
    return 0
