"""miil-iqnas: IQNAS / BINAS, a measured accuracy estimator and an exact integer program for NAS under resource limits.

Paper: "IQNAS: Interpretable Integer Quadratic Programming Neural Architecture Search" (re-titled "BINAS: Bilinear
Interpretable Neural Architecture Search"), Nayman, Aflalo, Noy, Jin and Zelnik-Manor (arXiv 2110.12399). It searches
the HardCoRe-NAS space with HardCoRe's latency table and supernet (miil-hardcore).

- The estimator (:func:`measure_contributions`, :class:`AccuracyEstimator`): one measured one-shot accuracy per
  decision, giving ``base + p_a^T alpha + p_b^T beta + alpha^T Q beta``; fitted alternatives (:func:`fit_predictor`)
  and ranking quality (:func:`ranking_quality`).
- The integer program (:class:`IQPSolver`, :func:`solve_iqp`): exact MILP (cvxpy + HiGHS) under any mix of latency,
  parameter and FLOPs limits (:func:`latency_costs`, :func:`parameter_costs`, :func:`flop_costs`); the exact dynamic
  program (:func:`dp_search`), block-coordinate Frank-Wolfe (:func:`frank_wolfe_search`), evolution
  (:func:`evolutionary_search`) and brute force (:func:`brute_force_search`) for comparison.
- Interpretability (:func:`contribution_table`, :func:`insights`, :func:`plot_contributions`).
"""

from __future__ import annotations

import importlib
import importlib.metadata
from typing import TYPE_CHECKING

from miil.core.lazy import lazy_exports

__version__ = importlib.metadata.version("miil-iqnas")  # written once, in pyproject.toml

# name -> submodule; names are imported on first use (PEP 562), so `import` of the package loads no torch.
_EXPORTS = {
    "BlockAdditive": ".additive",
    "flop_costs": ".additive",
    "latency_costs": ".additive",
    "parameter_costs": ".additive",
    "dp_search": ".dynamic_program",
    "decode": ".encoding",
    "encode": ".encoding",
    "encode_many": ".encoding",
    "enumerate_architectures": ".encoding",
    "num_variables": ".encoding",
    "random_architectures": ".encoding",
    "AccuracyEstimator": ".estimator",
    "Decision": ".estimator",
    "measure_architectures": ".estimator",
    "measure_contributions": ".estimator",
    "one_shot_accuracy": ".estimator",
    "evolutionary_search": ".evolution",
    "brute_force_search": ".exhaustive",
    "contribution_table": ".explain",
    "format_table": ".explain",
    "insights": ".explain",
    "plot_contributions": ".explain",
    "stage_gains": ".explain",
    "frank_wolfe_search": ".frank_wolfe_search",
    "IQPSolver": ".milp",
    "solve_iqp": ".milp",
    "as_predictor": ".predictors",
    "fit_predictor": ".predictors",
    "KINDS": ".predictors",
    "QuadraticPredictor": ".predictors",
    "ranking_quality": ".predictors",
    "ESTIMATE_RECIPES": ".recipes",
    "EstimateRecipe": ".recipes",
    "IQNASSearchRecipe": ".recipes",
    "SEARCH_RECIPES": ".recipes",
    "SearchOutcome": ".result",
}

_SUBMODULES = {
    "additive",
    "dynamic_program",
    "encoding",
    "estimator",
    "evolution",
    "exhaustive",
    "explain",
    "frank_wolfe_search",
    "milp",
    "predictors",
    "recipes",
    "result",
}

if TYPE_CHECKING:
    from .additive import BlockAdditive, flop_costs, latency_costs, parameter_costs
    from .dynamic_program import dp_search
    from .encoding import decode, encode, encode_many, enumerate_architectures, num_variables, random_architectures
    from .estimator import AccuracyEstimator, Decision, measure_architectures, measure_contributions, one_shot_accuracy
    from .evolution import evolutionary_search
    from .exhaustive import brute_force_search
    from .explain import contribution_table, format_table, insights, plot_contributions, stage_gains
    from .frank_wolfe_search import frank_wolfe_search
    from .milp import IQPSolver, solve_iqp
    from .predictors import KINDS, QuadraticPredictor, as_predictor, fit_predictor, ranking_quality
    from .recipes import ESTIMATE_RECIPES, SEARCH_RECIPES, EstimateRecipe, IQNASSearchRecipe
    from .result import SearchOutcome


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, _SUBMODULES, shadowed=("frank_wolfe_search",))

__all__ = [
    "ESTIMATE_RECIPES",
    "KINDS",
    "SEARCH_RECIPES",
    "AccuracyEstimator",
    "BlockAdditive",
    "Decision",
    "EstimateRecipe",
    "IQNASSearchRecipe",
    "IQPSolver",
    "QuadraticPredictor",
    "SearchOutcome",
    "as_predictor",
    "brute_force_search",
    "contribution_table",
    "decode",
    "dp_search",
    "encode",
    "encode_many",
    "enumerate_architectures",
    "evolutionary_search",
    "fit_predictor",
    "flop_costs",
    "format_table",
    "frank_wolfe_search",
    "insights",
    "latency_costs",
    "measure_architectures",
    "measure_contributions",
    "num_variables",
    "one_shot_accuracy",
    "parameter_costs",
    "plot_contributions",
    "random_architectures",
    "ranking_quality",
    "solve_iqp",
    "stage_gains",
]
