"""Image transforms of the Alibaba-MIIL multi-label training pipelines.

Follows the ML-Decoder / ASL (Asymmetric Loss) training recipes: images are "squish" resized to a square ignoring
the aspect ratio (their ``Resize((S, S))``), augmented with ``CutoutPIL`` (one randomly coloured rectangle) and
RandAugment, and fed to the network in [0, 1] without mean/std normalisation (TResNet normalises internally).
RandAugment itself is timm's implementation, configured the way timm's ``create_transform`` configures it.

timm's posterize ops map some magnitudes to 0 bits kept (``Posterize`` below magnitude 2.5, ``PosterizeIncreasing``
at magnitude 10, AutoAugment v0's ``("Posterize", 0.8, 2)``). Old Pillow turned that into a black image; the Pillow we
lock rejects it (``bits must be between or equal to 1 and 8``), which ends a training run at the first such draw.
:func:`floor_posterize_bits` keeps at least 1 bit in those draws (the strongest posterize Pillow allows) and leaves
every other draw untouched; :func:`rand_augment` applies it, and so do the packages to timm's ``create_transform``.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from PIL import Image
from torchvision import transforms as T

__all__ = [
    "CutoutPIL",
    "SquishResize",
    "floor_posterize_bits",
    "multilabel_eval_transform",
    "multilabel_train_transform",
    "rand_augment",
    "timm_augment_ops",
]

# ImageNet channel means (the same values as timm.data.IMAGENET_DEFAULT_MEAN), kept here so that importing this
# module does not import timm.
IMAGENET_DEFAULT_MEAN = (0.485, 0.456, 0.406)


def _pair(size: int | Sequence[int], name: str) -> tuple[int, int]:
    if isinstance(size, int):
        h = w = size
    elif isinstance(size, Sequence) and len(size) == 2 and all(isinstance(s, int) for s in size):
        h, w = size
    else:
        raise ValueError(f"{name} must be an int or a (height, width) pair of ints, got {size!r}")
    if h <= 0 or w <= 0:
        raise ValueError(f"{name} must be positive, got {size!r}")
    return h, w


class SquishResize:
    """Resize a PIL image to a fixed size, ignoring its aspect ratio (bilinear).

    Args:
        size: Output size: an int for a square, or ``(height, width)``.
    """

    def __init__(self, size: int | Sequence[int]):
        self.size = _pair(size, "SquishResize size")

    def __call__(self, img: Image.Image) -> Image.Image:
        h, w = self.size
        if img.size == (w, h):
            return img
        return img.resize((w, h), Image.Resampling.BILINEAR)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(size={self.size})"


class CutoutPIL:
    """Paint one rectangle of random colour over a copy of a PIL image (ML-Decoder/ASL train augmentation).

    The rectangle is ``round(cutout_factor * H)`` by ``round(cutout_factor * W)`` pixels, centred at a uniformly
    random pixel and clipped at the image borders. Randomness comes from Python's ``random`` module, so
    ``random.seed`` makes it reproducible.

    Args:
        cutout_factor: Rectangle size as a fraction of the image height and width, in (0, 1].
        p: Probability of applying the cutout.
        fill: Fixed colour (an int for single-band images, a tuple per band otherwise); ``None`` draws a random
            colour for every image.
    """

    def __init__(self, cutout_factor: float = 0.5, p: float = 1.0, fill: int | Sequence[int] | None = None):
        if not 0.0 < cutout_factor <= 1.0:
            raise ValueError(f"CutoutPIL cutout_factor must be in (0, 1], got {cutout_factor}")
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"CutoutPIL p must be a probability in [0, 1], got {p}")
        self.cutout_factor = float(cutout_factor)
        self.p = float(p)
        self.fill = tuple(fill) if isinstance(fill, Sequence) else fill

    def __call__(self, img: Image.Image) -> Image.Image:
        if self.p < 1.0 and random.random() >= self.p:
            return img
        w, h = img.size
        cut_h = int(self.cutout_factor * h + 0.5)
        cut_w = int(self.cutout_factor * w + 0.5)
        if cut_h == 0 or cut_w == 0:
            return img
        yc = random.randrange(h)
        xc = random.randrange(w)
        y1, x1 = yc - cut_h // 2, xc - cut_w // 2
        box = (max(x1, 0), max(y1, 0), min(x1 + cut_w, w), min(y1 + cut_h, h))
        if self.fill is None:
            bands = len(img.getbands())
            colour = tuple(random.randint(0, 255) for _ in range(bands))
            colour = colour[0] if bands == 1 else colour
        else:
            colour = self.fill
        out = img.copy()
        out.paste(colour, box)  # right/bottom edges exclusive: exactly the clipped rectangle
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}(cutout_factor={self.cutout_factor}, p={self.p}, fill={self.fill})"


_POSTERIZE_OPS = ("Posterize", "PosterizeIncreasing", "PosterizeOriginal")


def timm_augment_ops(transform: Any) -> Iterator[Any]:
    """Every timm ``AugmentOp`` inside a transform: RandAugment ops, AutoAugment sub-policies, nested ``Compose``.

    Args:
        transform: A transform, e.g. the ``Compose`` of timm's ``create_transform`` or :func:`rand_augment`'s result.
    """
    from timm.data.auto_augment import AugmentOp

    if isinstance(transform, AugmentOp):
        yield transform
    elif isinstance(transform, list | tuple):
        for item in transform:
            yield from timm_augment_ops(item)
    else:
        for attr in ("transforms", "ops", "policy"):  # Compose / RandomApply, RandAugment / AugMix, AutoAugment
            children = getattr(transform, attr, None)
            if isinstance(children, list | tuple):
                yield from timm_augment_ops(children)


class _AtLeastOneBit:
    """A timm posterize level function whose number of kept bits never drops below 1 (Pillow rejects 0)."""

    def __init__(self, level_fn: Callable[..., tuple[int]]):
        self.level_fn = level_fn

    def __call__(self, magnitude: float, hparams: dict) -> tuple[int]:
        (bits,) = self.level_fn(magnitude, hparams)
        return (max(1, int(bits)),)


def floor_posterize_bits(transform: Any) -> Any:
    """Make every timm posterize op inside ``transform`` keep at least 1 bit; returns ``transform`` (changed in place).

    Draws that asked for 1 to 8 bits are unchanged; a draw of 0 bits (a black image on old Pillow, an error on the
    Pillow we lock) keeps 1 bit instead. Safe to call twice.

    Args:
        transform: A transform holding timm RandAugment / AutoAugment ops (others are left alone).
    """
    for op in timm_augment_ops(transform):
        if op.name in _POSTERIZE_OPS and not isinstance(op.level_fn, _AtLeastOneBit):
            op.level_fn = _AtLeastOneBit(op.level_fn)
    return transform


def rand_augment(
    config_str: str = "rand-m9-mstd0.5",
    *,
    img_size: int | Sequence[int] = 224,
    mean: Sequence[float] = IMAGENET_DEFAULT_MEAN,
) -> Callable[[Image.Image], Image.Image]:
    """timm's RandAugment (PIL in, PIL out), with the hyper-parameters timm's ``create_transform`` uses.

    Posterize keeps at least 1 bit (:func:`floor_posterize_bits`).

    Args:
        config_str: timm RandAugment config, e.g. ``"rand-m9-mstd0.5"`` or ``"rand-m9-n3-mstd0.5-inc1"``.
        img_size: Training image size; sets the translation range (45% of the shorter side).
        mean: Channel means in [0, 1]; their 0..255 values fill the area uncovered by geometric ops.
    """
    from timm.data.auto_augment import rand_augment_transform

    if not isinstance(config_str, str) or not config_str.startswith("rand"):
        raise ValueError(f"RandAugment config must look like 'rand-m9-mstd0.5', got {config_str!r}")
    h, w = _pair(img_size, "rand_augment img_size")
    hparams = {
        "translate_const": int(min(h, w) * 0.45),
        "img_mean": tuple(min(255, round(255 * m)) for m in mean),
    }
    return floor_posterize_bits(rand_augment_transform(config_str, hparams))


def multilabel_train_transform(
    img_size: int | Sequence[int],
    *,
    cutout_factor: float | None = 0.5,
    randaug: str | None = "rand-m9-mstd0.5",
) -> T.Compose:
    """MIIL multi-label train pipeline: squish resize, CutoutPIL, RandAugment, ToTensor (values in [0, 1]).

    Args:
        img_size: Output size (int or ``(height, width)``).
        cutout_factor: CutoutPIL size factor; ``None`` or 0 leaves cutout out.
        randaug: timm RandAugment config string; ``None`` leaves RandAugment out.
    """
    steps: list[Callable] = [SquishResize(img_size)]
    if cutout_factor:
        steps.append(CutoutPIL(cutout_factor=cutout_factor))
    if randaug:
        steps.append(rand_augment(randaug, img_size=img_size))
    steps.append(T.ToTensor())
    return T.Compose(steps)


def multilabel_eval_transform(img_size: int | Sequence[int]) -> T.Compose:
    """MIIL multi-label eval pipeline: squish resize, ToTensor (values in [0, 1]).

    Args:
        img_size: Output size (int or ``(height, width)``).
    """
    return T.Compose([SquishResize(img_size), T.ToTensor()])
