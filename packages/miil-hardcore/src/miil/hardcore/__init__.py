"""miil-hardcore: HardCoRe-NAS, hard-constrained differentiable NAS with latency tables measured on your device.

Paper: "HardCoRe-NAS: Hard Constrained diffeRentiable Neural Architecture Search", Nayman, Aflalo, Noy and
Zelnik-Manor, ICML 2021 (arXiv 2102.11646).

- Search space as data (:class:`SearchSpace`, :class:`Architecture`), rendered as timm ``arch_def`` strings and
  built as timm ``MobileNetV3`` (:func:`build_child`; timm's ``hardcorenas_a`` ... ``_f`` are reproduced exactly).
- Latency tables measured on the user's device (:func:`measure_latency_table`, :class:`LatencyTable`, ms per sample,
  saved as JSON with the device) or imported from the original code's ``lut.pkl`` (:func:`import_original_lut`), and
  the bilinear expected latency (:func:`latency_form`, :func:`bilinear_form`).
- The one-shot supernet (:class:`HardCoReSupernet`, :class:`ElasticInvertedResidual`) with per-sample hard Gumbel
  paths, Taylor channel ordering, and child extraction (:func:`extract_child`).
- The search: block-coordinate stochastic Frank-Wolfe with a hard latency constraint (:func:`hardcore_search`,
  :class:`BlockFrankWolfe`) and the soft-penalty baseline (:func:`soft_penalty_search`); the closed loop that measures
  the chosen network on the device and searches again with a corrected table on a miss (:func:`closed_loop_search`).
- Strict converters for the original code's checkpoints: supernets (``w_star``), the heaviest network
  (``w_heaviest``) and children (:func:`convert_original_supernet`, :func:`supernet_from_heaviest`,
  :func:`convert_original_child`, :func:`convert_original_checkpoint`).
"""

from __future__ import annotations

import importlib
import importlib.metadata
from typing import TYPE_CHECKING

from miil.core.lazy import lazy_exports

__version__ = importlib.metadata.version("miil-hardcore")  # written once, in pyproject.toml

# name -> submodule; names are imported on first use (PEP 562), so `import` of the package loads no torch.
_EXPORTS = {
    "bilinear_form": ".bilinear",
    "BilinearForm": ".bilinear",
    "latency_form": ".bilinear",
    "build_block": ".builder",
    "build_child": ".builder",
    "FixedHead": ".builder",
    "FixedStem": ".builder",
    "hardcore_se_layer": ".builder",
    "resolve_architecture": ".builder",
    "calibrate_latency": ".calibrate",
    "CalibrationReport": ".calibrate",
    "relative_errors": ".calibrate",
    "table_timing": ".calibrate",
    "reorder_channels": ".channel_ordering",
    "taylor_channel_importance": ".channel_ordering",
    "load_child": ".checkpoints",
    "load_search_result": ".checkpoints",
    "load_supernet": ".checkpoints",
    "read_sidecar": ".checkpoints",
    "save_child": ".checkpoints",
    "closed_loop_search": ".closed_loop",
    "ClosedLoopResult": ".closed_loop",
    "conservative_calibration": ".closed_loop",
    "convert_original_checkpoint": ".convert",
    "convert_original_child": ".convert",
    "convert_original_supernet": ".convert",
    "ConvertedSupernet": ".convert",
    "detect_original_layout": ".convert",
    "infer_child_architecture": ".convert",
    "original_state_dict": ".convert",
    "supernet_from_heaviest": ".convert",
    "held_out_split": ".data",
    "ElasticInvertedResidual": ".elastic_block",
    "child_state_dict": ".extract",
    "extract_child": ".extract",
    "BlockFrankWolfe": ".frank_wolfe",
    "fractional_simplices": ".frank_wolfe",
    "InfeasibleConstraintError": ".frank_wolfe",
    "measure_latency_table": ".latency",
    "measure_network_latency": ".latency",
    "time_module": ".latency",
    "TimingConfig": ".latency",
    "LatencyTable": ".latency_table",
    "LatencyTableError": ".latency_table",
    "import_original_lut": ".original_lut",
    "original_descriptor": ".original_lut",
    "OriginalBlock": ".original_lut",
    "parse_original_descriptor": ".original_lut",
    "CHILD_RECIPES": ".recipes",
    "ChildRecipe": ".recipes",
    "SEARCH_RECIPES": ".recipes",
    "SearchRecipe": ".recipes",
    "SUPERNET_RECIPES": ".recipes",
    "SupernetRecipe": ".recipes",
    "architecture_gradients": ".search",
    "hardcore_search": ".search",
    "resolve_gamma_schedule": ".search",
    "SearchResult": ".search",
    "soft_penalty_search": ".search",
    "Architecture": ".search_space",
    "BlockChoice": ".search_space",
    "HARDCORENAS_ARCH_DEFS": ".search_space",
    "hardcorenas_space": ".search_space",
    "resolve_space": ".search_space",
    "SearchSpace": ".search_space",
    "SPACES": ".search_space",
    "StageSpec": ".search_space",
    "fixed_paths": ".supernet",
    "HardCoReSupernet": ".supernet",
    "PathWeights": ".supernet",
    "sample_paths": ".supernet",
    "ChildDistillationStep": ".training",
    "frozen_heaviest_teacher": ".training",
    "make_trainer": ".training",
    "MultipathDistillationStep": ".training",
    "order_channels": ".training",
    "spread_heaviest_path": ".training",
    "SupervisedStep": ".training",
    "train_supernet_stages": ".training",
}

