"""Frame preprocessing for STAM clips: one crop for all frames of a clip, values in [0, 1], optional normalisation.

Paper: STAM (arXiv 2103.13915). The original evaluation resizes the short side to ``int(224 / 0.875) = 256``,
centre-crops 224 and scales to [0, 1] *without* mean/std normalisation (the released weights expect that; timm's
ViT configs would normalise with mean = std = 0.5, which must be skipped for them); at 448 px it squish-resizes.
Training crops are not published; ``random_resized`` (area and aspect jitter, optional horizontal flip) is the
usual choice for video transformers. Every frame of a clip gets the same crop, so motion is preserved.

Frames are resized as ``uint8`` with antialiased bilinear interpolation (like PIL), cropped, then turned to float.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["CROP_POLICIES", "VideoTransform"]

CROP_POLICIES = ("center", "squish", "random_resized")


def _resize(frames: torch.Tensor, height: int, width: int) -> torch.Tensor:
    if frames.shape[-2:] == (height, width):
        return frames
    return F.interpolate(frames, size=(height, width), mode="bilinear", antialias=True, align_corners=False)


def _crop_origins(length: int, size: int, count: int) -> list[int]:
    if count == 1:
        return [int(round((length - size) / 2.0))]
    return [int(round(i * (length - size) / (count - 1))) for i in range(count)]


class VideoTransform:
    """``uint8 [N, H, W, 3]`` frames in, ``float [N, 3, size, size]`` out (``[S, N, 3, size, size]`` for S>1 crops).

    Args:
        size: Output side in pixels.
        crop: ``"center"`` (resize the short side to ``int(size / zoom)``, centre crop), ``"squish"`` (resize to
            ``size x size``) or ``"random_resized"`` (training: random area/aspect crop resized to ``size``).
        zoom: ``center`` crop: fraction of the resized short side that is kept (original 0.875).
        scale: ``random_resized``: range of the crop's area as a fraction of the frame.
        ratio: ``random_resized``: range of the crop's aspect ratio.
        hflip: Probability of flipping the whole clip horizontally (training; it reverses left/right motion).
        spatial_views: Evaluation crops per clip along the long side (1: centre, 3: start/centre/end).
        mean: Per-channel mean subtracted after scaling to [0, 1]; ``None``: no normalisation (original weights).
        std: Per-channel standard deviation; ``None`` with ``mean=None``.
    """

    def __init__(
        self,
        *,
        size: int = 224,
        crop: str = "center",
        zoom: float = 0.875,
        scale: Sequence[float] = (0.25, 1.0),
        ratio: Sequence[float] = (3 / 4, 4 / 3),
        hflip: float = 0.0,
        spatial_views: int = 1,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
    ):
        if crop not in CROP_POLICIES:
            raise ValueError(f"crop must be one of {CROP_POLICIES}, got {crop!r}")
        if size < 1 or not 0 < zoom <= 1:
            raise ValueError(f"size must be >= 1 and zoom in (0, 1], got size={size}, zoom={zoom}")
        if spatial_views not in (1, 3) or (spatial_views > 1 and crop != "center"):
            raise ValueError(f"spatial_views must be 1, or 3 with crop='center'; got {spatial_views} with {crop!r}")
        if (mean is None) != (std is None):
            raise ValueError("give both mean and std for normalisation, or neither")
        self.size = int(size)
        self.crop = crop
        self.zoom = float(zoom)
        self.scale = (float(scale[0]), float(scale[1]))
        self.ratio = (float(ratio[0]), float(ratio[1]))
        self.hflip = float(hflip)
        self.spatial_views = int(spatial_views)
        self.mean = None if mean is None else torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
        self.std = None if std is None else torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)

    def _random_box(self, height: int, width: int) -> tuple[int, int, int, int]:
        area = height * width
        log_ratio = (math.log(self.ratio[0]), math.log(self.ratio[1]))
        for _ in range(10):
            target = area * float(torch.empty(1).uniform_(*self.scale))
            aspect = math.exp(float(torch.empty(1).uniform_(*log_ratio)))
            w = int(round(math.sqrt(target * aspect)))
            h = int(round(math.sqrt(target / aspect)))
            if 0 < w <= width and 0 < h <= height:
                top = int(torch.randint(0, height - h + 1, (1,)))
                left = int(torch.randint(0, width - w + 1, (1,)))
                return top, left, h, w
        side = min(height, width)  # fallback: the central square
        return (height - side) // 2, (width - side) // 2, side, side

    def _finish(self, frames: torch.Tensor) -> torch.Tensor:
        out = frames.float().div_(255.0)
        if self.mean is not None:
            out = out.sub_(self.mean).div_(self.std)
        return out.contiguous()

    def __call__(self, frames: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Transform the frames of one clip (or the union of a video's clips: the same crop for all of them)."""
        x = torch.as_tensor(frames)
        if x.ndim != 4 or x.shape[-1] != 3 or x.dtype != torch.uint8:
            raise ValueError(f"expected uint8 [N, H, W, 3] RGB frames, got {x.dtype} {tuple(x.shape)}")
        x = x.permute(0, 3, 1, 2)  # NCHW view of channels-last memory, what the uint8 resize kernel wants
        height, width = x.shape[-2:]
        if self.crop == "squish":
            return self._finish(_resize(x, self.size, self.size))
        if self.crop == "random_resized":
            top, left, h, w = self._random_box(height, width)
            out = _resize(x[:, :, top : top + h, left : left + w], self.size, self.size)
            if self.hflip > 0 and float(torch.rand(1)) < self.hflip:
                out = out.flip(-1)
            return self._finish(out)
        short = int(self.size / self.zoom)
        if height <= width:
            new_h, new_w = short, int(short * width / height)
        else:
            new_h, new_w = int(short * height / width), short
        x = _resize(x, new_h, new_w)
        tops = _crop_origins(new_h, self.size, self.spatial_views if new_h > new_w else 1)
        lefts = _crop_origins(new_w, self.size, self.spatial_views if new_w >= new_h else 1)
        crops = [x[:, :, t : t + self.size, s : s + self.size] for t in tops for s in lefts]
        if self.spatial_views == 1:
            return self._finish(crops[0])
        if len(crops) == 1:  # square frames: the three crops coincide
            crops = crops * self.spatial_views
        return self._finish(torch.stack(crops))

    def __repr__(self) -> str:
        norm = (
            "none" if self.mean is None else f"mean={self.mean.flatten().tolist()}, std={self.std.flatten().tolist()}"
        )
        return (
            f"VideoTransform(size={self.size}, crop={self.crop!r}, zoom={self.zoom}, hflip={self.hflip}, "
            f"spatial_views={self.spatial_views}, normalize={norm})"
        )
