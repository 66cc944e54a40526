"""Searching an architecture under a latency target with the trained supernet: HardCoRe-NAS and the soft baseline.

Paper: HardCoRe-NAS (arXiv 2102.11646), section 3.4 and section 4 (comparison with soft-penalty methods). The
objective is the expected cross-entropy of the supernet on held-out training images (the original: 20% of the
training set) with the weights frozen and BN in eval mode. Its stochastic gradient with respect to the probabilities
``alpha, beta`` is the original's: every sample draws its own one-hot path (option of every block, depth of every
stage) from ``alpha, beta``, the supernet runs every path mixed by these one-hot weights, and the gradient of the loss
with respect to the sampled weights (``dL/dw_c``: the first-order change of the loss if the sample took option ``c``)
is averaged over the batch and over DDP ranks. Because the Frank-Wolfe oracle is linear in each simplex, only these
per-option differences matter; no temperature enters (the original took ``attention.grad`` of its hard Gumbel sample,
not the gradient through the soft relaxation, which the earlier straight-through estimate here did and which is
scaled by ``1 / p`` and therefore noisy where a probability is small).

Step size: the paper runs 10,000 steps with a fixed ``gamma = 0.002``, so the balanced start is forgotten
(``(1 - gamma)^(steps / 2)`` per block is about ``e^-10``). A short search with that step never leaves its start, and
the start leans toward the cheapest network (it is the feasible point nearest uniform on the way to the cheapest one),
so sparsification rounded it to the lightest network whatever the target. ``gamma_schedule="auto"`` (the default) uses
the fixed step when ``gamma * steps >= 20`` as in the paper, and otherwise the original's diminishing Frank-Wolfe step
``4 / (k + 4)`` (its ``--fixed_gamma_step False`` with a maximal step of 1), which moves to the oracle's vertex at once
and averages the later ones.

- :func:`hardcore_search`: block-coordinate stochastic Frank-Wolfe (:class:`~miil.hardcore.frank_wolfe.
  BlockFrankWolfe`), sparsified and rounded so that the final architecture's predicted latency is <= the target.
- :func:`soft_penalty_search`: the baseline the paper compares with (TF-NAS style): Adam on the logits of
  ``CE + lambda * relu(E[lat] / T - 1)``, then the argmax. Nothing forces its result under the target.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from miil.core import distributed as du

from .bilinear import latency_form
from .frank_wolfe import BlockFrankWolfe
from .latency_table import LatencyTable
from .search_space import Architecture
from .supernet import HardCoReSupernet, PathWeights, sample_paths

__all__ = ["SearchResult", "architecture_gradients", "hardcore_search", "resolve_gamma_schedule", "soft_penalty_search"]

# The paper's fixed step (0.002) over its 10,000 steps: gamma * steps = 20 forgets the start.
_FORGETTING_GAMMA_STEPS = 20.0


@dataclass
class SearchResult:
    """Outcome of a search.

    Args:
        method: ``"hardcore"`` (BCSFW) or ``"soft_penalty"``.
        architecture: The chosen architecture.
        target_ms: The latency target.
        predicted_ms: Predicted latency of the chosen architecture (sum of its table entries, calibrated).
        alpha: Final relaxed option probabilities (before rounding for BCSFW).
        beta: Final relaxed depth probabilities.
        seconds: Wall time of the search.
        history: Per-step records (step, block moved, loss, expected latency).
        gamma_schedule: The step-size schedule the search ran with (``"fixed"`` or ``"decay"``).
        gamma: Its (maximal) step size.
    """

    method: str
    architecture: Architecture
    target_ms: float
    predicted_ms: float
    alpha: np.ndarray
    beta: np.ndarray
    seconds: float
    history: list[dict[str, Any]] = field(default_factory=list)
    gamma_schedule: str | None = None
    gamma: float | None = None

    @property
    def feasible(self) -> bool:
        return self.predicted_ms <= self.target_ms

    def to_dict(self, space) -> dict[str, Any]:
        return {
            "method": self.method,
            "arch_def": space.arch_def(self.architecture),
            # The space travels with the result: `train --arch` and `finetune --arch` rebuild the network from it.
            "space": space.to_dict(),
            "target_ms": self.target_ms,
            "predicted_ms": self.predicted_ms,
            "feasible": self.feasible,
            "seconds": self.seconds,
            "gamma_schedule": self.gamma_schedule,
            "gamma": self.gamma,
            "alpha": self.alpha.tolist(),
            "beta": self.beta.tolist(),
            "history": self.history,
        }


def _batches(loader: Iterable) -> Iterable:
    for epoch in itertools.count():
        if hasattr(loader, "sampler") and hasattr(loader.sampler, "set_epoch"):
            loader.sampler.set_epoch(epoch)
        yielded = False
        for batch in loader:
            if batch is None:  # every image of the batch was unreadable
                continue
            yielded = True
            yield batch
        if not yielded:
            raise ValueError("the search data loader is empty")


def _freeze(supernet: HardCoReSupernet) -> list[bool]:
    flags = [p.requires_grad for p in supernet.parameters()]
    supernet.requires_grad_(False)
    supernet.eval()
    return flags


def _unfreeze(supernet: HardCoReSupernet, flags: list[bool]) -> None:
    for p, f in zip(supernet.parameters(), flags):
        p.requires_grad_(f)


def architecture_gradients(
    supernet: HardCoReSupernet, alpha: np.ndarray, beta: np.ndarray, batch: Any
) -> tuple[np.ndarray, np.ndarray, float]:
    """Stochastic gradient of the mean cross-entropy w.r.t. the probabilities ``alpha``, ``beta``.

    Every sample draws a one-hot path from ``(alpha, beta)``; the returned gradient is that of the loss with respect
    to these sampled one-hot weights, averaged over the batch (the original's ``attention.grad`` summed over samples).

    Args:
        supernet: The frozen supernet (eval mode).
        alpha: ``[stages, max depth, options]`` option probabilities.
        beta: ``[stages, depths]`` depth probabilities.
        batch: ``(images, labels, ...)``.

    Returns:
        ``(grad_alpha, grad_beta, loss)``, the gradients averaged over DDP ranks.
    """
    device = next(supernet.parameters()).device
    x, y = batch[0].to(device), batch[1].to(device)
    n = x.shape[0]
    a = torch.as_tensor(alpha, dtype=torch.float32).clamp_min(0.0)
    b = torch.as_tensor(beta, dtype=torch.float32).clamp_min(0.0)
    picks_a = torch.multinomial(a.reshape(-1, a.shape[-1]), n, replacement=True).reshape(*a.shape[:-1], n)
    picks_b = torch.multinomial(b, n, replacement=True)
    w_a = F.one_hot(picks_a, a.shape[-1]).to(device=device, dtype=torch.float32).requires_grad_(True)
    w_b = F.one_hot(picks_b, b.shape[-1]).to(device=device, dtype=torch.float32).requires_grad_(True)
    loss = F.cross_entropy(supernet(x, PathWeights(w_a, w_b), all_paths=True), y)
    ga, gb = torch.autograd.grad(loss, (w_a, w_b))
    ga, gb = ga.sum(dim=2) / n, gb.sum(dim=1) / n  # per-sample gradients, averaged (loss is already a batch mean)
    flat = torch.cat([ga.reshape(-1), gb.reshape(-1), loss.detach().reshape(1)]).double()
    if du.get_world_size() > 1:
        flat = du.all_reduce_sum(flat) / du.get_world_size()
    flat = flat.cpu().numpy()
    n_a = ga.numel()
    return flat[:n_a].reshape(alpha.shape), flat[n_a:-1].reshape(beta.shape), float(flat[-1])


def resolve_gamma_schedule(gamma: float, gamma_schedule: str, steps: int) -> tuple[float, str]:
    """The concrete ``(gamma, schedule)`` of a search: ``"auto"`` keeps a fixed ``gamma`` only if it forgets the start.

    Args:
        gamma: The fixed step (the paper: 0.002).
        gamma_schedule: ``"auto"``, ``"fixed"`` or ``"decay"``.
        steps: Frank-Wolfe steps of the search.
    """
    if gamma_schedule not in ("auto", "fixed", "decay"):
        raise ValueError(f"gamma_schedule must be 'auto', 'fixed' or 'decay', got {gamma_schedule!r}")
    if gamma_schedule != "auto":
        return gamma, gamma_schedule
    if gamma * steps >= _FORGETTING_GAMMA_STEPS:
        return gamma, "fixed"
    return 1.0, "decay"


def hardcore_search(
    supernet: HardCoReSupernet,
    table: LatencyTable,
    loader: Iterable,
    *,
    target_ms: float,
    steps: int = 10_000,
    momentum: float = 0.9,
    gamma: float = 0.002,
    gamma_schedule: str = "auto",
    seed: int = 0,
    progress: bool = True,
) -> SearchResult:
    """HardCoRe-NAS search: BCSFW from a feasible start, sparsify, round under the target.

    Args:
        supernet: The trained supernet (frozen during the search).
        table: The latency table of the target device (its space must be the supernet's).
        loader: Batches of held-out training images (cycled).
        target_ms: Latency target ``T`` in ms per sample.
        steps: Frank-Wolfe steps (the paper: 10,000 with batch 16).
        momentum: Gradient momentum (the paper: 0.9).
        gamma: Step size (the paper: 0.002 with 10,000 steps).
        gamma_schedule: ``"auto"`` (fixed ``gamma`` if ``gamma * steps >= 20`` as in the paper, else the diminishing
            ``4 / (k + 4)``), ``"fixed"`` or ``"decay"`` (``gamma * 4 / (k + 4)``).
        seed: Seed of the block choices and of the sampled paths.
        progress: Show a tqdm bar.
    """
    if not table.space.same_networks(supernet.space):
        raise ValueError("the latency table was measured for another search space than the supernet's")
    torch.manual_seed(seed)
    gamma, gamma_schedule = resolve_gamma_schedule(gamma, gamma_schedule, steps)
    form = latency_form(table)
    fw = BlockFrankWolfe(form, target_ms, momentum=momentum, gamma=gamma, gamma_schedule=gamma_schedule, seed=seed)
    flags = _freeze(supernet)
    history = []
    t0 = time.perf_counter()
    batches = _batches(loader)
    bar = tqdm(range(steps), desc=f"search T={target_ms:.3g}ms", disable=not progress or not du.is_main_process())
    try:
        for k in bar:
            ga, gb, loss = architecture_gradients(supernet, fw.alpha, fw.beta, next(batches))
            moved = fw.step(ga, gb)
            lat = fw.value()
            history.append({"step": k, "block": moved, "loss": loss, "expected_ms": lat})
            bar.set_postfix(loss=f"{loss:.3f}", lat=f"{lat:.3g}", refresh=False)
    finally:
        _unfreeze(supernet, flags)
    relaxed_alpha, relaxed_beta = fw.alpha.copy(), fw.beta.copy()
    fw.sparsify()
    alpha, beta = fw.discretize()
    arch = table.space.from_alpha_beta(alpha, beta)
    return SearchResult(
        "hardcore",
        arch,
        float(target_ms),
        table.latency(arch),
        relaxed_alpha,
        relaxed_beta,
        time.perf_counter() - t0,
        history,
        gamma_schedule,
        gamma,
    )


def soft_penalty_search(
    supernet: HardCoReSupernet,
    table: LatencyTable,
    loader: Iterable,
    *,
    target_ms: float,
    steps: int = 10_000,
    lr: float = 0.01,
    penalty: float = 1.0,
    tau: float = 1.0,
    seed: int = 0,
    progress: bool = True,
) -> SearchResult:
    """The soft-penalty baseline: Adam on logits of ``CE + penalty * relu(E[lat] / T - 1)``, then argmax.

    Args:
        supernet: The trained supernet (frozen during the search).
        table: The latency table.
        loader: Batches of held-out training images (cycled).
        target_ms: Latency target ``T``.
        steps: Optimisation steps.
        lr: Adam learning rate of the logits.
        penalty: Weight ``lambda`` of the latency penalty.
        tau: Gumbel-softmax temperature.
        seed: Seed of the Gumbel noise.
        progress: Show a tqdm bar.
    """
    if not table.space.same_networks(supernet.space):
        raise ValueError("the latency table was measured for another search space than the supernet's")
    torch.manual_seed(seed)
    device = next(supernet.parameters()).device
    form = latency_form(table)
    logit_a = torch.zeros(table.space.alpha_shape, device=device, requires_grad=True)
    logit_b = torch.zeros(table.space.beta_shape, device=device, requires_grad=True)
    opt = torch.optim.Adam([logit_a, logit_b], lr=lr)
    flags = _freeze(supernet)
    history = []
    t0 = time.perf_counter()
    batches = _batches(loader)
    bar = tqdm(range(steps), desc=f"soft T={target_ms:.3g}ms", disable=not progress or not du.is_main_process())
    try:
        for k in bar:
            batch = next(batches)
            x, y = batch[0].to(device), batch[1].to(device)
            paths = sample_paths(logit_a.log_softmax(-1), logit_b.log_softmax(-1), x.shape[0], tau=tau)
            ce = F.cross_entropy(supernet(x, paths, all_paths=True), y)
            lat = form.torch_value(logit_a.softmax(-1).double(), logit_b.softmax(-1).double())
            loss = ce + penalty * F.relu(lat / target_ms - 1.0).float()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if du.get_world_size() > 1:
                for t in (logit_a, logit_b):
                    t.grad = du.all_reduce_sum(t.grad) / du.get_world_size()
            opt.step()
            history.append({"step": k, "loss": ce.item(), "expected_ms": lat.item()})
    finally:
        _unfreeze(supernet, flags)
    alpha = logit_a.detach().softmax(-1).double().cpu().numpy()
    beta = logit_b.detach().softmax(-1).double().cpu().numpy()
    arch = table.space.from_alpha_beta(alpha, beta)
    predicted = table.latency(arch)
    if not math.isfinite(predicted):
        raise FloatingPointError("soft-penalty search produced a non-finite latency")
    return SearchResult(
        "soft_penalty", arch, float(target_ms), predicted, alpha, beta, time.perf_counter() - t0, history
    )
