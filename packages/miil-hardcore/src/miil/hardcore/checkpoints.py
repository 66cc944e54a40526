"""Saving and loading supernets, children and search results with the facts needed to rebuild them.

A supernet run directory (written by the core engine) carries the search space and the class count in its sidecar's
``run_info``; a child checkpoint carries its ``arch_def`` and space. Loading always goes through
:func:`miil.core.io.load_checkpoint` (safetensors or weights-only torch files) and strict key matching.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from timm.models.mobilenetv3 import MobileNetV3

from miil.core.io import extract_state_dict, load_checkpoint, load_into, save_safetensors

from .builder import build_child
from .search_space import Architecture, SearchSpace
from .supernet import HardCoReSupernet

__all__ = [
    "load_child",
    "load_search_result",
    "load_supernet",
    "read_sidecar",
    "save_child",
]


def read_sidecar(path: str | os.PathLike) -> tuple[Path, dict[str, Any]]:
    """``(weights file, metadata)`` of a run directory (its ``best``), or of a ``.safetensors`` file with a ``.json``
    sidecar beside it."""
    path = Path(path)
    if path.is_dir():
        weights, meta_file = path / "best.safetensors", path / "best.json"
    else:
        weights, meta_file = path, path.with_suffix(".json")
    if not weights.is_file():
        raise FileNotFoundError(f"no weights at {weights}; pass a run directory or a .safetensors file")
    if not meta_file.is_file():
        raise FileNotFoundError(f"no metadata at {meta_file} (needed to rebuild the network from {weights})")
    meta = json.loads(meta_file.read_text())
    info = meta.get("run_info", meta)
    return weights, info


def _space_of(info: dict[str, Any], source: Path) -> SearchSpace:
    if "space" not in info:
        raise ValueError(f"{source} does not record the search space (run_info.space)")
    return SearchSpace.from_dict(info["space"])


def load_supernet(path: str | os.PathLike, *, map_location: str = "cpu") -> HardCoReSupernet:
    """Rebuild a supernet from a ``train-supernet`` run directory (or weights file with sidecar)."""
    weights, info = read_sidecar(path)
    if info.get("kind") != "supernet":
        raise ValueError(f"{weights} is not a HardCoRe supernet checkpoint (kind {info.get('kind')!r})")
    supernet = HardCoReSupernet(_space_of(info, weights), num_classes=int(info["num_classes"]))
    load_into(supernet, extract_state_dict(load_checkpoint(weights, map_location=map_location)))
    return supernet


def save_child(
    model: MobileNetV3, space: SearchSpace, arch: Architecture, path: str | os.PathLike, **extra: Any
) -> Path:
    """Write a child's weights (``.safetensors``) and its ``.json`` sidecar (space, arch_def, classes...)."""
    path = Path(path)
    if path.suffix != ".safetensors":
        raise ValueError(f"child checkpoints are .safetensors files, got {path}")
    save_safetensors(model.state_dict(), path)
    meta = {
        "kind": "child",
        "space": space.to_dict(),
        "arch_def": space.arch_def(arch),
        "num_classes": model.num_classes,
        **extra,
    }
    path.with_suffix(".json").write_text(json.dumps(meta, indent=2))
    return path


def load_child(path: str | os.PathLike, *, map_location: str = "cpu") -> tuple[MobileNetV3, dict[str, Any]]:
    """Rebuild a child (timm ``MobileNetV3``) from a child checkpoint or a ``finetune`` / ``train`` run."""
    weights, info = read_sidecar(path)
    if "arch_def" not in info:
        raise ValueError(f"{weights} does not record an architecture (arch_def)")
    space = _space_of(info, weights)
    model = build_child(space, space.parse_arch_def(info["arch_def"]), num_classes=int(info["num_classes"]))
    load_into(model, extract_state_dict(load_checkpoint(weights, map_location=map_location)))
    return model, info


def load_search_result(path: str | os.PathLike, space: SearchSpace) -> Architecture:
    """The architecture of a ``search`` output JSON (or any JSON with an ``arch_def``)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"cannot read a search result from {path}: {err}") from None
    if "arch_def" not in data:
        raise ValueError(f"{path} has no arch_def")
    return space.parse_arch_def(data["arch_def"])
