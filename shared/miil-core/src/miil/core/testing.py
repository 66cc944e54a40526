"""Helpers for the packages' recipe tests: real images of many shapes and modes, seeds, and every augmentation draw.

Not part of a paper. A recipe is only known to train when its full training and evaluation transforms have met
real inputs of the kinds datasets hold (photos and digits; small and large; wide, tall and square; RGB, grey, with
alpha, palette, 1-bit, CMYK, 16-bit; PNG, JPEG, BMP, TIFF, WebP) under seeds that reach the random branches.
Rare draws hide from any number of random applications (a posterize magnitude that fails 1 time in 50, or 1 in a
billion), so :func:`augment_draw_failures` also runs every op of timm's RandAugment / AutoAugment at every magnitude
its configuration can draw.

The photos come from scikit-image's bundled files (in the workspace's dev dependencies); the digits from
scikit-learn. Nothing is downloaded.

The bad-input contract (core README): an unreadable input is skipped with one warning line naming the file and the
reason, counted in the summary and the ``--json`` report, and the command exits with status 3; ``--strict`` makes the
first one fatal. :func:`write_bad_inputs` writes the five kinds of bad file every package must survive, next to a real
file of the right kind: truncated, empty, wrong type (text with a media extension), missing (a path that does not
exist) and a folder where a file belongs.
"""

from __future__ import annotations

import copy
import io
import math
import os
import random
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from .data.transforms import timm_augment_ops

__all__ = [
    "BAD_INPUT_KINDS",
    "IMAGE_MODES",
    "DrawPlan",
    "assert_image_tensor",
    "augment_draw_failures",
    "failing_draws",
    "normalized_range",
    "printed_warnings",
    "real_images",
    "seed_everything_for_draw",
    "write_bad_inputs",
    "write_image_folder",
    "write_real_image",
]

# scikit-image's bundled files (read with PIL: skimage's own readers take seconds to import)
_PHOTOS = (
    "astronaut.png",
    "chelsea.png",
    "coffee.png",
    "rocket.jpg",
    "camera.png",
    "coins.png",
    "horse.png",
    "logo.png",
)
# Modes a decoded file can have, and file formats that store each of them (the extensions image folders list:
# miil.core.data.IMAGE_EXTENSIONS, like torchvision's, has no .gif).
IMAGE_MODES = ("RGB", "L", "RGBA", "P", "LA", "1", "CMYK", "I;16")
_FORMATS = {
    "RGB": (".jpg", ".png", ".webp", ".bmp"),
    "L": (".png", ".jpg"),
    "RGBA": (".png", ".webp"),
    "P": (".png", ".tiff"),
    "LA": (".png",),
    "1": (".png", ".bmp"),
    "CMYK": (".jpg", ".tiff"),
    "I;16": (".png", ".tiff"),
}
_LEVEL_DENOM = 10.0  # timm's default upper bound of RandAugment magnitudes


def _first_digits() -> list[np.ndarray]:
    """One real 8x8 digit per class (0..255), read from scikit-learn's bundled file without importing scikit-learn
    (its import alone takes seconds on a loaded machine)."""
    import gzip
    from importlib.util import find_spec

    spec = find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:  # pragma: no cover - a core dependency
        raise ImportError("miil.core.testing needs scikit-learn's digits: pip install scikit-learn")
    path = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / "digits.csv.gz"
    with gzip.open(path, "rt") as f:
        rows = np.loadtxt(f, delimiter=",", max_rows=200)
    out = []
    for digit in range(10):
        row = rows[np.flatnonzero(rows[:, -1] == digit)[0], :-1]
        out.append(np.clip(np.rint(row.reshape(8, 8) * (255.0 / 16.0)), 0, 255).astype(np.uint8))
    return out


@lru_cache(maxsize=1)
def _sources() -> tuple[Image.Image, ...]:
    from importlib.resources import files

    try:
        folder = files("skimage.data")
    except ModuleNotFoundError as err:  # pragma: no cover - the workspace's dev group installs it
        raise ImportError("miil.core.testing needs scikit-image for its photos: pip install scikit-image") from err
    photos = []
    for name in _PHOTOS:
        with Image.open(folder / name) as img:
            img.load()
            photos.append(img.copy())
    return (*photos, *(Image.fromarray(d) for d in _first_digits()))


