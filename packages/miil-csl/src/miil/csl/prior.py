"""Class prior (class distribution) estimation with a temporary model, keyed by class name.

Paper: "Multi-label Classification with Partial Annotations using Class-aware Selective Loss" (arXiv 2110.10955),
Section 3.3: the prior of class ``c`` is the average predicted probability ``mean_i sigmoid(x_i,c)`` of a temporary
model trained in the ``ignore`` mode, which the paper shows to be a better estimate of the true class distribution
than counting the partial annotations. Classes whose prior exceeds a threshold are likely to hide positives among
their un-annotated labels, so the selective loss ignores those labels instead of treating them as negatives.

Differences to the reference (``ComputePrior`` in ``partial_asymmetric_loss.py``): the prior file is read back by
class name, so its row order does not matter; the estimator can be reset; :func:`estimate_prior` averages the
temporary model's predictions over the training set after training (the reference averages the training-time
predictions of all epochs, which :class:`ClassPriorEstimator` also supports); the CSV layout ``Classes,avg_pred``
is the reference's.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import torch
import torch.nn as nn
from torch.utils.data import Dataset

from miil.core import distributed as du
from miil.core.io import atomic_write_text

__all__ = ["ClassPrior", "ClassPriorEstimator", "estimate_prior", "load_prior"]

_HEADER = ("Classes", "avg_pred")


class ClassPrior:
    """Per-class prior probabilities, looked up by class name.

    Args:
        values: Mapping of class name to prior probability in [0, 1] (its order is kept for saving).
    """

    def __init__(self, values: Mapping[str, float]):
        if not isinstance(values, Mapping):
            raise TypeError(f"ClassPrior takes a mapping of class name -> prior, got {type(values).__name__}")
        clean: dict[str, float] = {}
        for name, value in values.items():
            name = str(name)
            if not name.strip():
                raise ValueError("ClassPrior: empty class name")
            value = float(value)
            if math.isnan(value) or not 0.0 <= value <= 1.0:
                raise ValueError(f"ClassPrior: prior of class {name!r} is {value}; it must be a probability in [0, 1]")
            clean[name] = value
        if not clean:
            raise ValueError("ClassPrior: no classes")
        self._values = clean

    @classmethod
    def from_lists(cls, classes: Sequence[str], values: Iterable[float]) -> ClassPrior:
        """Build from parallel sequences of class names and priors (names must be unique)."""
        values = [float(v) for v in values]
        classes = [str(c) for c in classes]
        if len(classes) != len(values):
            raise ValueError(f"{len(classes)} class names but {len(values)} prior values")
        dupes = sorted({c for c in classes if classes.count(c) > 1})
        if dupes:
            raise ValueError(f"class names listed more than once: {dupes}")
        return cls(dict(zip(classes, values)))

    @property
    def classes(self) -> list[str]:
        return list(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __getitem__(self, name: str) -> float:
        try:
            return self._values[name]
        except KeyError:
            raise KeyError(f"class {name!r} has no prior (the prior covers {len(self)} classes)") from None

    def __contains__(self, name: object) -> bool:
        return name in self._values

    def to_dict(self) -> dict[str, float]:
        return dict(self._values)

    def for_classes(self, classes: Sequence[str]) -> torch.Tensor:
        """The priors of ``classes``, in that order, as a float32 tensor; every class must be present."""
        missing = [c for c in classes if c not in self._values]
        if missing:
            shown = ", ".join(repr(c) for c in missing[:10]) + (" ..." if len(missing) > 10 else "")
            raise KeyError(
                f"the class prior has no value for {len(missing)} of the {len(classes)} classes ({shown}); estimate "
                "the prior on the same class list, e.g. with `miil csl train --mode selective` and no --prior-path"
            )
        return torch.tensor([self._values[c] for c in classes], dtype=torch.float32)

    def above(self, threshold: float) -> list[str]:
        """Classes whose prior is above ``threshold`` (their un-annotated labels are ignored by CSL)."""
        return [c for c, v in self._values.items() if v > threshold]

    def save(self, path: str | os.PathLike) -> None:
        """Write ``Classes,avg_pred`` rows (the reference layout), atomically."""
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(_HEADER)
        for name, value in self._values.items():
            writer.writerow([name, repr(value)])
        atomic_write_text(path, buf.getvalue())

    @classmethod
    def load(cls, path: str | os.PathLike, *, skip_malformed: bool = False) -> ClassPrior:
        """Read a prior CSV (``Classes,avg_pred`` header, then one ``class,prior`` row per class).

        Args:
            path: The CSV file, e.g. one written by :meth:`save` or by the reference code.
            skip_malformed: Skip rows that do not have exactly two cells (the prior shipped with the reference code
                ends with such a line) instead of raising.
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"class prior file {path} does not exist")
        values: dict[str, float] = {}
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            header = None
            for row in reader:
                if not any(cell.strip() for cell in row):
                    continue
                if header is None:
                    header = [c.strip() for c in row]
                    if len(header) != 2:
                        raise ValueError(f"{path}:{reader.line_num}: expected the header 'Classes,avg_pred', got {row}")
                    continue
                if len(row) != 2:
                    if skip_malformed:
                        continue
                    raise ValueError(
                        f"{path}:{reader.line_num}: expected 2 cells 'class,prior', got {len(row)} ({row}); remove "
                        "the line or load with skip_malformed=True"
                    )
                name, cell = row[0].strip(), row[1].strip()
                try:
                    value = float(cell)
                except ValueError:
                    raise ValueError(
                        f"{path}:{reader.line_num}: prior of class {name!r} is {cell!r}, not a number"
                    ) from None
                if name in values:
                    raise ValueError(f"{path}:{reader.line_num}: class {name!r} appears twice")
                if math.isnan(value) or not 0.0 <= value <= 1.0:
                    raise ValueError(f"{path}:{reader.line_num}: prior of class {name!r} is {value}, not in [0, 1]")
                values[name] = value
        if not values:
            raise ValueError(f"class prior file {path} has no rows")
        return cls(values)

    def __repr__(self) -> str:
        top = sorted(self._values.items(), key=lambda kv: -kv[1])[:3]
        return f"ClassPrior({len(self)} classes, highest: {', '.join(f'{c}={v:.3f}' for c, v in top)})"


