"""ImageNet-21K-P preprocessing: drop small classes, split off a validation set, resize, check the counts.

Paper: "ImageNet-21K Pretraining for the Masses", Ridnik et al. (arXiv 2104.10972), Sec. 3 (dataset preparation) and
the original ``dataset_preprocessing/processing_script.sh``, ``resize.py``, ``resize_short_edge.py``:

1. classes with at most 500 images are dropped (the script keeps ``count > 500``);
2. the first 50 files of each class, in name order, form the validation set (no shuffling, for reproducibility);
3. every image is resized: squished to 224 x 224 ignoring the aspect ratio (default), or its short edge scaled to
   256; an image whose longer side is already below the target size is copied unchanged.

The published results of this procedure: fall11 gives 11,221 classes, 11,797,632 train and 561,052 validation
images; winter21 gives 10,450 classes, 11,060,223 train and 522,500 validation images.

Differences from the scripts, on purpose: the source folder is never modified (the scripts ``mv`` files); the run is
resumable (an output file is written to a temporary name and renamed, so an existing output is a finished one and is
skipped); unreadable images are skipped with one warning line each (file and reason) and listed in the report
(``strict`` stops at the first); names are ordered by Python's byte-wise sort, which ``ls`` matches under
``LC_ALL=C`` (other locales may order some names differently).
"""

from __future__ import annotations

import json
import os
import shutil
import warnings
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image
from tqdm.auto import tqdm

from miil.core.data import UnreadableFileWarning, describe_read_error
from miil.core.errors import UserError

__all__ = [
    "PUBLISHED_COUNTS",
    "SplitPlan",
    "plan_split",
    "preprocess_imagenet21k",
    "resize_image",
    "scan_class_folders",
]

PUBLISHED_COUNTS = {
    "fall11": {"classes": 11221, "train": 11797632, "val": 561052},
    "winter21": {"classes": 10450, "train": 11060223, "val": 522500},
}
RESIZE_MODES = ("squish", "short-edge")
DEFAULT_SIZES = {"squish": 224, "short-edge": 256}
IMAGE_EXTENSIONS = (".jpeg", ".jpg", ".png")
TRAIN_DIR, VAL_DIR, REPORT = "imagenet21k_train", "imagenet21k_val", "preprocess_report.json"
_FORMATS = {".jpeg": "JPEG", ".jpg": "JPEG", ".png": "PNG"}


def scan_class_folders(src: str | os.PathLike, *, extensions: Sequence[str] = IMAGE_EXTENSIONS) -> dict[str, list[str]]:
    """The image files of each class folder ``src/<class>/`` (not recursive), names sorted byte-wise.

    Args:
        src: Folder of class folders (an extracted ImageNet-21K release: ``src/n01440764/n01440764_10026.JPEG``).
        extensions: File extensions counted as images (case-insensitive).
    """
    root = Path(src)
    if not root.is_dir():
        raise FileNotFoundError(f"source folder {root} does not exist or is not a folder")
    exts = tuple(e.lower() for e in extensions)
    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not classes:
        raise FileNotFoundError(f"no class folders in {root}; expected {root}/<wnid>/<image> (extract the tars)")
    out = {}
    for name in classes:
        files = [
            f.name
            for f in (root / name).iterdir()
            if f.is_file() and not f.name.startswith(".") and f.suffix.lower() in exts
        ]
        out[name] = sorted(files)
    return out


@dataclass
class SplitPlan:
    """Which classes are kept and which files go to train and validation.

    Attributes:
        train: Files per kept class for the train set.
        val: Files per kept class for the validation set.
        dropped: Image count of each dropped (small) class.
    """

    train: dict[str, list[str]] = field(default_factory=dict)
    val: dict[str, list[str]] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)

    @property
    def kept(self) -> list[str]:
        return list(self.train)

    def counts(self) -> dict[str, int]:
        return {
            "classes": len(self.train),
            "train": sum(len(v) for v in self.train.values()),
            "val": sum(len(v) for v in self.val.values()),
        }


