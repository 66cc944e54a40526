"""Teacher outputs computed once and stored on disk, to train students without running the teacher.

Paper: USI (arXiv 2204.03475): KD from a frozen teacher adds one teacher forward pass to every training
step. This is the offline alternative (not the paper's default): the teacher is run once per
image on its evaluation view (resize + center crop), its logits are stored in a ``.npy`` file (memory-mapped when
read, so several processes share one copy) with a JSON sidecar, and during training the stored distributions of the
images in a batch are mixed with the same mixup/cutmix lambda as the labels (:class:`miil.usi.KDMixup`). The student
then learns from the teacher's opinion of the unaugmented images rather than of its exact augmented view: much
cheaper, and an approximation of the online scheme.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from miil.core import distributed as du
from miil.core.data import skip_unreadable_collate
from miil.core.io import atomic_write_text

from .data import IndexedDataset, dataset_fingerprint

__all__ = ["TeacherLogits", "precompute_teacher_logits"]

FORMAT = 1


def _sidecar(path: Path) -> Path:
    return path.with_suffix(".json")


def precompute_teacher_logits(
    teacher: torch.nn.Module,
    dataset: Dataset,
    path: str | os.PathLike,
    *,
    batch_size: int = 128,
    num_workers: int = 0,
    device: str | torch.device | None = None,
    amp: bool = False,
    dtype: str = "float16",
    info: dict | None = None,
    progress: bool = True,
) -> Path:
    """Run ``teacher`` over ``dataset`` once and store its logits (``[N, C]``) in ``path`` (``.npy``).

    Under torchrun each process computes a shard and the main process writes the file. Unreadable images get NaN
    rows, which training refuses to use (the sample is skipped by the loader anyway).

    Args:
        teacher: The teacher (usually a :class:`miil.usi.FrozenTeacher`); it receives the dataset's images.
        dataset: ``(image, label)`` samples with the evaluation transform the student uses.
        path: Output file; ``.npy`` is appended when missing. A ``.json`` sidecar is written beside it.
        batch_size: Images per forward pass.
        num_workers: Data-loader workers.
        device: Device to run on (default: the teacher's).
        amp: Run under autocast (bf16 on CPU, fp16 on CUDA).
        dtype: Storage dtype, "float16" (half the size) or "float32".
        info: Extra JSON-ready facts for the sidecar (teacher name, transform, ...).
        progress: Show a progress bar.

    Returns:
        The path of the ``.npy`` file.
    """
    if dtype not in ("float16", "float32"):
        raise ValueError(f"dtype must be 'float16' or 'float32', got {dtype!r}")
    out = Path(path)
    if out.suffix != ".npy":
        out = out.with_name(out.name + ".npy")
    dev = torch.device(device) if device is not None else next(teacher.parameters()).device
    teacher.to(dev).eval()
    rank, world = du.get_rank(), du.get_world_size()
    n = len(dataset)
    shard = list(range(rank, n, world))
    loader = DataLoader(
        torch.utils.data.Subset(IndexedDataset(dataset), shard),
        batch_size=batch_size,
        num_workers=num_workers,
        collate_fn=skip_unreadable_collate,
        pin_memory=dev.type == "cuda",
    )
    rows, index = [], []
    autocast = torch.autocast(dev.type, dtype=torch.float16 if dev.type == "cuda" else torch.bfloat16, enabled=amp)
    with torch.no_grad(), autocast:
        for batch in tqdm(loader, desc="teacher logits", disable=not progress or not du.is_main_process()):
            if batch is None:
                continue
            x, _, idx = batch
            rows.append(teacher(x.to(dev, non_blocking=True)).float().cpu())
            index.append(idx)
    # A shard may be empty (tiny data, many ranks): agree on the class count before gathering.
    counts = du.all_reduce_sum(torch.tensor([rows[0].shape[1] if rows else 0, 1 if rows else 0], dtype=torch.float64))
    if counts[1] == 0:
        raise ValueError(f"no readable image in the dataset ({n} samples); nothing to store")
    num_classes = int(counts[0].item() / counts[1].item())
    logits = torch.cat(rows) if rows else torch.zeros(0, num_classes)
    idx = torch.cat(index) if index else torch.zeros(0, dtype=torch.long)
    logits, idx = du.all_gather_cat(logits), du.all_gather_cat(idx)
    table = torch.full((n, logits.shape[1]), float("nan"))
    table[idx] = logits
    if du.is_main_process():
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".tmp.npy")
        np.save(tmp, table.numpy().astype(dtype), allow_pickle=False)
        os.replace(tmp, out)
        meta = {
            "format": FORMAT,
            "num_samples": n,
            "num_classes": int(table.shape[1]),
            "dtype": dtype,
            "fingerprint": dataset_fingerprint(dataset),
            "missing": int(torch.isnan(table[:, 0]).sum()),
            **(info or {}),
        }
        atomic_write_text(_sidecar(out), json.dumps(meta, indent=2))
    du.barrier()
    return out


class TeacherLogits:
    """Stored teacher logits (``[N, C]``, memory-mapped) checked against the training set they were computed on.

    Args:
        path: The ``.npy`` file written by :func:`precompute_teacher_logits` (its ``.json`` sidecar beside it).
        dataset: The training dataset; its fingerprint must match the stored one (same files, same labels).
        num_classes: Expected number of classes.
    """

    def __init__(self, path: str | os.PathLike, *, dataset: Dataset | None = None, num_classes: int | None = None):
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(
                f"teacher logits file {self.path} does not exist; create it with `miil usi precompute-logits`"
            )
        side = _sidecar(self.path)
        if not side.is_file():
            raise FileNotFoundError(f"{side} (the sidecar of {self.path}) is missing; recreate the logits file")
        self.meta = json.loads(side.read_text())
        try:
            self.logits = np.load(self.path, mmap_mode="r", allow_pickle=False)
        except ValueError as err:
            raise ValueError(f"cannot read teacher logits {self.path}: {err}") from None
        if self.logits.ndim != 2 or self.logits.shape[0] != self.meta.get("num_samples"):
            raise ValueError(
                f"{self.path} holds an array of shape {self.logits.shape}, but its sidecar says "
                f"{self.meta.get('num_samples')} samples"
            )
        if num_classes is not None and self.logits.shape[1] != num_classes:
            raise ValueError(
                f"{self.path} holds logits for {self.logits.shape[1]} classes, but the student has {num_classes}"
            )
        if dataset is not None:
            want = dataset_fingerprint(dataset)
            if self.meta.get("fingerprint") != want:
                raise ValueError(
                    f"{self.path} was computed on a different training set (fingerprint mismatch: other files, "
                    "labels or order); recompute it on this data with `miil usi precompute-logits`"
                )

    def __len__(self) -> int:
        return int(self.logits.shape[0])

    def log_probs(self, index: torch.Tensor, *, device: torch.device | str | None = None) -> torch.Tensor:
        """Teacher log-probabilities ``[B, C]`` (float32) of the samples ``index``.

        Args:
            index: ``[B]`` sample indices.
            device: Where to put the result.
        """
        idx = index.detach().cpu().numpy()
        rows = torch.from_numpy(np.asarray(self.logits[idx], dtype=np.float32))
        if torch.isnan(rows).any():
            bad = idx[torch.isnan(rows).any(1).numpy()].tolist()
            raise ValueError(f"{self.path} has no teacher output for samples {bad[:10]} (unreadable when computed)")
        return torch.log_softmax(rows, dim=-1).to(device if device is not None else "cpu", non_blocking=True)