def _to_mode(img: Image.Image, mode: str) -> Image.Image:
    if mode == "I;16":
        grey = np.asarray(img.convert("L"), dtype=np.uint16)
        return Image.fromarray(grey * 257)  # the full 16-bit range, as a 16-bit scan would hold it
    if mode == "LA":
        return img.convert("RGBA").convert("LA")
    return img.convert(mode)


def real_images(
    count: int = 32, *, seed: int = 0, min_side: int = 8, max_side: int = 160, modes: Sequence[str] = IMAGE_MODES
) -> list[Image.Image]:
    """Real photos and digits cropped and resized to varied sizes and aspect ratios, in varied PIL modes.

    The i-th image takes the i-th mode of ``modes`` (cycling), a random crop of a random source (aspect ratio
    between 1:4 and 4:1) and a random size with both sides in ``[min_side, max_side]``; the first images include
    the extremes (smallest square, widest, tallest).

    Args:
        count: Number of images.
        seed: Seed of the crops, sizes and sources.
        min_side: Smallest side in pixels.
        max_side: Largest side in pixels.
        modes: PIL modes to cycle through (see :data:`IMAGE_MODES`).
    """
    rng = np.random.default_rng(seed)
    sources = _sources()
    narrow = max(min_side, max_side // 4)
    extremes = [(min_side, min_side), (max_side, narrow), (narrow, max_side)]  # (width, height)
    out = []
    for i in range(count):
        src = sources[int(rng.integers(len(sources)))] if i >= 3 else sources[i]
        if i < len(extremes):
            width, height = extremes[i]
        else:
            aspect = math.exp(rng.uniform(math.log(0.25), math.log(4.0)))
            long_side = int(rng.integers(min_side, max_side + 1))
            width, height = (long_side, long_side / aspect) if aspect >= 1 else (long_side * aspect, long_side)
            width, height = max(min_side, int(round(width))), max(min_side, int(round(height)))
        sw, sh = src.size
        crop_w, crop_h = int(rng.integers(max(1, sw // 3), sw + 1)), int(rng.integers(max(1, sh // 3), sh + 1))
        left, top = int(rng.integers(0, sw - crop_w + 1)), int(rng.integers(0, sh - crop_h + 1))
        img = src.crop((left, top, left + crop_w, top + crop_h)).resize((width, height), Image.Resampling.BILINEAR)
        out.append(_to_mode(img, modes[i % len(modes)]))
    return out


def write_image_folder(
    root: str | os.PathLike,
    classes: Sequence[str] = ("a", "b", "c"),
    per_class: int = 8,
    *,
    seed: int = 0,
    min_side: int = 8,
    max_side: int = 160,
) -> list[Path]:
    """Write ``root/<class>/<index>.<ext>`` files of :func:`real_images` in file formats that suit each mode.

    Args:
        root: Folder to create.
        classes: Class folder names.
        per_class: Images per class.
        seed: Seed of :func:`real_images`.
        min_side: Smallest image side.
        max_side: Largest image side.

    Returns:
        The written files, class by class.
    """
    images = real_images(len(classes) * per_class, seed=seed, min_side=min_side, max_side=max_side)
    paths = []
    for i, img in enumerate(images):
        folder = Path(root) / classes[i // per_class]
        folder.mkdir(parents=True, exist_ok=True)
        formats = _FORMATS[img.mode]
        path = folder / f"{i:04d}{formats[(i // len(IMAGE_MODES)) % len(formats)]}"
        img.save(path)
        paths.append(path)
    return paths


def seed_everything_for_draw(seed: int) -> None:
    """Seed every generator a transform may draw from (Python's ``random``, NumPy's global one, torch's CPU one).

    Args:
        seed: The seed of this draw.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class DrawPlan:
    """How many seeded draws a recipe's transform gets: ``full`` the first time a transform is met, ``repeat`` when an
    earlier recipe's transform printed the same (same steps, sizes, ops and magnitudes).

    Rows of a paper's table often share one augmentation; the shared transform gets the full count once, and each
    further recipe still builds its own transform and runs ``repeat`` draws under seeds of its own.

    Args:
        full: Draws for a transform not seen before.
        repeat: Draws for a transform seen before.
    """

    def __init__(self, full: int = 400, repeat: int = 50):
        self.full, self.repeat = int(full), int(repeat)
        self._seen: set[str] = set()

    def draws(self, *transforms: Any) -> int:
        """The number of draws for a recipe with these transforms (recorded as seen).

        Args:
            transforms: The recipe's transforms (or anything whose ``repr`` describes them).
        """
        key = "\n".join(repr(t) for t in transforms)
        if key in self._seen:
            return self.repeat
        self._seen.add(key)
        return self.full


def failing_draws(check: Callable[[int], Any], draws: int, *, seed: int = 0) -> list[str]:
    """Run ``check(i)`` for every draw ``i``, each under its own seed, and collect the draws that raised.

    Every generator is seeded with ``seed + i`` (:func:`seed_everything_for_draw`) before draw ``i``, so a failing
    draw can be replayed alone. Assertion errors count as failures too.

    Args:
        check: Applies the transform (or loads a sample) for draw ``i`` and checks the output.
        draws: Number of draws.
        seed: Seed of the first draw.

    Returns:
        ``"draw i (seed s): Error: message"`` for each failing draw.
    """
    failures = []
    for i in range(draws):
        seed_everything_for_draw(seed + i)
        try:
            check(i)
        except Exception as err:  # every failure is counted, so the message can give the failure rate
            failures.append(f"draw {i} (seed {seed + i}): {type(err).__name__}: {err}")
    return failures


def _magnitudes(op: Any, steps: int) -> list[float]:
    """The magnitudes a timm ``AugmentOp`` can draw: its fixed value, or a grid over its random range."""
    upper = float(op.magnitude_max or _LEVEL_DENOM)
    m, std = float(op.magnitude), float(op.magnitude_std)
    if std == 0:
        return [max(0.0, min(m, upper))]
    # uniform in [0, m] (std infinite), or Gaussian around m (any value, clamped to [0, upper])
    low, high = 0.0, (max(0.0, min(m, upper)) if math.isinf(std) else upper)
    grid = np.linspace(low, high, steps).tolist()
    # each integer step of the level functions (bits, thresholds) is reached from both sides
    edges = [v for k in range(int(high) + 1) for v in (k - 1e-6, float(k)) if low <= v <= high]
    return sorted({*grid, *edges})


def augment_draw_failures(
    transform: Any, images: Sequence[Image.Image], *, steps: int = 11, seeds: Sequence[int] = (0, 1)
) -> list[str]:
    """Run every timm RandAugment / AutoAugment op inside ``transform`` at every magnitude it can draw.

    Each op is applied with probability 1 at each magnitude of its range (fixed, uniform ``[0, m]`` or the clamped
    Gaussian's ``[0, upper]``; a grid plus both sides of every integer level), to every image, under each seed (the
    ops draw signs and fill choices). The op objects themselves are copied, so level functions that the transform
    carries (e.g. :func:`miil.core.data.floor_posterize_bits`) are what runs.

    Args:
        transform: The transform (a ``Compose`` or a single augmentation).
        images: PIL images as the transform's augmentation receives them (RGB after loading); small ones keep this
            fast.
        steps: Grid points over a random magnitude range.
        seeds: Seeds of Python's ``random`` for each application (0 and 1 draw both signs of signed ops).

    Returns:
        One line per failing (op, magnitude, error), empty when every draw works.
    """
    failures: dict[str, None] = {}
    state = random.getstate()
    try:
        for op in timm_augment_ops(transform):
            for magnitude in _magnitudes(op, steps):
                probe = copy.copy(op)
                probe.prob, probe.magnitude, probe.magnitude_std = 1.0, magnitude, 0.0
                for img in images:
                    for seed in seeds:
                        random.seed(seed)
                        try:
                            out = probe(img)
                            if not isinstance(out, Image.Image) or out.size != img.size:
                                raise TypeError(f"returned {type(out).__name__} of size {getattr(out, 'size', None)}")
                        except Exception as err:  # any error is a draw that would stop training
                            failures[f"{op.name} at magnitude {magnitude:.3f}: {type(err).__name__}: {err}"] = None
    finally:
        random.setstate(state)
    return list(failures)


def normalized_range(
    mean: Sequence[float] | None = None, std: Sequence[float] | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel ``(low, high)`` of ``[0, 1]`` pixels after ``(x - mean) / std`` (identity when not given).

    Args:
        mean: Channel means.
        std: Channel standard deviations.
    """
    mean_t = torch.tensor(mean if mean is not None else (0.0, 0.0, 0.0), dtype=torch.float64)
    std_t = torch.tensor(std if std is not None else (1.0, 1.0, 1.0), dtype=torch.float64)
    return (0.0 - mean_t) / std_t, (1.0 - mean_t) / std_t


def assert_image_tensor(
    x: Any,
    shape: Sequence[int],
    *,
    low: float | torch.Tensor = 0.0,
    high: float | torch.Tensor = 1.0,
    atol: float = 1e-5,
    what: str = "output",
) -> None:
    """Assert that a transform's output is a finite float32 tensor of ``shape`` with values in ``[low, high]``.

    Args:
        x: The output.
        shape: Expected shape.
        low: Lowest allowed value: a number, or one per channel (the channel axis is the third from last).
        high: Highest allowed value, likewise.
        atol: Slack of the range check (float rounding of the normalisation).
        what: Name of the output in the messages.
    """
    assert isinstance(x, torch.Tensor), f"{what}: expected a tensor, got {type(x).__name__}"
    assert x.dtype == torch.float32, f"{what}: dtype {x.dtype}, expected torch.float32"
    assert tuple(x.shape) == tuple(shape), f"{what}: shape {tuple(x.shape)}, expected {tuple(shape)}"
    assert bool(torch.isfinite(x).all()), f"{what}: {int((~torch.isfinite(x)).sum())} non-finite values"
    xd = x.detach().to(torch.float64)

    def per_channel(v: float | torch.Tensor) -> torch.Tensor:
        t = torch.as_tensor(v, dtype=torch.float64)
        return t.view(-1, 1, 1) if t.ndim == 1 else t

    lo, hi = per_channel(low), per_channel(high)
    below, above = xd < lo - atol, xd > hi + atol
    assert not bool(below.any()) and not bool(above.any()), (
        f"{what}: values outside [{low}, {high}]: min {xd.min().item():.4f}, max {xd.max().item():.4f}"
    )


BAD_INPUT_KINDS = ("truncated", "empty", "wrong_type", "missing", "folder")


def write_real_image(path: str | os.PathLike, *, index: int = 0, size: int = 64) -> Path:
    """Write a real handwritten digit (scikit-learn's embedded set) upscaled to ``size`` as a JPEG or PNG."""
    from .data.embedded import digits_pil_images

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image = digits_pil_images("train", image_size=size, channels=3)[index][0]
    image.save(path, quality=95) if path.suffix.lower() in (".jpg", ".jpeg") else image.save(path)
    return path


def write_bad_inputs(folder: str | os.PathLike, *, good: str | os.PathLike | None = None) -> dict[str, Path]:
    """Write one bad input of each kind into ``folder`` and return ``{kind: path}`` (``missing`` is not created).

    Args:
        folder: Where to write them (created).
        good: A real, readable file of the media the package reads (a JPEG, a WAV, an MP4); its suffix is used for
            every bad file and its first bytes make the truncated one. Default: a real digit JPEG.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    good = Path(good) if good is not None else write_real_image(folder / "real-digit.jpg")
    data = good.read_bytes()
    suffix = good.suffix
    out = {kind: folder / f"{kind}{suffix}" for kind in BAD_INPUT_KINDS}
    # Keep the header and cut the payload: decoders read the header and then run out of data.
    out["truncated"].write_bytes(data[: max(len(data) * 2 // 5, 64)])
    out["empty"].write_bytes(b"")
    out["wrong_type"].write_bytes(io.BytesIO(b"this is a text file, not a media file\n" * 8).getvalue())
    out["folder"].mkdir(exist_ok=True)
    (out["folder"] / "note.txt").write_text("a folder where a file belongs\n")
    return out


@contextmanager
def printed_warnings() -> Iterator[None]:
    """Show warnings on stderr as a command run outside pytest does, so a test can check what the user reads.

    pytest records warnings instead of printing them, which bypasses ``warnings.formatwarning`` (where
    :func:`miil.core.cli.run_command` turns a skipped input into its one warning line). Inside this block each
    distinct warning is printed once, through ``formatwarning``, as under Python's default filter.
    """

    def show(message, category, filename, lineno, file=None, line=None):
        (file or sys.stderr).write(warnings.formatwarning(message, category, filename, lineno, line))

    with warnings.catch_warnings():
        warnings.simplefilter("default")
        warnings.showwarning = show
        yield
