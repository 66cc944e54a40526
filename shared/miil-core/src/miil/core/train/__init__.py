"""The training engine shared by every miil package.

Names are imported on first use (PEP 562): ``from miil.core.train import TrainConfig`` loads no torch, so recipe
modules and command-line parsers stay cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "TrainConfig": ".config",
    "Trainer": ".engine",
    "TrainResult": ".engine",
    "load_run_weights": ".engine",
    "LRSchedule": ".schedule",
    "OneCycleSchedule": ".schedule",
    "create_schedule": ".schedule",
    "seed_everything": ".seed",
}

__all__ = [
    "LRSchedule",
    "OneCycleSchedule",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "create_schedule",
    "load_run_weights",
    "seed_everything",
]

if TYPE_CHECKING:
    from .config import TrainConfig
    from .engine import Trainer, TrainResult, load_run_weights
    from .schedule import LRSchedule, OneCycleSchedule, create_schedule
    from .seed import seed_everything


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
