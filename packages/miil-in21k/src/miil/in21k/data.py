"""ImageNet-21K-P data: image folders labelled by a semantic tree, and the training / evaluation transforms.

Paper: "ImageNet-21K Pretraining for the Masses", Ridnik et al. (arXiv 2104.10972), training setup of the original
``train_semantic_softmax.py`` / ``data_loader.py``: ``Resize((224, 224))`` (squish), ``CutoutPIL(0.5)``,
RandAugment, ``ToTensor`` (inputs in [0, 1], no mean/std normalisation) for training; squish and ``ToTensor`` for
validation.

The original used the PyPI ``randaugment`` package (UDA-style: 2 random ops of its list of 15, each applied with
probability 0.5 at an integer magnitude in 1..9; posterize keeps ``4 - int(0.4 m)`` bits, solarize thresholds at
``256 - int(25.6 m)``). We use timm's RandAugment ``"rand-m9-n2-mstd101-inc1"``: 2 ops, probability 0.5, magnitude
uniform in [0, 9] (``mstd101``), and timm's "increasing" posterize and solarize (``inc1``), which are exactly those two
formulas, so posterize keeps 4 down to 1 bits as in the original and never 0 (which Pillow rejects). The op list
differs slightly from UDA's (SolarizeAdd instead of Cutout). The earlier ``"rand-m9-n2-mstd101"`` used timm's plain
posterize, ``int(0.4 m)`` bits: stronger than the original, and 0 bits below magnitude 2.5 (a crash in ~2% of images).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset
from torchvision import transforms as T

from miil.core.data import CutoutPIL, ImageFolderDataset, Skipped, SquishResize, rand_augment
from miil.core.errors import UserError

from .recipes import RANDAUG_IN21K
from .tree import SemanticTree

__all__ = ["TreeImageFolder", "find_split_folder", "in21k_eval_transform", "in21k_train_transform"]

_TRAIN_NAMES = ("imagenet21k_train", "train")
_VAL_NAMES = ("imagenet21k_val", "val")


def _normalize_step(mean: Sequence[float], std: Sequence[float]) -> list[Callable]:
    if all(m == 0 for m in mean) and all(s == 1 for s in std):
        return []
    return [T.Normalize(mean=tuple(mean), std=tuple(std))]


def in21k_train_transform(
    img_size: int,
    *,
    cutout_factor: float | None = 0.5,
    randaug: str | None = RANDAUG_IN21K,
    mean: Sequence[float] = (0.0, 0.0, 0.0),
    std: Sequence[float] = (1.0, 1.0, 1.0),
) -> T.Compose:
    """Squish resize, CutoutPIL, RandAugment, ToTensor (then Normalize only when ``mean``/``std`` are not 0/1).

    Args:
        img_size: Square output size (224).
        cutout_factor: CutoutPIL size factor (0.5); ``None`` or 0 disables it.
        randaug: timm RandAugment config; ``None`` disables it.
        mean: Channel means to subtract (the original: none).
        std: Channel stds to divide by (the original: none).
    """
    steps: list[Callable] = [SquishResize(img_size)]
    if cutout_factor:
        steps.append(CutoutPIL(cutout_factor=cutout_factor))
    if randaug:
        steps.append(rand_augment(randaug, img_size=img_size))
    steps.append(T.ToTensor())
    return T.Compose(steps + _normalize_step(mean, std))


def in21k_eval_transform(
    img_size: int, *, mean: Sequence[float] = (0.0, 0.0, 0.0), std: Sequence[float] = (1.0, 1.0, 1.0)
) -> T.Compose:
    """Squish resize and ToTensor (then Normalize only when ``mean``/``std`` are not 0/1).

    Args:
        img_size: Square output size.
        mean: Channel means to subtract.
        std: Channel stds to divide by.
    """
    return T.Compose([SquishResize(img_size), T.ToTensor(), *_normalize_step(mean, std)])


def find_split_folder(data_root: str | os.PathLike, split: str, name: str | None = None) -> Path:
    """The folder of a split: ``name`` under the root when given, else ``imagenet21k_<split>`` (what
    ``miil in21k preprocess`` writes) or ``<split>`` (image-net.org's winter21 release, and transfer datasets).

    Args:
        data_root: Dataset root.
        split: ``"train"`` or ``"val"``.
        name: ``--train-split`` / ``--val-split``: the folder's name under the root (or a path).
    """
    if split not in ("train", "val"):
        raise ValueError(f"split must be 'train' or 'val', got {split!r}")
    root = Path(data_root)
    if not root.is_dir():
        raise UserError(f"--data-root {root} does not exist or is not a folder")
    if name is not None:
        folder = Path(name) if Path(name).is_absolute() else root / name
        if not folder.is_dir():
            raise UserError(f"--{split}-split {name}: no folder {folder}")
        return folder
    names = _TRAIN_NAMES if split == "train" else _VAL_NAMES
    for candidate in names:
        if (root / candidate).is_dir():
            return root / candidate
    raise UserError(
        f"no {split} folder in {root}: expected one of {', '.join(str(root / n) for n in names)} (the layout "
        f"`miil in21k preprocess` writes), or name the folder with --{split}-split"
    )


class TreeImageFolder(Dataset):
    """``root/<class id>/<image>`` images labelled with the class's index in a semantic tree.

    Every class folder must be a class of the tree; tree classes without a folder are allowed (``missing_classes``).

    Args:
        root: Folder of class folders.
        tree: The semantic tree that defines the label indices.
        transform: PIL -> tensor transform.
        strict: Raise on unreadable images instead of skipping them.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        tree: SemanticTree,
        *,
        transform: Callable | None = None,
        strict: bool = False,
    ):
        root = Path(root)
        if not root.is_dir():
            raise FileNotFoundError(f"image folder {root} does not exist or is not a folder")
        folders = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
        unknown = [f for f in folders if f not in tree.index_of]
        if unknown:
            raise UserError(
                f"{len(unknown)} class folders of {root} are not classes of the tree ({len(tree)} classes), e.g. "
                f"{unknown[:5]}; pick the tree of this dataset (--tree fall11 | winter21 | FILE), or, for a dataset "
                "that is not ImageNet-21K, a transfer recipe (--recipe transfer-cifar100-mixer-b16-miil-in21k)"
            )
        if not folders:
            raise FileNotFoundError(f"no class folders in {root}; expected {root}/<class id>/<image>")
        self.inner = ImageFolderDataset(root, classes=folders, transform=transform, strict=strict)
        self.tree = tree
        self._to_tree = [tree.index_of[f] for f in folders]
        self.targets = [self._to_tree[t] for t in self.inner.targets]
        self.missing_classes = len(tree) - len(folders)

    def __len__(self) -> int:
        return len(self.inner)

    def __getitem__(self, index: int) -> tuple[Any, int] | Skipped:
        sample = self.inner[index]
        if sample is None or isinstance(sample, Skipped):  # unreadable: the loops count and report it
            return sample
        return sample[0], self._to_tree[sample[1]]

    def __repr__(self) -> str:
        return f"TreeImageFolder({self.inner.root}, samples={len(self)}, classes={len(self.tree)})"