def load_prior(path: str | os.PathLike, *, skip_malformed: bool = False) -> ClassPrior:
    """Read a class prior CSV; see :meth:`ClassPrior.load`."""
    return ClassPrior.load(path, skip_malformed=skip_malformed)


class ClassPriorEstimator:
    """Running average of predicted probabilities per class, over any number of batches (and DDP ranks).

    Args:
        classes: Class names, in the order of the logits.
    """

    def __init__(self, classes: Sequence[str]):
        self.classes = [str(c) for c in classes]
        if not self.classes:
            raise ValueError("ClassPriorEstimator needs at least one class")
        self.reset()

    def reset(self) -> None:
        """Forget every prediction seen so far."""
        self._sum: torch.Tensor | None = None
        self._count = 0

    @property
    def count(self) -> int:
        """Number of samples seen by this process since the last reset."""
        return self._count

    @torch.no_grad()
    def update(self, logits: torch.Tensor) -> None:
        """Add a batch of ``[B, C]`` logits (their sigmoid is averaged)."""
        if logits.ndim != 2 or logits.shape[1] != len(self.classes):
            raise ValueError(f"expected [B, {len(self.classes)}] logits, got {tuple(logits.shape)}")
        batch = torch.sigmoid(logits.detach().double()).sum(dim=0)
        self._sum = batch if self._sum is None else self._sum + batch
        self._count += logits.shape[0]

    def compute(self) -> ClassPrior:
        """The average over every sample seen on all ranks (a collective call under DDP)."""
        local = torch.zeros(len(self.classes) + 1, dtype=torch.float64)
        if self._sum is not None:
            local[:-1] = self._sum.cpu()
        local[-1] = self._count
        total = du.all_reduce_sum(local)
        if total[-1] <= 0:
            raise RuntimeError("ClassPriorEstimator.compute() called before any update()")
        return ClassPrior.from_lists(self.classes, (total[:-1] / total[-1]).clamp(0.0, 1.0).tolist())


class _PriorMeter:
    """Adapts :class:`ClassPriorEstimator` to the meter interface of :func:`miil.core.evaluate.evaluate`."""

    def __init__(self, classes: Sequence[str]):
        self.estimator = ClassPriorEstimator(classes)

    def reset(self) -> None:
        self.estimator.reset()

    def update(self, outputs: torch.Tensor, targets: torch.Tensor) -> None:
        self.estimator.update(outputs)

    def compute(self) -> dict[str, float]:
        return {}


@torch.no_grad()
def estimate_prior(
    model: nn.Module,
    dataset: Dataset,
    classes: Sequence[str],
    *,
    batch_size: int = 64,
    num_workers: int = 0,
    device: str | torch.device | None = None,
    amp_dtype: torch.dtype | None = None,
    progress: bool = False,
) -> ClassPrior:
    """Average a (temporary, ``ignore``-mode) model's predicted probabilities over a dataset.

    Runs through :func:`miil.core.evaluate.evaluate`: under DDP each rank predicts its share of the samples and the
    sums are reduced, so every rank returns the same prior; unreadable samples (``Skipped`` records) are left out.

    Args:
        model: The temporary model; put in eval mode for the pass and restored afterwards.
        dataset: Samples ``(input, target, ...)``, normally the training set with the evaluation transform.
        classes: Class names in the order of the model's outputs.
        batch_size: Inference batch size.
        num_workers: Data-loader workers.
        device: Where to run; defaults to the model's device.
        amp_dtype: Autocast dtype (None for full precision).
        progress: A progress bar on rank 0.
    """
    from miil.core.evaluate import evaluate, precision_of

    meter = _PriorMeter(classes)
    evaluate(
        model,
        dataset,
        meter=meter,
        device=device,
        precision=precision_of(amp_dtype),
        batch_size=batch_size,
        num_workers=num_workers,
        progress=progress,
        desc="class prior",
    )
    return meter.estimator.compute()
