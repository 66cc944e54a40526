"""Import the latency table the original HardCoRe-NAS code writes (``lut.pkl``) into a :class:`LatencyTable`.

Paper: HardCoRe-NAS (arXiv 2102.11646), section 3.3. The original code (github Alibaba-MIIL/HardCoReNAS,
``measure_latency_lut.py``) pickles one plain dict: every inverted-residual block configuration it timed, keyed by a
descriptor string, and the fixed rest of the network under ``"general"``, all in **seconds**::

    {"in_channels_16_out_channels_24_stride_2_resolution_112_er_3_k_5_se_0.25_act_1": 0.000412, ...,
     "general": 0.0031}

A descriptor names the block's input and output channels, stride, input resolution, expansion ratio, depthwise kernel,
squeeze-excite ratio (0 or 0.25) and activation (``act_1`` ReLU, ``act_0`` hard-swish). The block entries are per
sample, except on the original's ``gpu`` target, where they are per batch of ``--lut_measure_batch_size`` (1 by
default); ``"general"`` is always per sample. It covers what the original timed outside the searched stages (the
stem, the first block and the last 1x1 block, plus pooling and the classifier on its ``cpu`` and ``gpu`` targets), so
here it becomes the table's ``stem`` entry and ``head`` is 0.

The file is read through :func:`miil.core.io.restricted_unpickle`: a pickle that names any class or function (the
way a malicious pickle runs code) is refused before anything is built, and nothing is written.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from miil.core.io import restricted_unpickle

from .latency_table import FIXED_PARTS, POSITIONS, LatencyTable, LatencyTableError
from .search_space import SearchSpace

__all__ = ["OriginalBlock", "import_original_lut", "original_descriptor", "parse_original_descriptor"]

GENERAL_KEY = "general"
# The SE ratio of the original's blocks with squeeze-excite (its SE_RATIO = [0, 0.25]); ours is the same block.
ORIGINAL_SE_RATIO = 0.25
_NUMBER = r"\d+(?:\.\d+)?"
_DESCRIPTOR = re.compile(
    r"in_channels_(?P<in_channels>\d+)_out_channels_(?P<out_channels>\d+)_stride_(?P<stride>\d+)"
    rf"_resolution_(?P<resolution>\d+)_er_(?P<expansion>{_NUMBER})_k_(?P<kernel>\d+)"
    rf"_se_(?P<se_ratio>{_NUMBER})_act_(?P<relu>[01])"
)


@dataclass(frozen=True)
class OriginalBlock:
    """One block configuration as the original LUT names it.

    Args:
        in_channels: Input channels.
        out_channels: Output channels.
        stride: Depthwise stride.
        resolution: Spatial size of the block's input.
        expansion: Expansion ratio (the original also had 2 and 2.5 in an extended space).
        kernel: Depthwise kernel size.
        se_ratio: Squeeze-excite ratio, 0 for none.
        relu: ReLU activation (``act_1``), else hard-swish (``act_0``).
    """

    in_channels: int
    out_channels: int
    stride: int
    resolution: int
    expansion: float
    kernel: int
    se_ratio: float
    relu: bool


def parse_original_descriptor(descriptor: str) -> OriginalBlock:
    """The block a descriptor of the original LUT names.

    Args:
        descriptor: E.g. ``"in_channels_24_out_channels_40_stride_2_resolution_56_er_6_k_5_se_0.25_act_1"``.

    Raises:
        ValueError: The string is not such a descriptor.
    """
    m = _DESCRIPTOR.fullmatch(descriptor)
    if m is None:
        raise ValueError(f"{descriptor!r} is not a block descriptor of the original HardCoRe-NAS latency table")
    g = m.groupdict()
    return OriginalBlock(
        in_channels=int(g["in_channels"]),
        out_channels=int(g["out_channels"]),
        stride=int(g["stride"]),
        resolution=int(g["resolution"]),
        expansion=float(g["expansion"]),
        kernel=int(g["kernel"]),
        se_ratio=float(g["se_ratio"]),
        relu=g["relu"] == "1",
    )


def _block_for(space: SearchSpace, stage: int, position: int, option: int) -> OriginalBlock:
    geo = space.block_geometry(stage, position)
    choice = space.options[option]
    return OriginalBlock(
        in_channels=geo["in_channels"],
        out_channels=geo["out_channels"],
        stride=geo["stride"],
        resolution=geo["resolution"],
        expansion=float(choice.expansion),
        kernel=choice.kernel,
        se_ratio=ORIGINAL_SE_RATIO if choice.se else 0.0,
        relu=geo["act"] == "relu",
    )


def original_descriptor(space: SearchSpace, stage: int, position: int, option: int) -> str:
    """The original's descriptor of one cell of our table (for messages: what the original would have to measure).

    Args:
        space: The search space.
        stage: Stage index.
        position: 0 for the stage's first block, 1 for a later one.
        option: Option index.
    """
    b = _block_for(space, stage, position, option)

    def num(x: float) -> str:  # the original formats ints as "3" and ratios as "0.25"
        return str(int(x)) if x == int(x) else str(x)

    return (
        f"in_channels_{b.in_channels}_out_channels_{b.out_channels}_stride_{b.stride}_resolution_{b.resolution}"
        f"_er_{num(b.expansion)}_k_{b.kernel}_se_{num(b.se_ratio)}_act_{int(b.relu)}"
    )


def _seconds(path: Path, key: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise LatencyTableError(f"original latency table {path}: entry {key!r} is {value!r}, not seconds >= 0")
    return float(value)


def import_original_lut(
    path: str | os.PathLike, space: SearchSpace | None = None, *, gpu_batch_size: int = 1
) -> LatencyTable:
    """Read the original code's ``lut.pkl`` as a :class:`LatencyTable` (milliseconds per sample).

    Entries of block configurations that ``space`` does not have (e.g. the original's extended expansion ratios)
    are ignored and counted in the table's ``device["ignored_entries"]``; a configuration of ``space`` that the file
    lacks is an error naming it in the original's descriptor format.

    Args:
        path: The pickle the original ``measure_latency_lut.py`` (or ``search.py``) wrote.
        space: The search space to fill (the paper's at 224x224 by default; the input size sets the resolutions).
        gpu_batch_size: ``--lut_measure_batch_size`` of a table the original measured with ``--target_device gpu``,
            whose block entries are per batch; 1 for its default and for ``cpu`` / ``onnx`` tables.

    Raises:
        miil.core.errors.UserError: The file is missing, unreadable, or a pickle that names any class or function.
        LatencyTableError: The pickle is not an original latency table or lacks a block of ``space``.
    """
    path = Path(path)
    space = space if space is not None else SearchSpace()
    if gpu_batch_size < 1:
        raise LatencyTableError(f"gpu_batch_size must be >= 1, got {gpu_batch_size}")
    data = restricted_unpickle(path, what="original latency table")
    if not isinstance(data, dict) or GENERAL_KEY not in data:
        kind = type(data).__name__ if not isinstance(data, dict) else "dict without a 'general' entry"
        raise LatencyTableError(
            f"{path} is a {kind}; an original HardCoRe-NAS latency table is a dict of "
            "{descriptor: seconds} with a 'general' entry"
        )
    general = _seconds(path, GENERAL_KEY, data[GENERAL_KEY])
    measured: dict[OriginalBlock, float] = {}
    for key, value in data.items():
        if key == GENERAL_KEY:
            continue
        if not isinstance(key, str):
            raise LatencyTableError(f"original latency table {path}: key {key!r} is not a descriptor string")
        try:
            block = parse_original_descriptor(key)
        except ValueError as err:
            raise LatencyTableError(f"original latency table {path}: {err}") from None
        measured[block] = _seconds(path, key, value)

    block_ms = np.empty((space.num_stages, len(POSITIONS), space.num_options))
    used = set()
    for s in range(space.num_stages):
        for pos in range(len(POSITIONS)):
            for c in range(space.num_options):
                block = _block_for(space, s, pos, c)
                if block not in measured:
                    raise LatencyTableError(
                        f"original latency table {path} lacks {original_descriptor(space, s, pos, c)} "
                        f"(stage {s}, {POSITIONS[pos]} block, option {space.options[c]}); was it measured for "
                        f"this search space at {space.image_size}x{space.image_size}?"
                    )
                used.add(block)
                block_ms[s, pos, c] = measured[block] * 1e3 / gpu_batch_size
    fixed_ms = dict.fromkeys(FIXED_PARTS, 0.0)
    fixed_ms["stem"] = general * 1e3
    return LatencyTable(
        space,
        block_ms,
        fixed_ms,
        device={
            "source": "original HardCoRe-NAS latency table",
            "file": path.name,
            "ignored_entries": len(measured) - len(used),
        },
        timing={
            "backend": "original",
            "units_in_file": "seconds",
            "gpu_batch_size": gpu_batch_size,
            "general": "the original's fixed frame, stored as 'stem' (head 0)",
        },
    )
