"""Albums as training samples: K sampled photos, squish-resized, with multi-hot event targets; and their collate.

Paper: PETA (arXiv 2109.12499), section 4: K = 32 photos per album, squish-resized to 224 and fed in [0, 1] (no
mean/std normalisation for TResNet), multi-hot targets over the events. A sample is ``(images [n, C, H, W],
target [num_classes], index)`` with ``n <= K``; :func:`collate_albums` pads a batch to its longest album and adds
the ``[B, K]`` mask (``True`` = real photo). The bad-input contract of the ``miil`` commands: an unreadable photo is
left out of its album with one warning naming the file and the reason, and the album comes as
:class:`~miil.core.data.PartlyRead` so that the loops count and report the photo; an album with no readable photo
(or whose folder is missing) is a :class:`~miil.core.data.Skipped` record; with ``strict`` the first one is an error.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision import transforms as T

from miil.core.data import PartlyRead, Skipped, SquishResize, UnreadablePolicy, multilabel_train_transform
from miil.core.errors import UserError

from .layouts import AlbumRecord
from .sampling import PAD_MODES, sample_album_indices

__all__ = [
    "AUGMENTATIONS",
    "AlbumDataset",
    "album_eval_transform",
    "album_train_transform",
    "collate_albums",
    "collate_named_albums",
]

AUGMENTATIONS = ("none", "flip", "randaugment")


def album_eval_transform(img_size: int) -> Callable[[Image.Image], torch.Tensor]:
    """Squish-resize to ``img_size`` and scale to [0, 1] (the original's inference pre-processing)."""
    return T.Compose([SquishResize(img_size), T.ToTensor()])


def album_train_transform(img_size: int, augment: str = "flip") -> Callable[[Image.Image], torch.Tensor]:
    """Training pre-processing per photo.

    Args:
        img_size: Square output side.
        augment: "none", "flip" (random horizontal flip) or "randaugment" (the MIIL multi-label pipeline:
            CutoutPIL + RandAugment, from :func:`miil.core.data.multilabel_train_transform`).
    """
    if augment == "none":
        return album_eval_transform(img_size)
    if augment == "flip":
        return T.Compose([SquishResize(img_size), T.RandomHorizontalFlip(), T.ToTensor()])
    if augment == "randaugment":
        return multilabel_train_transform(img_size)
    raise ValueError(f"augment must be one of {AUGMENTATIONS}, got {augment!r}")


class AlbumDataset(Dataset):
    """Photo albums with multi-hot event targets.

    Args:
        records: The albums (from :func:`~miil.album.data.read_event_folders` or :func:`~miil.album.data.read_cufed`).
        classes: Event names in target order; every album's events must be among them.
        album_size: K, the most photos per album.
        train: Random K-subset per visit (training) instead of the deterministic sorted uniform subset.
        transform: PIL-to-tensor transform per photo (default: :func:`album_eval_transform` at ``img_size``).
        img_size: Side of the default transform.
        pad: "mask" (short albums keep their photos; the collate pads and masks) or "duplicate" (repeat photos up
            to K, as the original did).
        strict: Raise on unreadable photos instead of skipping them with a warning.
    """

    def __init__(
        self,
        records: Sequence[AlbumRecord],
        classes: Sequence[str],
        *,
        album_size: int = 32,
        train: bool = False,
        transform: Callable[[Image.Image], torch.Tensor] | None = None,
        img_size: int = 224,
        pad: str = "mask",
        strict: bool = False,
    ):
        if pad not in PAD_MODES:
            raise ValueError(f"pad must be one of {PAD_MODES}, got {pad!r}")
        if album_size < 1:
            raise ValueError(f"album_size must be >= 1, got {album_size}")
        self.records = list(records)
        if not self.records:
            raise ValueError("AlbumDataset needs at least one album")
        self.classes = list(classes)
        if len(set(self.classes)) != len(self.classes):
            raise ValueError(f"duplicate event names in classes: {self.classes}")
        self.class_to_idx = {c: i for i, c in enumerate(self.classes)}
        for r in self.records:
            unknown = [e for e in r.labels if e not in self.class_to_idx]
            if unknown:
                raise KeyError(f"album {r.album_id!r} ({r.folder}) has events {unknown} not among the classes")
        self.album_size = album_size
        self.train = train
        self.transform = transform or album_eval_transform(img_size)
        self.pad = pad
        self.policy = UnreadablePolicy(strict=strict)

    def __len__(self) -> int:
        return len(self.records)

    def target(self, index: int) -> torch.Tensor:
        """Multi-hot event target of album ``index``."""
        t = torch.zeros(len(self.classes))
        t[[self.class_to_idx[e] for e in self.records[index].labels]] = 1.0
        return t

    def sampled_images(self, index: int) -> list[str]:
        """File names of the photos album ``index`` contributes (for evaluation: always the same ones)."""
        record = self.records[index]
        picks = sample_album_indices(len(record.images), self.album_size, train=self.train, pad=self.pad)
        return [record.images[i] for i in picks]

    def _album_problem(self, record: AlbumRecord) -> str:
        folder = record.folder
        if not folder.exists():
            return "missing"
        if not folder.is_dir():
            return "a file, not an album folder"
        return "no photos in the album folder"

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, int, tuple[str, ...]] | PartlyRead | Skipped:
        """``(images [n, C, H, W], target, index, photo names)``; see the module docstring for unreadable photos."""
        record = self.records[index]
        if not record.images:
            reason = self._album_problem(record)
            if self.policy.strict:
                raise UserError(f"album {record.folder}: {reason} (--strict stops at the first unreadable input)")
            self.policy.record(record.folder, reason)
            return self.policy.skipped_sample(record.folder)
        photos, names, lost = [], [], []
        for name in self.sampled_images(index):
            path = record.folder / name
            img = self.policy.load_image(path)
            if img is None:
                lost.append(self.policy.skipped_sample(path))
            else:
                photos.append(self.transform(img))
                names.append(name)
        if not photos:
            reason = f"none of its {len(lost)} sampled photos could be read"
            return PartlyRead(Skipped(str(record.folder), reason), tuple(lost))
        sample = (torch.stack(photos), self.target(index), index, tuple(names))
        return PartlyRead(sample, tuple(lost)) if lost else sample

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(albums={len(self)}, classes={len(self.classes)}, album_size={self.album_size}, "
            f"train={self.train}, pad={self.pad!r})"
        )


