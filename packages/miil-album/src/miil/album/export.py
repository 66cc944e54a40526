"""Per-album JSON reports: predicted events and image importance (CLS attention per layer and head, rollout).

Paper: PETA (arXiv 2109.12499), section 5 shows the album's photos ranked by the transformer's attention. The
original saved ``outputs/<album>_attn.pt`` and a pickle of file names; here one JSON document per album holds the
photo names, the event probabilities, the importance by the original's rule (last layer, heads averaged), by
attention rollout, the CLS attention of every layer and head, and, when human scores are given (ML-CUFED's
``image_importance.json``), the Spearman correlation of each importance with them.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from miil.core.io import atomic_write_text

from .importance import attention_rollout, cls_attention, image_importance, importance_spearman

__all__ = ["album_report", "write_album_reports"]


def _stem(name: str) -> str:
    return os.path.splitext(os.path.basename(name))[0]


def album_report(
    album_id: str,
    images: Sequence[str],
    probabilities: torch.Tensor,
    attention: torch.Tensor,
    classes: Sequence[str],
    *,
    human: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """The JSON-ready report of one album.

    Args:
        album_id: The album's id.
        images: Names of the album's photos, in the order the model saw them (padding excluded).
        probabilities: ``[num_classes]`` event probabilities.
        attention: ``[layers, heads, n+1, n+1]`` attention of this album, unpadded (``n = len(images)``).
        classes: Event names.
        human: Optional human importance per photo (names without extension).
    """
    n = len(images)
    if attention.ndim != 4 or attention.shape[-1] != n + 1:
        raise ValueError(f"attention of album {album_id!r} must be [layers, heads, {n + 1}, {n + 1}]")
    probabilities = probabilities.detach().float().cpu()
    att = attention.detach().unsqueeze(0).float().cpu()
    last = image_importance(att)[0]
    rollout = attention_rollout(att)[0]
    per_layer_head = cls_attention(att)[0]
    order = torch.argsort(probabilities, descending=True).tolist()
    report: dict[str, Any] = {
        "album": album_id,
        "images": list(images),
        "events": {classes[i]: round(float(probabilities[i]), 6) for i in order},
        "importance": {
            "last_layer": [round(float(v), 6) for v in last],
            "rollout": [round(float(v), 6) for v in rollout],
        },
        "ranking": [images[i] for i in torch.argsort(last, descending=True).tolist()],
        "cls_attention": [[[round(float(v), 6) for v in head] for head in layer] for layer in per_layer_head],
    }
    if human is not None:
        stems = [_stem(name) for name in images]
        correlations = {
            name: importance_spearman(dict(zip(stems, scores.tolist())), human)
            for name, scores in (("last_layer", last), ("rollout", rollout))
        }
        # NaN (fewer than 2 scored photos, or constant scores) is not valid JSON: null instead.
        report["human_spearman"] = {k: None if math.isnan(v) else round(v, 6) for k, v in correlations.items()}
    return report


def write_album_reports(path: str | os.PathLike, reports: Sequence[Mapping[str, Any]]) -> None:
    """Write reports atomically: a single album as one object, several as a list."""
    payload = reports[0] if len(reports) == 1 else list(reports)
    atomic_write_text(path, json.dumps(payload, indent=1, allow_nan=False) + "\n")
