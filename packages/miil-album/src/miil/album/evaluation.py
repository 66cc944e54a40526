"""``miil album validate`` and ``infer`` on miil-core's evaluation loop: event metrics and per-album importance reports.

Paper: PETA (arXiv 2109.12499), sections 4 and 5: albums are scored by mAP over the events (and top-1), and the CLS
attention over an album's photos ranks them by importance, which correlates with the human scores of ML-CUFED. Both
verbs run through :func:`miil.core.evaluate.evaluate` (progress bar, shards over torchrun ranks, skipped inputs
collected), with :class:`AlbumReportMeter` in place of a plain meter: the logits it scores are the ones the training
engine scores (``model(images, mask)``), so ``validate`` reports for a run's best weights exactly the metrics that
selected them; the attention for the importance reports is computed beside them from the same image embeddings.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn as nn

from miil.core import distributed as du
from miil.core.evaluate import EvalReport, evaluate

from .data import AlbumDataset, collate_named_albums
from .export import album_report
from .importance import mean_ignoring_nan
from .metrics import EventMeter
from .models import PETA

__all__ = ["AlbumReportMeter", "album_report_eval_fn", "evaluate_albums"]

CORRELATIONS = ("last_layer", "rollout")


def album_report_eval_fn(attention: bool):
    """``eval_fn`` for :func:`~miil.core.evaluate.evaluate` over :func:`collate_named_albums` batches.

    Returns ``(logits, info)``: ``info`` carries the targets, mask, album indices, photo names and, for PETA with
    ``attention``, every layer's attention.
    """

    def fn(model: nn.Module, batch: Any) -> tuple[torch.Tensor, dict[str, Any]]:
        images, targets, mask, indices, names = batch
        core = model.module if hasattr(model, "module") else model
        att = None
        if isinstance(core, PETA) and attention:
            embeddings = core.embed_images(images, mask)
            logits = core.forward_embeddings(embeddings, mask)  # what model(images, mask) computes
            att = core.forward_embeddings(embeddings, mask, return_attention=True)[1]
        else:
            logits = model(images, mask)
        return logits, {"targets": targets, "mask": mask, "indices": indices, "names": names, "attention": att}

    return fn


class AlbumReportMeter:
    """Event mAP / top-1 of labelled albums, and one report per album (events, importance, Spearman vs human).

    Args:
        album_ids: Album id of each dataset index.
        classes: Event names in output order.
        targets: The albums are labelled: compute mAP and top-1.
        human: Human importance per album (``{album_id: {photo: score}}``), for the Spearman correlations.
        keep_reports: Keep every album's report (for ``--output`` / ``infer``); otherwise only the correlations.
    """

    def __init__(
        self,
        album_ids: Sequence[str],
        classes: Sequence[str],
        *,
        targets: bool = True,
        human: Mapping[str, Mapping[str, float]] | None = None,
        keep_reports: bool = False,
    ):
        self.album_ids = list(album_ids)
        self.classes = list(classes)
        self.with_targets = targets
        self.human = human
        self.keep_reports = keep_reports
        self.events = EventMeter()
        self.reports: list[dict[str, Any]] = []
        self._rows: list[tuple[int, dict[str, Any]]] = []

    def reset(self) -> None:
        self.events.reset()
        self.reports = []
        self._rows = []

    def update(self, outputs: torch.Tensor, info: Mapping[str, Any]) -> None:
        if self.with_targets:
            self.events.update(outputs, info["targets"].to(outputs.device))
        if not (self.keep_reports or self.human is not None):
            return
        attention = info["attention"]
        probabilities = outputs.detach().float().sigmoid().cpu()
        for row, index in enumerate(info["indices"].tolist()):
            album = self.album_ids[index]
            names = list(info["names"][row])
            human = self.human.get(album) if self.human is not None else None
            if attention is None:  # the mean-of-predictions baseline: events only
                order = torch.argsort(probabilities[row], descending=True).tolist()
                report = {
                    "album": album,
                    "images": names,
                    "events": {self.classes[i]: float(probabilities[row, i]) for i in order},
                }
            else:
                n = len(names)
                att = attention[row, :, :, : n + 1, : n + 1].detach().float().cpu()
                report = album_report(album, names, probabilities[row], att, self.classes, human=human)
            self._rows.append((index, report))

    def compute(self) -> dict[str, float]:
        """Metrics over every rank (collective); the reports, gathered and in dataset order, land in ``reports``."""
        metrics = self.events.compute() if self.with_targets else {}
        rows = self._rows
        if du.is_distributed():
            parts: list[Any] = [None] * du.get_world_size()
            torch.distributed.all_gather_object(parts, rows)
            rows = [row for part in parts for row in part]
        self.reports = [report for _, report in sorted(rows, key=lambda r: r[0])]
        if self.human is not None:
            for key in CORRELATIONS:
                values = [
                    math.nan if r["human_spearman"][key] is None else r["human_spearman"][key]
                    for r in self.reports
                    if r.get("human_spearman")
                ]
                metrics[f"spearman_{key}"] = mean_ignoring_nan(values)
                metrics[f"spearman_{key}_albums"] = float(len(values))
        return metrics


def evaluate_albums(
    model: nn.Module,
    dataset: AlbumDataset,
    meter: AlbumReportMeter,
    *,
    device: torch.device,
    precision: str,
    batch_size: int,
    num_workers: int = 0,
    progress: bool = True,
    desc: str = "validate",
) -> EvalReport:
    """Run ``model`` over ``dataset`` once with :func:`miil.core.evaluate.evaluate` (see the module docstring).

    Args:
        model: The album model.
        dataset: The albums (evaluation mode).
        meter: Collects metrics and reports.
        device: Where the model runs.
        precision: "fp32", "bf16" or "fp16".
        batch_size: Albums per batch.
        num_workers: Loader processes.
        progress: Progress bar on rank 0.
        desc: Label of the bar.
    """
    attention = meter.keep_reports or meter.human is not None
    return evaluate(
        model.to(device),
        dataset,
        meter=meter,
        eval_fn=album_report_eval_fn(attention),
        device=device,
        precision=precision,
        batch_size=batch_size,
        num_workers=num_workers,
        collate_fn=collate_named_albums,
        progress=progress,
        desc=desc,
    )
