"""The IQNAS accuracy estimator: one measured one-shot accuracy per design decision of the trained supernet.

Paper: IQNAS / BINAS (arXiv 2110.12399), section 3.1 ("accuracy estimator"). Around a base point where every
decision is sampled uniformly per image, each decision is fixed in turn (one option of one block, or one depth of one
stage) while all the others stay uniform, and the supernet's top-1 accuracy on held-out images is measured. The
estimator is ``base + p_a^T alpha + p_b^T beta + alpha^T Q beta`` with every coefficient ``acc(decision) - base``:

- a stage's depth ``b``: ``Delta beta[s, b]``;
- an option ``c`` of block ``j``: measured with the stage depth fixed to ``j + 1`` (block ``j`` is the last block),
  or with a uniform depth for the blocks every depth contains but no depth ends with. It counts when the block is
  present, so it enters ``Q`` at every depth that includes the block (the sparsity of the latency form).

255 measurements in the paper's space. Departures from the original code: the base and every unmeasured decision are
uniform (the original's default ``--qc_init`` started them from the smallest network while measured blocks were reset
to uniform, so its coefficients depended on the measurement order); all measurements see the same images *and the
same random paths* (common random numbers), so the differences are not drowned in sampling noise; with
``reference="depth"`` a block coefficient is taken relative to its fixed-depth measurement instead of the base, so the
depth effect is not counted twice (the paper's form is ``reference="base"``, the default).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from miil.core import distributed as du
from miil.core.io import atomic_write_text
from miil.hardcore import Architecture, BilinearForm, HardCoReSupernet, PathWeights, SearchSpace

from .additive import BlockAdditive

__all__ = ["AccuracyEstimator", "Decision", "measure_architectures", "measure_contributions", "one_shot_accuracy"]

FORMAT = "miil-iqnas-accuracy-estimator"
REFERENCES = ("base", "depth")


@dataclass(frozen=True)
class Decision:
    """Decisions fixed for one measurement: ``blocks`` maps ``(stage, block) -> option``, ``depths`` maps
    ``stage -> depth index``; everything else is sampled uniformly per image."""

    blocks: dict[tuple[int, int], int] = field(default_factory=dict)
    depths: dict[int, int] = field(default_factory=dict)


def _paths(space: SearchSpace, batch: int, gen: torch.Generator, decision: Decision, device) -> PathWeights:
    n_s, n_d, n_c = space.alpha_shape
    opts = torch.randint(0, n_c, (n_s, n_d, batch), generator=gen)
    deps = torch.randint(0, len(space.depths), (n_s, batch), generator=gen)
    for (s, j), c in decision.blocks.items():
        opts[s, j] = c
    for s, b in decision.depths.items():
        deps[s] = b
    return PathWeights(F.one_hot(opts, n_c).float().to(device), F.one_hot(deps, len(space.depths)).float().to(device))


@torch.no_grad()
def one_shot_accuracy(
    supernet: HardCoReSupernet,
    loader: Iterable,
    decision: Decision | Architecture | None = None,
    *,
    passes: int = 1,
    seed: int = 0,
) -> float:
    """Top-1 accuracy (%) of the supernet on ``loader`` with ``decision`` fixed and the rest uniform per image.

    Args:
        supernet: The trained supernet (put in eval mode).
        loader: Held-out batches ``(images, labels, ...)``, iterated in a fixed order.
        decision: Fixed decisions, a whole architecture, or ``None`` (the uniform base).
        passes: Passes over ``loader`` (new random paths each pass), averaged.
        seed: Seed of the random paths; equal seeds give every measurement the same paths.
    """
    space = supernet.space
    if isinstance(decision, Architecture):
        space.validate(decision)
        blocks = {(s, j): c for s, opts in enumerate(decision.blocks) for j, c in enumerate(opts)}
        depths = {s: space.depths.index(len(opts)) for s, opts in enumerate(decision.blocks)}
        decision = Decision(blocks, depths)
    decision = decision or Decision()
    supernet.eval()
    device = next(supernet.parameters()).device
    correct = torch.zeros(2, dtype=torch.float64, device=device)
    for p in range(passes):
        gen = torch.Generator().manual_seed(seed * 100_003 + p * 7919 + du.get_rank())
        for batch in loader:
            if batch is None:
                continue
            x, y = batch[0].to(device), batch[1].to(device)
            logits = supernet(x, _paths(space, x.shape[0], gen, decision, device))
            correct[0] += (logits.argmax(1) == y).sum()
            correct[1] += y.numel()
    if du.get_world_size() > 1:
        correct = du.all_reduce_sum(correct)
    if correct[1] == 0:
        raise ValueError("the held-out loader yielded no images")
    return float(100.0 * correct[0] / correct[1])


def measure_architectures(
    supernet: HardCoReSupernet, archs: list[Architecture], loader: Iterable, *, progress: bool = False
) -> np.ndarray:
    """One-shot top-1 (%) of each architecture (its weights inherited from the supernet) on ``loader``."""
    bar = tqdm(archs, desc="one-shot accuracy", disable=not progress or not du.is_main_process())
    return np.array([one_shot_accuracy(supernet, loader, a) for a in bar])


@dataclass(frozen=True, eq=False)
class AccuracyEstimator:
    """The measured estimator.

    Args:
        space: The search space.
        base: One-shot accuracy (%) with every decision uniform.
        block_accuracy: ``[stages, max depth, options]`` accuracy with that block option fixed.
        depth_accuracy: ``[stages, depths]`` accuracy with that stage depth fixed.
        reference: ``"base"`` (the paper: every coefficient relative to ``base``) or ``"depth"`` (block
            coefficients relative to the measurement of the depth they were measured at).
        metadata: How it was measured (passes, images, seconds...).
    """

    space: SearchSpace
    base: float
    block_accuracy: np.ndarray
    depth_accuracy: np.ndarray
    reference: str = "base"
    metadata: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self):
        if self.reference not in REFERENCES:
            raise ValueError(f"reference must be one of {REFERENCES}, got {self.reference!r}")
        object.__setattr__(self, "block_accuracy", np.asarray(self.block_accuracy, dtype=np.float64))
        object.__setattr__(self, "depth_accuracy", np.asarray(self.depth_accuracy, dtype=np.float64))
        if self.block_accuracy.shape != self.space.alpha_shape or self.depth_accuracy.shape != self.space.beta_shape:
            raise ValueError(
                f"estimator shapes {self.block_accuracy.shape}/{self.depth_accuracy.shape} do not match the space's "
                f"{self.space.alpha_shape}/{self.space.beta_shape}"
            )

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, AccuracyEstimator)
            and (self.space, self.base, self.reference) == (other.space, other.base, other.reference)
            and np.array_equal(self.block_accuracy, other.block_accuracy)
            and np.array_equal(self.depth_accuracy, other.depth_accuracy)
        )

    __hash__ = None

    def with_reference(self, reference: str) -> AccuracyEstimator:
        return AccuracyEstimator(
            self.space, self.base, self.block_accuracy, self.depth_accuracy, reference, dict(self.metadata)
        )

    def block_reference(self) -> np.ndarray:
        """``[stages, max depth]``: the accuracy each block coefficient is taken relative to."""
        ref = np.full(self.space.alpha_shape[:2], self.base)
        if self.reference == "depth":
            for s in range(self.space.num_stages):
                for j in range(self.space.max_depth):
                    if j + 1 in self.space.depths:
                        ref[s, j] = self.depth_accuracy[s, self.space.depths.index(j + 1)]
        return ref

    @property
    def additive(self) -> BlockAdditive:
        """The estimator as a :class:`BlockAdditive` (linear in the 0/1 encoding)."""
        delta_block = self.block_accuracy - self.block_reference()[..., None]
        delta_depth = self.depth_accuracy - self.base
        return BlockAdditive(self.space, self.base, delta_block, delta_depth, "accuracy", "%")

    @property
    def form(self) -> BilinearForm:
        """``base + p_a^T alpha + p_b^T beta + alpha^T Q beta`` over the relaxed variables."""
        return self.additive.bilinear()

    def __call__(self, arch: Architecture) -> float:
        return self.additive(arch)

    def predict(self, archs: list[Architecture]) -> np.ndarray:
        return self.additive.values(archs)

    # ------------------------------------------------------------------ files
    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "units": "top-1 %",
            "space": self.space.to_dict(),
            "base": self.base,
            "block_accuracy": self.block_accuracy.tolist(),
            "depth_accuracy": self.depth_accuracy.tolist(),
            "reference": self.reference,
            "metadata": self.metadata,
        }

    def save(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(self.to_dict(), indent=1))
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> AccuracyEstimator:
        from miil.core.errors import UserError
        from miil.core.io import load_file

        path = Path(path)
        if not path.exists():
            raise UserError(f"estimator {path} does not exist; measure one with `miil iqnas estimate`")
        data = load_file(path, what="accuracy estimator")  # runs nothing a file carries
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            found = data.get("format") if isinstance(data, dict) else type(data).__name__
            raise UserError(
                f"{path} is not an IQNAS accuracy estimator (format {found!r}); `miil iqnas estimate` writes one"
            )
        try:
            return cls(
                SearchSpace.from_dict(data["space"]),
                float(data["base"]),
                np.asarray(data["block_accuracy"]),
                np.asarray(data["depth_accuracy"]),
                data.get("reference", "base"),
                dict(data.get("metadata", {})),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise UserError(f"estimator {path} is invalid: {err}") from None


def measure_contributions(
    supernet: HardCoReSupernet,
    loader: Iterable,
    *,
    passes: int = 1,
    seed: int = 0,
    reference: str = "base",
    progress: bool = True,
) -> AccuracyEstimator:
    """Measure the estimator: the base and one accuracy per decision (255 in the paper's space).

    Args:
        supernet: The trained multipath supernet.
        loader: Held-out batches (the paper: the 20% of the training set the supernet did not train on), iterated in
            a fixed order (no shuffling), so every measurement sees the same images.
        passes: Passes over ``loader`` per measurement (the original: 10 epochs).
        seed: Seed of the uniform paths (shared by all measurements).
        reference: ``"base"`` (the paper) or ``"depth"``, see :class:`AccuracyEstimator`.
        progress: Show a tqdm bar.
    """
    space = supernet.space
    jobs: list[tuple[str, tuple[int, ...], Decision]] = [("base", (), Decision())]
    for s in range(space.num_stages):
        for b in range(len(space.depths)):
            jobs.append(("depth", (s, b), Decision(depths={s: b})))
        for j in range(space.max_depth):
            fixed_depth = {s: space.depths.index(j + 1)} if j + 1 in space.depths else {}
            for c in range(space.num_options):
                jobs.append(("block", (s, j, c), Decision(blocks={(s, j): c}, depths=fixed_depth)))
    block_acc = np.zeros(space.alpha_shape)
    depth_acc = np.zeros(space.beta_shape)
    base = 0.0
    t0 = time.perf_counter()
    bar = tqdm(jobs, desc="accuracy contributions", disable=not progress or not du.is_main_process())
    for kind, index, decision in bar:
        acc = one_shot_accuracy(supernet, loader, decision, passes=passes, seed=seed)
        if kind == "base":
            base = acc
        elif kind == "depth":
            depth_acc[index] = acc
        else:
            block_acc[index] = acc
    meta = {"measurements": len(jobs), "passes": passes, "seed": seed, "seconds": time.perf_counter() - t0}
    return AccuracyEstimator(space, base, block_acc, depth_acc, reference, meta)