def collate_albums(samples: Sequence[Any]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pad ``(images [n, C, H, W], target, index[, photo names])`` samples into a batch.

    Returns:
        ``(images [B, K, C, H, W], targets [B, num_classes], mask [B, K], indices [B])`` with ``K`` the longest album
        of the batch and ``mask`` ``True`` for real photos.
    """
    samples = [s for s in samples if s is not None and not isinstance(s, Skipped)]
    if not samples:
        raise ValueError("collate_albums got no albums")
    lengths = [s[0].shape[0] for s in samples]
    k = max(lengths)
    first = samples[0][0]
    images = first.new_zeros((len(samples), k, *first.shape[1:]))
    mask = torch.zeros(len(samples), k, dtype=torch.bool)
    for i, (s, n) in enumerate(zip(samples, lengths)):
        images[i, :n] = s[0]
        mask[i, :n] = True
    targets = torch.stack([torch.as_tensor(s[1], dtype=torch.float32) for s in samples])
    indices = torch.as_tensor([int(s[2]) for s in samples], dtype=torch.long)
    return images, targets, mask, indices


def collate_named_albums(
    samples: Sequence[Any],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, list[tuple[str, ...]]]:
    """:func:`collate_albums` plus the names of the photos each album contributed (for importance reports)."""
    kept = [s for s in samples if s is not None and not isinstance(s, Skipped)]
    return (*collate_albums(kept), [tuple(s[3]) for s in kept])
