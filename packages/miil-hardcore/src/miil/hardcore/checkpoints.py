"""Saving and loading supernets, children and search results with the facts needed to rebuild them.

A supernet run directory (written by the core engine) carries the search space and the class count in its sidecar's
``run_info``; a child checkpoint carries its ``arch_def`` and space; a search result records the space it was searched
in beside its ``arch_def``. Every file goes through :func:`miil.core.io.load_file` / ``load_checkpoint`` (safetensors,
weights-only torch files, JSON: nothing in a file is executed) and weights load with strict key matching.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from timm.models.mobilenetv3 import MobileNetV3

from miil.core.errors import UserError
from miil.core.io import atomic_write_text, extract_state_dict, load_checkpoint, load_file, load_into, save_safetensors

from .builder import build_child
from .search_space import Architecture, SearchSpace
from .supernet import HardCoReSupernet

__all__ = [
    "load_child",
    "load_search_result",
    "load_supernet",
    "read_search_result",
    "read_sidecar",
    "save_child",
]


def read_sidecar(path: str | os.PathLike) -> tuple[Path, dict[str, Any]]:
    """``(weights file, metadata)`` of a run directory (its ``best``), or of a weights file with a ``.json`` sidecar
    beside it.

    The metadata is the run's ``run_info`` (space, classes, image size...) plus ``eval_precision``, the precision the
    run validated in (``fp32`` when the file does not say), which ``validate`` and ``infer`` use by default.
    """
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path} does not exist; pass a run folder (its best.safetensors) or a weights file")
    if path.is_dir():
        weights, meta_file = path / "best.safetensors", path / "best.json"
    else:
        weights, meta_file = path, path.with_suffix(".json")
    if not weights.is_file():
        raise UserError(f"no weights at {weights}; pass a run folder (its best.safetensors) or a weights file")
    if not meta_file.is_file():
        raise UserError(f"no metadata at {meta_file} (needed to rebuild the network from {weights})")
    meta = load_file(meta_file, what="sidecar")
    if not isinstance(meta, dict):
        raise UserError(f"sidecar {meta_file} is not a JSON object")
    info = dict(meta.get("run_info", meta))
    info.setdefault("eval_precision", meta.get("eval_precision", "fp32"))
    return weights, info


def _space_of(info: dict[str, Any], source: Path) -> SearchSpace:
    if "space" not in info:
        raise UserError(f"{source} does not record the search space (run_info.space)")
    return SearchSpace.from_dict(info["space"])


def load_supernet(path: str | os.PathLike, *, map_location: str = "cpu") -> HardCoReSupernet:
    """Rebuild a supernet from a ``train-supernet`` run directory (or weights file with sidecar)."""
    weights, info = read_sidecar(path)
    if info.get("kind") != "supernet":
        raise UserError(
            f"{weights} is not a HardCoRe supernet (its sidecar says kind {info.get('kind')!r}); pass a "
            "train-supernet run folder or a converted supernet"
        )
    supernet = HardCoReSupernet(_space_of(info, weights), num_classes=int(info["num_classes"]))
    load_into(supernet, extract_state_dict(load_checkpoint(weights, map_location=map_location)))
    return supernet


def save_child(
    model: MobileNetV3, space: SearchSpace, arch: Architecture, path: str | os.PathLike, **extra: Any
) -> Path:
    """Write a child's weights (``.safetensors``) and its ``.json`` sidecar (space, arch_def, classes...)."""
    path = Path(path)
    if path.suffix != ".safetensors":
        raise UserError(f"child checkpoints are .safetensors files, got {path}: name the output *.safetensors")
    save_safetensors(model.state_dict(), path)
    meta = {
        "kind": "child",
        "space": space.to_dict(),
        "arch_def": space.arch_def(arch),
        "num_classes": model.num_classes,
        **extra,
    }
    atomic_write_text(path.with_suffix(".json"), json.dumps(meta, indent=2))
    return path


def load_child(path: str | os.PathLike, *, map_location: str = "cpu") -> tuple[MobileNetV3, dict[str, Any]]:
    """Rebuild a child (timm ``MobileNetV3``) from a child checkpoint or a ``finetune`` / ``train`` run."""
    weights, info = read_sidecar(path)
    if "arch_def" not in info:
        raise UserError(
            f"{weights} does not record an architecture (arch_def): pass a child (extract, finetune or train run), "
            "not a supernet"
        )
    space = _space_of(info, weights)
    model = build_child(space, space.parse_arch_def(info["arch_def"]), num_classes=int(info["num_classes"]))
    load_into(model, extract_state_dict(load_checkpoint(weights, map_location=map_location)))
    return model, info


def read_search_result(path: str | os.PathLike) -> tuple[list, SearchSpace | None]:
    """``(arch_def, space)`` of a ``search`` output JSON (or any JSON with an ``arch_def``); ``space`` is ``None``
    for results written before searches recorded it."""
    path = Path(path)
    data = load_file(path, what="search result")
    if not isinstance(data, dict) or "arch_def" not in data:
        raise UserError(f"{path} has no arch_def: pass the JSON written by `search` or `extract`")
    space = None
    if data.get("space") is not None:
        try:
            space = SearchSpace.from_dict(data["space"])
        except (KeyError, TypeError, ValueError) as err:
            raise UserError(f"the search space recorded in {path} is invalid: {err}") from None
    return data["arch_def"], space


def load_search_result(path: str | os.PathLike, space: SearchSpace) -> Architecture:
    """The architecture of a search result, parsed in ``space``.

    Raises:
        UserError: The result records another search space than ``space`` (its networks differ).
    """
    arch_def, recorded = read_search_result(path)
    if recorded is not None and not recorded.same_networks(space):
        raise UserError(
            f"{path} was searched in another search space than the one given here (the supernet's, or --space); "
            "use the supernet the search ran on"
        )
    return space.parse_arch_def(arch_def)
