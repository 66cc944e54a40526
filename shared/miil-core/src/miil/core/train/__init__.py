"""The training engine shared by every miil package."""

from .engine import TrainConfig, Trainer, TrainResult, load_run_weights
from .schedule import LRSchedule, OneCycleSchedule, create_schedule
from .seed import seed_everything

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