_SUBMODULES = {
    "bilinear",
    "builder",
    "calibrate",
    "channel_ordering",
    "checkpoints",
    "closed_loop",
    "convert",
    "data",
    "elastic_block",
    "extract",
    "frank_wolfe",
    "latency",
    "latency_table",
    "original_lut",
    "recipes",
    "search",
    "search_space",
    "supernet",
    "training",
}

if TYPE_CHECKING:
    from .bilinear import BilinearForm, bilinear_form, latency_form
    from .builder import FixedHead, FixedStem, build_block, build_child, hardcore_se_layer, resolve_architecture
    from .calibrate import CalibrationReport, calibrate_latency, relative_errors, table_timing
    from .channel_ordering import reorder_channels, taylor_channel_importance
    from .checkpoints import load_child, load_search_result, load_supernet, read_sidecar, save_child
    from .closed_loop import ClosedLoopResult, closed_loop_search, conservative_calibration
    from .convert import (
        ConvertedSupernet,
        convert_original_checkpoint,
        convert_original_child,
        convert_original_supernet,
        detect_original_layout,
        infer_child_architecture,
        original_state_dict,
        supernet_from_heaviest,
    )
    from .data import held_out_split
    from .elastic_block import ElasticInvertedResidual
    from .extract import child_state_dict, extract_child
    from .frank_wolfe import BlockFrankWolfe, InfeasibleConstraintError, fractional_simplices
    from .latency import TimingConfig, measure_latency_table, measure_network_latency, time_module
    from .latency_table import LatencyTable, LatencyTableError
    from .original_lut import OriginalBlock, import_original_lut, original_descriptor, parse_original_descriptor
    from .recipes import CHILD_RECIPES, SEARCH_RECIPES, SUPERNET_RECIPES, ChildRecipe, SearchRecipe, SupernetRecipe
    from .search import (
        SearchResult,
        architecture_gradients,
        hardcore_search,
        resolve_gamma_schedule,
        soft_penalty_search,
    )
    from .search_space import (
        HARDCORENAS_ARCH_DEFS,
        SPACES,
        Architecture,
        BlockChoice,
        SearchSpace,
        StageSpec,
        hardcorenas_space,
        resolve_space,
    )
    from .supernet import HardCoReSupernet, PathWeights, fixed_paths, sample_paths
    from .training import (
        ChildDistillationStep,
        MultipathDistillationStep,
        SupervisedStep,
        frozen_heaviest_teacher,
        make_trainer,
        order_channels,
        spread_heaviest_path,
        train_supernet_stages,
    )


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, _SUBMODULES)

__all__ = [
    "spread_heaviest_path",
    "train_supernet_stages",
    "read_sidecar",
    "held_out_split",
    "FixedStem",
    "FixedHead",
    "CHILD_RECIPES",
    "HARDCORENAS_ARCH_DEFS",
    "SEARCH_RECIPES",
    "SPACES",
    "SUPERNET_RECIPES",
    "Architecture",
    "BilinearForm",
    "BlockChoice",
    "BlockFrankWolfe",
    "CalibrationReport",
    "ChildDistillationStep",
    "ClosedLoopResult",
    "ChildRecipe",
    "ConvertedSupernet",
    "ElasticInvertedResidual",
    "HardCoReSupernet",
    "InfeasibleConstraintError",
    "LatencyTable",
    "LatencyTableError",
    "OriginalBlock",
    "import_original_lut",
    "original_descriptor",
    "parse_original_descriptor",
    "MultipathDistillationStep",
    "PathWeights",
    "SearchRecipe",
    "SearchResult",
    "SearchSpace",
    "StageSpec",
    "SupernetRecipe",
    "SupervisedStep",
    "TimingConfig",
    "architecture_gradients",
    "bilinear_form",
    "build_block",
    "build_child",
    "calibrate_latency",
    "child_state_dict",
    "closed_loop_search",
    "conservative_calibration",
    "convert_original_checkpoint",
    "convert_original_child",
    "convert_original_supernet",
    "detect_original_layout",
    "extract_child",
    "fixed_paths",
    "fractional_simplices",
    "frozen_heaviest_teacher",
    "hardcore_search",
    "hardcore_se_layer",
    "hardcorenas_space",
    "infer_child_architecture",
    "latency_form",
    "load_child",
    "load_search_result",
    "load_supernet",
    "make_trainer",
    "measure_latency_table",
    "measure_network_latency",
    "order_channels",
    "original_state_dict",
    "relative_errors",
    "reorder_channels",
    "resolve_architecture",
    "resolve_gamma_schedule",
    "resolve_space",
    "sample_paths",
    "save_child",
    "soft_penalty_search",
    "supernet_from_heaviest",
    "table_timing",
    "taylor_channel_importance",
    "time_module",
]
