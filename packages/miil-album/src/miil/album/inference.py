"""Loading a trained or converted album model, and predicting one album folder with its image importance.

Paper: PETA (arXiv 2109.12499); the original ``infer.py`` read one album folder, took 32 photos with ``linspace``
over the unsorted listing, and printed the top-3 events above a threshold (0.85 by default). Here the photos are
sorted before the uniform subset is taken, the model runs on CPU or GPU, and the most important photos are reported
alongside the events.

Weights accepted by :func:`load_album_model` (``--weights``):
    * a run directory of ``miil album train`` (``best.safetensors`` + ``best.json``);
    * a ``.safetensors`` file with a ``.json`` sidecar of the same stem (``best.json`` or ``miil album convert``'s);
    * an original PETA checkpoint (``peta_32.pth``), converted on the fly (:func:`~miil.album.load_peta_checkpoint`),
      read without unpickling arbitrary objects.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from miil.core.data import UnreadablePolicy
from miil.core.errors import UserError
from miil.core.io import extract_state_dict, load_checkpoint, load_into

from .convert import load_peta_checkpoint
from .data import ML_CUFED_EVENTS, album_eval_transform, eval_album_indices, list_album_images
from .export import album_report
from .models import PETA
from .recipes import PETA_32_RELEASE, PETARecipe
from .train import build_model

__all__ = ["LoadedAlbumModel", "load_album_model", "predict_album", "recipe_from_dict"]


@dataclass
class LoadedAlbumModel:
    """A model ready for evaluation, with what is needed to feed it and name its outputs.

    Args:
        model: The model, in evaluation mode.
        recipe: Its recipe (album size, image size, padding).
        classes: Event names in output order.
        source: The weights file.
        model_kwargs: The timm keyword arguments the backbone was built with.
        precision: The precision the run evaluated in (its sidecar's ``eval_precision``; ``None`` when unknown).
    """

    model: nn.Module
    recipe: PETARecipe
    classes: list[str]
    source: str
    model_kwargs: dict[str, Any] | None = None
    precision: str | None = None


def recipe_from_dict(config: dict[str, Any], base: PETARecipe = PETA_32_RELEASE) -> PETARecipe:
    """A :class:`PETARecipe` from a stored config dict (unknown keys ignored, lists made tuples)."""
    names = {f.name for f in dataclasses.fields(PETARecipe)}
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in config.items() if k in names}
    return dataclasses.replace(base, **values)


def _sidecar_for(weights: Path) -> Path:
    sidecar = weights.with_suffix(".json")
    if not sidecar.is_file():
        raise UserError(
            f"{weights} has no sidecar {sidecar} (the config and classes); pass a run directory of `miil album "
            "train`, a file written by `miil album convert`, or an original PETA .pth file"
        )
    return sidecar


def _default_classes(n: int) -> list[str]:
    return list(ML_CUFED_EVENTS) if n == len(ML_CUFED_EVENTS) else [f"event_{i}" for i in range(n)]


def load_album_model(
    checkpoint: str | os.PathLike,
    *,
    recipe: PETARecipe | None = None,
    classes: list[str] | None = None,
    model_kwargs: dict[str, Any] | None = None,
    device: str | torch.device = "cpu",
) -> LoadedAlbumModel:
    """Build the model a checkpoint describes and load its weights strictly (evaluation mode).

    Args:
        checkpoint: Run directory, ``.safetensors`` with sidecar, or an original PETA ``.pth``.
        recipe: Overrides the stored recipe (for original checkpoints: default ``PETA_32_RELEASE``; the number of
            events is read from the checkpoint's head).
        classes: Overrides the stored event names.
        model_kwargs: timm keyword arguments of the backbone (default: the stored ones).
        device: Where the model goes.
    """
    path = Path(checkpoint)
    if path.is_dir():
        weights, sidecar = path / "best.safetensors", path / "best.json"
        if not weights.is_file() or not sidecar.is_file():
            raise UserError(f"--weights {path} is not a finished run: best.safetensors / best.json are missing")
    elif path.suffix.lower() == ".safetensors":
        weights, sidecar = path, _sidecar_for(path)
    elif path.is_file():
        raw = load_checkpoint(path)
        head = extract_state_dict(raw).get("head.fc.weight")
        rec = dataclasses.replace(recipe or PETA_32_RELEASE, pretrained=False, init_checkpoint=None)
        if head is not None:  # the number of events is the checkpoint's
            rec = dataclasses.replace(rec, num_classes=int(head.shape[0]))
        model = build_model(rec, backbone_kwargs=model_kwargs)
        if not isinstance(model, PETA):
            raise UserError("original PETA checkpoints hold the transformer model; pick a transformer --recipe")
        stored = load_peta_checkpoint(raw, model)
        names = classes or stored or _default_classes(rec.num_classes)
        return LoadedAlbumModel(model.to(device).eval(), rec, list(names), str(path), model_kwargs)
    else:
        raise UserError(f"--weights {path} does not exist")
    try:
        meta = json.loads(sidecar.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UserError(f"sidecar {sidecar} of {weights} is not readable JSON ({type(err).__name__}: {err})") from None
    config = meta.get("config", {})
    run_info = meta.get("run_info", {})
    rec = recipe or recipe_from_dict(config)
    rec = dataclasses.replace(rec, pretrained=False, init_checkpoint=None)
    # Runs written before the dialect stored the timm arguments as backbone_kwargs.
    stored_kwargs = run_info.get("model_kwargs", run_info.get("backbone_kwargs"))
    kwargs = model_kwargs if model_kwargs is not None else stored_kwargs
    model = build_model(rec, backbone_kwargs=kwargs)
    load_into(model, load_checkpoint(weights))
    names = classes or run_info.get("classes") or _default_classes(rec.num_classes)
    if len(names) != rec.num_classes:
        raise UserError(f"{len(names)} class names for a model with {rec.num_classes} outputs ({sidecar})")
    precision = meta.get("eval_precision")
    return LoadedAlbumModel(model.to(device).eval(), rec, list(names), str(weights), kwargs, precision)


@torch.no_grad()
def predict_album(
    loaded: LoadedAlbumModel,
    folder: str | os.PathLike,
    *,
    human: dict[str, float] | None = None,
    strict: bool = False,
) -> dict[str, Any]:
    """Predict the events of one album folder and rank its photos by importance.

    Args:
        loaded: From :func:`load_album_model`.
        folder: Folder of the album's photos.
        human: Optional human importance per photo (name without extension) for a Spearman correlation.
        strict: Raise on unreadable photos instead of skipping them.

    Returns:
        The album report of :func:`~miil.album.album_report` (for the mean baseline: events only).
    """
    folder = Path(folder)
    names = list_album_images(folder)
    if not names:
        raise FileNotFoundError(f"no photos in album folder {folder}")
    rec = loaded.recipe
    picks = [names[i] for i in eval_album_indices(len(names), rec.album_size, pad=rec.pad)]
    policy = UnreadablePolicy(strict=strict)
    transform = album_eval_transform(rec.img_size)
    kept, tensors = [], []
    for name in picks:
        img = policy.load_image(folder / name)
        if img is not None:
            kept.append(name)
            tensors.append(transform(img))
    if not tensors:
        raise OSError(f"none of the photos of {folder} could be read")
    device = next(loaded.model.parameters()).device
    images = torch.stack(tensors).unsqueeze(0).to(device)
    if isinstance(loaded.model, PETA):
        logits, attention = loaded.model(images, return_attention=True)
        return album_report(
            folder.name, kept, logits[0].sigmoid().cpu(), attention[0].cpu(), loaded.classes, human=human
        )
    probs = loaded.model(images)[0].sigmoid().cpu()
    order = torch.argsort(probs, descending=True).tolist()
    return {"album": folder.name, "images": kept, "events": {loaded.classes[i]: float(probs[i]) for i in order}}
