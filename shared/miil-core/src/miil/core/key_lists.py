"""Key -> shape lists of original models, and placeholder state dicts built from them.

The converters of every miil package load checkpoints written by the papers' original code. To prove a converter
against the original layout rather than against a layout rebuilt from our own modules, each package commits the
list of state-dict keys and shapes that the original code builds (one ``key<TAB>[d0, d1, ...]`` line per tensor,
``[]`` for a scalar, ``#`` header lines naming the repository, commit, files and configuration). Its tests turn a
list into a state dict of placeholders (meta tensors by default: shapes without memory, so a 180M-parameter model
costs nothing) and run the converter on it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

__all__ = ["KeyList", "check_conversion", "placeholder_state_dict", "read_key_list"]


@dataclass(frozen=True)
class KeyList:
    """A parsed key list.

    Args:
        shapes: Key -> shape, in the file's order (the order the original's ``state_dict()`` yields).
        header: The ``#`` comment lines, without the leading ``#``.
        path: Where it was read from.
    """

    shapes: dict[str, tuple[int, ...]]
    header: list[str] = field(default_factory=list)
    path: Path | None = None

    def __len__(self) -> int:
        return len(self.shapes)

    def with_prefix(self, prefix: str) -> dict[str, tuple[int, ...]]:
        """The shapes with every key prefixed (``"module."`` for a DDP / DataParallel save)."""
        return {prefix + k: v for k, v in self.shapes.items()}


def read_key_list(path: str | os.PathLike) -> KeyList:
    """Read a ``key<TAB>shape`` list.

    Args:
        path: The ``.txt`` file.

    Raises:
        ValueError: naming the line that is not ``key<TAB>[ints]`` or repeats a key.
    """
    path = Path(path)
    shapes: dict[str, tuple[int, ...]] = {}
    header: list[str] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        if line.startswith("#"):
            header.append(line[1:].strip())
            continue
        key, sep, shape_text = line.partition("\t")
        try:
            shape = json.loads(shape_text) if sep else None
        except json.JSONDecodeError:
            shape = None
        if not key or not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
            raise ValueError(f"{path}:{number}: expected 'key<TAB>[d0, d1, ...]', got {line!r}")
        if key in shapes:
            raise ValueError(f"{path}:{number}: key {key!r} is listed twice")
        shapes[key] = tuple(shape)
    if not shapes:
        raise ValueError(f"{path}: no keys listed")
    return KeyList(shapes, header, path)


def placeholder_state_dict(
    shapes: Mapping[str, tuple[int, ...]] | KeyList,
    *,
    device: str | torch.device = "meta",
    fill: Mapping[str, torch.Tensor] | None = None,
) -> dict[str, torch.Tensor]:
    """A state dict of zero (or meta) tensors with the listed shapes.

    BatchNorm's ``num_batches_tracked`` counters are ``long`` scalars, as PyTorch stores them; everything else is
    ``float32``.

    Args:
        shapes: Key -> shape, or a :class:`KeyList`.
        device: ``"meta"`` (no memory; enough for key and shape checks) or a real device for zero tensors.
        fill: Real values for some keys, kept on their own device (e.g. fixed filters a converter verifies, or a
            position embedding it interpolates); their shapes must match the list.
    """
    if isinstance(shapes, KeyList):
        shapes = shapes.shapes
    out = {}
    for key, shape in shapes.items():
        dtype = torch.long if key.endswith("num_batches_tracked") else torch.float32
        out[key] = torch.zeros(shape, dtype=dtype, device=device)
    for key, value in (fill or {}).items():
        if key not in out:
            raise KeyError(f"fill names {key!r}, which is not in the list")
        if tuple(value.shape) != tuple(out[key].shape):
            raise ValueError(f"fill[{key!r}] has shape {list(value.shape)}; the list says {list(out[key].shape)}")
        out[key] = value.to(dtype=out[key].dtype)
    return out


def check_conversion(
    source: Collection[str],
    converted: Mapping[str, torch.Tensor],
    model: nn.Module,
    *,
    dropped: Collection[str] = (),
    added: Collection[str] = (),
) -> None:
    """Check that a conversion accounts for every source key, and load it into ``model`` strictly.

    The converted state dict must hold exactly ``model``'s keys with ``model``'s shapes, and (one target key per
    source key) ``len(converted) == len(source) - len(dropped) + len(added)``: a key the converter drops or invents
    without the caller expecting it makes the counts differ.

    Args:
        source: The source keys (a key list, or a state dict's keys).
        converted: The converter's output.
        model: The target; ``load_state_dict(converted, strict=True)`` must succeed (a meta-device model is fine).
        dropped: Source keys the converter is expected to drop (fixed filters, unused architecture variables).
        added: Target keys the converter is expected to make up (e.g. BatchNorm counters the original lacks).

    Raises:
        AssertionError: listing what does not line up.
    """
    own = model.state_dict()
    problems = []
    missing = [k for k in own if k not in converted]
    extra = [k for k in converted if k not in own]
    shapes = [
        f"{k}: {list(converted[k].shape)} vs {list(own[k].shape)}"
        for k in converted
        if k in own and tuple(converted[k].shape) != tuple(own[k].shape)
    ]
    for title, items in (("missing", missing), ("unexpected", extra), ("shape mismatches", shapes)):
        if items:
            problems.append(f"{len(items)} {title}: {items[:10]}")
    unknown = [k for k in dropped if k not in source]
    if unknown:
        problems.append(f"'dropped' names keys the source does not have: {unknown[:10]}")
    expected = len(source) - len(dropped) + len(added)
    if len(converted) != expected:
        problems.append(
            f"{len(source)} source keys - {len(dropped)} dropped + {len(added)} added = {expected}, but the "
            f"conversion produced {len(converted)}: a key was dropped or invented unexpectedly"
        )
    if problems:
        raise AssertionError("conversion does not account for every key:\n  " + "\n  ".join(problems))
    # Into a meta-device model, assign: copying real tensors into meta ones is a no-op PyTorch warns about.
    model.load_state_dict(dict(converted), strict=True, assign=any(t.is_meta for t in own.values()))
