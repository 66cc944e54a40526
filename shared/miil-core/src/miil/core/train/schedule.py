"""Learning-rate schedules for the engine: timm's schedulers, plus the one-cycle policy of the MIIL recipes.

The ASL / ML-Decoder / CSL training scripts use PyTorch's ``OneCycleLR(pct_start=0.2)`` stepped per iteration,
with momentum (Adam's beta1) cycled between 0.85 and 0.95. ``OneCycleSchedule`` computes the same values as a
pure function of the update count, so resuming needs no scheduler state. Everything else is delegated to
``timm.scheduler.create_scheduler_v2``.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from timm.scheduler import create_scheduler_v2

__all__ = ["OneCycleSchedule", "LRSchedule", "create_schedule"]


def _cos_anneal(start: float, end: float, frac: float) -> float:
    return end + (start - end) / 2.0 * (math.cos(math.pi * frac) + 1)


class OneCycleSchedule:
    """Two-phase cosine one-cycle policy (Smith & Topin), stepped per optimizer update.

    Args:
        optimizer: Optimizer whose groups get ``lr`` (and ``betas[0]`` or ``momentum`` when cycling momentum).
        max_lr: Peak learning rate.
        total_steps: Number of optimizer updates in the whole run.
        pct_start: Fraction of the run spent increasing the learning rate.
        div_factor: Initial lr is ``max_lr / div_factor``.
        final_div_factor: Final lr is ``initial lr / final_div_factor``.
        cycle_momentum: Cycle momentum inversely to the lr between ``max_momentum`` and ``base_momentum``.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        *,
        max_lr: float,
        total_steps: int,
        pct_start: float = 0.3,
        div_factor: float = 25.0,
        final_div_factor: float = 1e4,
        cycle_momentum: bool = True,
        base_momentum: float = 0.85,
        max_momentum: float = 0.95,
    ):
        if total_steps < 1:
            raise ValueError(f"OneCycleSchedule needs total_steps >= 1, got {total_steps}")
        self.optimizer = optimizer
        self.max_lr = max_lr
        self.total_steps = total_steps
        self.initial_lr = max_lr / div_factor
        self.min_lr = self.initial_lr / final_div_factor
        self.up_end = float(pct_start * total_steps) - 1
        self.down_end = float(total_steps - 1)
        self.cycle_momentum = cycle_momentum
        self.base_momentum = base_momentum
        self.max_momentum = max_momentum
        self.step_update(0)

    def values(self, step: int) -> tuple[float, float]:
        """(lr, momentum) after ``step`` updates."""
        step = min(step, self.total_steps - 1)
        if step <= self.up_end:
            frac = step / self.up_end if self.up_end > 0 else 1.0
            return (
                _cos_anneal(self.initial_lr, self.max_lr, frac),
                _cos_anneal(self.max_momentum, self.base_momentum, frac),
            )
        span = self.down_end - self.up_end
        frac = (step - self.up_end) / span if span > 0 else 1.0
        return _cos_anneal(self.max_lr, self.min_lr, frac), _cos_anneal(self.base_momentum, self.max_momentum, frac)

    def step_update(self, num_updates: int) -> None:
        lr, mom = self.values(num_updates)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
            if self.cycle_momentum:
                if "betas" in group:
                    group["betas"] = (mom, *group["betas"][1:])
                elif "momentum" in group:
                    group["momentum"] = mom

    def step(self, epoch: int, metric: float | None = None) -> None:  # per-epoch hook: nothing to do
        return None


class LRSchedule:
    """One interface over timm schedulers, the one-cycle policy and a constant lr.

    ``step_update(num_updates)`` is called after every optimizer update, ``step_epoch(epoch)`` after every epoch.
    """

    def __init__(self, impl: Any | None, *, on_updates: bool):
        self.impl = impl
        self.on_updates = on_updates

    def step_update(self, num_updates: int) -> None:
        if self.impl is not None and self.on_updates:
            self.impl.step_update(num_updates)

    def step_epoch(self, epoch: int, metric: float | None = None) -> None:
        if self.impl is not None and not self.on_updates:
            self.impl.step(epoch, metric)

    def start(self, epoch: int, num_updates: int) -> None:
        """Set the learning rate for the first update of ``epoch`` (fresh start or resume)."""
        if self.impl is None:
            return
        if self.on_updates:
            self.impl.step_update(num_updates)
        else:
            self.impl.step(epoch)


def create_schedule(
    optimizer: torch.optim.Optimizer,
    *,
    sched: str,
    epochs: int,
    updates_per_epoch: int,
    lr: float,
    warmup_epochs: int = 0,
    warmup_lr: float = 1e-6,
    min_lr: float = 0.0,
    cooldown_epochs: int = 0,
    decay_epochs: float = 90.0,
    decay_rate: float = 0.1,
    on_updates: bool = True,
    pct_start: float = 0.3,
    div_factor: float = 25.0,
    cycle_momentum: bool = True,
) -> LRSchedule:
    """Build the schedule named ``sched``: "none", "onecycle", or any timm scheduler ("cosine", "step", ...)."""
    if sched in ("none", "constant", ""):
        return LRSchedule(None, on_updates=on_updates)
    if sched == "onecycle":
        impl = OneCycleSchedule(
            optimizer,
            max_lr=lr,
            total_steps=max(1, epochs * updates_per_epoch),
            pct_start=pct_start,
            div_factor=div_factor,
            cycle_momentum=cycle_momentum,
        )
        return LRSchedule(impl, on_updates=True)
    impl, _ = create_scheduler_v2(
        optimizer,
        sched=sched,
        num_epochs=epochs,
        warmup_epochs=warmup_epochs,
        warmup_lr=warmup_lr,
        min_lr=min_lr,
        cooldown_epochs=cooldown_epochs,
        decay_epochs=decay_epochs,
        decay_rate=decay_rate,
        step_on_epochs=not on_updates,
        updates_per_epoch=updates_per_epoch,
    )
    return LRSchedule(impl, on_updates=on_updates)
