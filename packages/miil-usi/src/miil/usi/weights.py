"""``--weights PATH``: a run folder or a weights file, with the facts stored beside it.

Paper: USI (arXiv 2204.03475) evaluates the weights its training kept (the better of EMA and raw). A ``miil usi
train`` run folder holds them as ``best.safetensors`` with the ``best.json`` sidecar (recipe, classes, normalisation,
the precision validation ran in); a file is read through the safe loader, with the sidecar of the same stem
(``best.json`` beside ``best.safetensors``, the JSON ``miil usi convert`` writes) or the run's ``config.json`` when it
is one of a run's ``checkpoints/``. Nothing is unpickled: weights go through ``miil.core.io.load_checkpoint`` and
sidecars are JSON.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from miil.core.errors import UserError
from miil.core.io import extract_state_dict, load_checkpoint

__all__ = ["RunWeights", "classifier_outputs", "read_weights"]


@dataclass
class RunWeights:
    """Weights and what is known about them.

    Args:
        state: The state dict (``module.`` prefixes removed).
        file: The weights file read.
        meta: The sidecar (``config``, ``run_info``, ``eval_precision``, ...), empty when there is none.
    """

    state: dict[str, torch.Tensor]
    file: Path
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def config(self) -> dict[str, Any]:
        """The recipe the weights were trained with (empty when unknown)."""
        return dict(self.meta.get("config") or {})

    @property
    def run_info(self) -> dict[str, Any]:
        """Facts of the run (classes, normalisation, ...); empty when unknown."""
        return dict(self.meta.get("run_info") or {})

    @property
    def precision(self) -> str | None:
        """The precision the run validated in ("fp32", "bf16", "fp16"), when the sidecar says."""
        return self.meta.get("eval_precision")


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UserError(f"cannot read the sidecar {path}: {type(err).__name__}: {err}") from None
    return value if isinstance(value, dict) else None


def _sidecar(file: Path) -> dict[str, Any]:
    candidates = [file.with_suffix(".json")]
    if file.parent.name == "checkpoints":  # a run's per-epoch weights: the run's config describes them
        candidates.append(file.parent.parent / "config.json")
    for candidate in candidates:
        if candidate.is_file():
            meta = _read_json(candidate)
            if meta is not None and "config" in meta:
                return meta
    return {}


def read_weights(path: str | os.PathLike, *, what: str = "--weights") -> RunWeights:
    """Read ``--weights PATH``: a run folder (its ``best.safetensors`` and ``best.json``) or a weights file.

    Args:
        path: The run folder or file.
        what: How messages name the option.

    Raises:
        UserError: The path does not exist, a folder is not a run folder, or a file is not a plain weights file.
    """
    p = Path(path)
    if p.is_dir():
        best = p / "best.safetensors"
        if not best.is_file():
            raise UserError(
                f"{what} {p} is a folder without best.safetensors: give a run folder written by a train verb, or a "
                "weights file"
            )
        meta = _read_json(p / "best.json") if (p / "best.json").is_file() else None
        return RunWeights(dict(load_checkpoint(best)), best, meta or {})
    if not p.exists():
        raise UserError(f"{what} {p} does not exist (give a run folder or a weights file)")
    state = extract_state_dict(load_checkpoint(p))
    return RunWeights(state, p, _sidecar(p))


def classifier_outputs(state: Mapping[str, torch.Tensor], model: str) -> int | None:
    """How many classes the classifier in ``state`` predicts, read from the weights of timm ``model``'s classifier.

    Args:
        state: The weights.
        model: timm model name (its ``pretrained_cfg`` names the classifier, e.g. ``head.fc``).

    Returns:
        The number of outputs, or ``None`` when the weights hold no classifier of that name.
    """
    import timm

    with torch.device("meta"):
        net = timm.create_model(model, pretrained=False)
    names = (getattr(net, "pretrained_cfg", None) or {}).get("classifier") or ()
    for name in (names,) if isinstance(names, str) else names:
        weight = state.get(f"{name}.weight")
        if isinstance(weight, torch.Tensor) and weight.ndim >= 1:
            return int(weight.shape[0])
    return None
