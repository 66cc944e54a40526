"""UCF-101 with its official train/test splits (``ucfTrainTestlist``).

The archive extracts to ``UCF-101/<Class>/v_<Class>_gXX_cYY.avi``; the split folder holds ``classInd.txt``
(``1 ApplyEyeMakeup``, 1-based) and ``trainlist0{1,2,3}.txt`` (``<Class>/<file>.avi <label>``) /
``testlist0{1,2,3}.txt`` (``<Class>/<file>.avi``). Labels come from the class folder of each listed path, matched to
``classInd.txt`` without regard to case (the archive spells one class ``HandStandPushups`` in file names and
``HandstandPushups`` in folders).
"""

from __future__ import annotations

import os
from pathlib import Path

from miil.core.data import resolve_under_root

from .videos import VideoDataset

__all__ = ["UCF101Dataset", "read_ucf101_classes"]

_SUBSETS = ("train", "test")


def read_ucf101_classes(split_dir: str | os.PathLike) -> list[str]:
    """Class names in label order from ``classInd.txt``.

    Args:
        split_dir: The ``ucfTrainTestlist`` folder.
    """
    path = Path(split_dir) / "classInd.txt"
    if not path.is_file():
        raise FileNotFoundError(f"no classInd.txt in {split_dir} (the ucfTrainTestlist folder of UCF-101)")
    entries = {}
    for line_no, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or not parts[0].isdigit():
            raise ValueError(f"{path}:{line_no}: expected '<index> <ClassName>', got {line!r}")
        entries[int(parts[0])] = parts[1]
    if sorted(entries) != list(range(1, len(entries) + 1)):
        raise ValueError(f"{path}: class indices must run 1..N without gaps")
    return [entries[i] for i in range(1, len(entries) + 1)]


class UCF101Dataset(VideoDataset):
    """One official UCF-101 split.

    Args:
        root: The extracted ``UCF-101`` folder.
        split_dir: The ``ucfTrainTestlist`` folder.
        fold: Split number, 1, 2 or 3.
        subset: ``"train"`` or ``"test"``.
        kwargs: :class:`VideoDataset` options.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        split_dir: str | os.PathLike,
        *,
        fold: int = 1,
        subset: str = "train",
        **kwargs,
    ):
        if fold not in (1, 2, 3):
            raise ValueError(f"UCF-101 fold must be 1, 2 or 3, got {fold!r}")
        if subset not in _SUBSETS:
            raise ValueError(f"UCF-101 subset must be 'train' or 'test', got {subset!r}")
        classes = read_ucf101_classes(split_dir)
        lookup = {name.lower(): i for i, name in enumerate(classes)}
        listing = Path(split_dir) / f"{subset}list0{fold}.txt"
        if not listing.is_file():
            raise FileNotFoundError(f"no split file {listing}")
        samples = []
        for line_no, line in enumerate(listing.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            rel = line.split()[0]
            folder = rel.replace("\\", "/").split("/")[0]
            if folder.lower() not in lookup:
                raise ValueError(f"{listing}:{line_no}: class folder {folder!r} is not in classInd.txt")
            samples.append((resolve_under_root(root, rel), lookup[folder.lower()]))
        if not samples:
            raise ValueError(f"{listing} lists no videos")
        self.root = Path(root)
        self.fold, self.subset = fold, subset
        super().__init__(samples, classes, **kwargs)