def plan_split(
    files_by_class: dict[str, list[str]], *, small_class_threshold: int = 500, val_per_class: int = 50
) -> SplitPlan:
    """Keep classes with more than ``small_class_threshold`` images; their first ``val_per_class`` files are val.

    Args:
        files_by_class: Sorted files per class (:func:`scan_class_folders`).
        small_class_threshold: Classes with at most this many images are dropped (500).
        val_per_class: Files per class, from the start of the sorted list, moved to validation (50).
    """
    if small_class_threshold < 0 or val_per_class < 0:
        raise ValueError(f"thresholds must be >= 0, got {small_class_threshold} and {val_per_class}")
    if val_per_class > small_class_threshold:
        raise ValueError(
            f"val_per_class ({val_per_class}) must not exceed small_class_threshold ({small_class_threshold}): "
            "a kept class would be left without training images"
        )
    plan = SplitPlan()
    for name in sorted(files_by_class):
        files = files_by_class[name]
        if len(files) <= small_class_threshold:
            plan.dropped[name] = len(files)
            continue
        plan.val[name] = list(files[:val_per_class])
        plan.train[name] = list(files[val_per_class:])
    return plan


def _target_size(width: int, height: int, mode: str, size: int) -> tuple[int, int]:
    if mode == "squish":
        return size, size
    scale = size / min(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def resize_image(src: str | os.PathLike, dst: str | os.PathLike, *, mode: str = "squish", size: int = 224) -> str:
    """Resize one image file into ``dst`` (atomically); see the module docstring.

    Args:
        src: Source image.
        dst: Output file; its parent folder must exist. An existing ``dst`` is left alone.
        mode: ``"squish"`` (``size`` x ``size``) or ``"short-edge"`` (short side to ``size``).
        size: Target size.

    Returns:
        ``"exists"``, ``"copied"`` (longer side below ``size``), ``"resized"``, or ``"unreadable: <reason>"`` (the
        reason as the ``miil`` commands word it: "empty file", "truncated (...)", ...).
    """
    if mode not in RESIZE_MODES:
        raise ValueError(f"resize mode must be one of {RESIZE_MODES}, got {mode!r}")
    dst = Path(dst)
    if dst.exists():
        return "exists"
    tmp = dst.with_name(f".{dst.name}.part")
    try:
        with Image.open(src) as img:
            img.load()
            width, height = img.size
            if max(width, height) < size:
                shutil.copyfile(src, tmp)
                os.replace(tmp, dst)
                return "copied"
            if img.mode not in ("RGB", "L"):
                img = img.convert("RGB")
            out = img.resize(_target_size(width, height, mode, size), Image.Resampling.BILINEAR)
        fmt = _FORMATS.get(dst.suffix.lower(), "JPEG")
        out.save(tmp, format=fmt, **({"quality": 95} if fmt == "JPEG" else {}))
        os.replace(tmp, dst)
        return "resized"
    except Exception as err:  # PIL raises OSError, SyntaxError, ValueError, struct errors ... for broken files
        tmp.unlink(missing_ok=True)
        return f"unreadable: {describe_read_error(src, err)}"


def _check_counts(variant: str | None, plan: SplitPlan) -> dict[str, Any]:
    if variant is None:
        return {"variant": None}
    if variant not in PUBLISHED_COUNTS:
        raise ValueError(f"unknown variant {variant!r}; known: {', '.join(PUBLISHED_COUNTS)}")
    from .tree import packaged_tree

    found = plan.counts()
    expected = PUBLISHED_COUNTS[variant]
    shipped = set(packaged_tree(variant).class_list)
    kept = set(plan.kept)
    missing, extra = sorted(shipped - kept), sorted(kept - shipped)
    return {
        "variant": variant,
        "expected": expected,
        "found": found,
        "matches": found == expected and not missing and not extra,
        "classes_missing_vs_tree": missing,
        "classes_extra_vs_tree": extra,
    }


def _jobs(plan: SplitPlan, src: Path, out: Path) -> Iterable[tuple[Path, Path]]:
    for split, part in ((TRAIN_DIR, plan.train), (VAL_DIR, plan.val)):
        for name, files in part.items():
            for f in files:
                yield src / name / f, out / split / name / f


def _chunks(items: Iterable[tuple[Path, Path]], n: int) -> Iterable[list[tuple[Path, Path]]]:
    chunk: list[tuple[Path, Path]] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == n:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def preprocess_imagenet21k(
    src: str | os.PathLike,
    out: str | os.PathLike,
    *,
    variant: str | None = None,
    resize: str = "squish",
    size: int | None = None,
    small_class_threshold: int = 500,
    val_per_class: int = 50,
    num_workers: int | None = None,
    extensions: Sequence[str] = IMAGE_EXTENSIONS,
    progress: bool = True,
    strict: bool = False,
) -> dict[str, Any]:
    """Preprocess an extracted ImageNet-21K release into ``out/imagenet21k_train`` and ``out/imagenet21k_val``.

    Writes ``out/preprocess_report.json`` (dropped classes, counts, the skipped unreadable files as ``{file, reason}``,
    the check against the published counts) and returns the same dict. Rerunning resumes: finished output files are
    skipped.

    Args:
        src: Folder of class folders.
        out: Output folder (must not be inside ``src``).
        variant: ``"fall11"`` or ``"winter21"`` to check the counts and classes against the published ones.
        resize: ``"squish"`` or ``"short-edge"``.
        size: Target size (default 224 for squish, 256 for short-edge).
        small_class_threshold: Classes with at most this many images are dropped (500).
        val_per_class: First files per class that form the validation set (50).
        num_workers: Parallel resize threads (default: the CPU count).
        extensions: Image file extensions.
        progress: Show a progress bar.
        strict: Stop at the first unreadable image (a :class:`~miil.core.errors.UserError`) instead of skipping it.
    """
    if resize not in RESIZE_MODES:
        raise ValueError(f"resize must be one of {RESIZE_MODES}, got {resize!r}")
    size = int(size or DEFAULT_SIZES[resize])
    if size <= 0:
        raise ValueError(f"size must be positive, got {size}")
    src_path, out_path = Path(src).resolve(), Path(out).resolve()
    if out_path == src_path or out_path.is_relative_to(src_path):
        raise UserError(f"output folder {out_path} must be outside the source folder {src_path}")
    plan = plan_split(
        scan_class_folders(src_path, extensions=extensions),
        small_class_threshold=small_class_threshold,
        val_per_class=val_per_class,
    )
    check = _check_counts(variant, plan)
    for split, part in ((TRAIN_DIR, plan.train), (VAL_DIR, plan.val)):
        for name in part:
            (out_path / split / name).mkdir(parents=True, exist_ok=True)
    status: dict[str, int] = {"resized": 0, "copied": 0, "exists": 0}
    skipped: list[dict[str, str]] = []
    counts = plan.counts()

    def work(job: tuple[Path, Path]) -> str:
        return resize_image(job[0], job[1], mode=resize, size=size)

    bar = tqdm(total=counts["train"] + counts["val"], desc="resizing", disable=not progress, dynamic_ncols=True)
    # Jobs go to the pool in bounded chunks: a full release has ~12M files, too many futures to hold at once.
    with ThreadPoolExecutor(max_workers=num_workers or os.cpu_count() or 1) as pool, bar:
        for chunk in _chunks(_jobs(plan, src_path, out_path), 2048):
            for (source, _), result in zip(chunk, pool.map(work, chunk)):
                if result.startswith("unreadable"):
                    reason = result.split(": ", 1)[1]
                    if strict:
                        raise UserError(f"cannot read image {source}: {reason} (--strict stops at the first one)")
                    warnings.warn(f"skipping unreadable file {source}: {reason}", UnreadableFileWarning, stacklevel=2)
                    skipped.append({"file": str(source), "reason": reason})
                else:
                    status[result] += 1
            bar.update(len(chunk))
    report = {
        "source": str(src_path),
        "output": str(out_path),
        "resize": resize,
        "size": size,
        "small_class_threshold": small_class_threshold,
        "val_per_class": val_per_class,
        "counts": counts,
        "dropped_classes": plan.dropped,
        "files": status,
        "skipped": skipped,
        "check": check,
    }
    tmp = out_path / f".{REPORT}.part"
    tmp.write_text(json.dumps(report, indent=1))
    os.replace(tmp, out_path / REPORT)
    return report
