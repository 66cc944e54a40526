"""Miniature copies of the papers' datasets, in their exact on-disk formats, made from real data in the wheels.

Each generator ``make_<format>(root, *, seed=0, ...) -> Path`` writes one dataset the way its authors distribute it
(folder layout, file names, label files with all their fields and known quirks), with real images, sounds or videos
whose labels are learnable, small enough to build in seconds. They are the ground truth of the formats for the
loaders' tests and the input of the reproduction scripts' ``--smoke`` runs. Formats read by several packages live
here (COCO-2014, OpenImages V6, ImageNet folders); the others live in the package that owns them
(``miil.<pkg>.miniature``). Outputs are deterministic for a seed, written atomically and reused when the settings
match (:func:`cached_miniature` puts them in the user cache).
"""

from .build import (
    MANIFEST,
    MINIATURE_VERSION,
    build_miniature,
    cached_miniature,
    csv_text,
    generator_settings,
    miniature_cache_dir,
    miniature_digest,
)
from .coco import COCO_DIGIT_CATEGORIES, make_coco2014
from .imagenet import make_imagenet
from .openimages import OPENIMAGES_DIGIT_CLASSES, make_openimages
from .render import (
    PALETTE,
    Box,
    class_digits,
    paste_digit,
    photo_background,
    render_mosaic_photo,
    render_single_digit_photo,
    save_image,
)

__all__ = [
    "COCO_DIGIT_CATEGORIES",
    "MANIFEST",
    "MINIATURE_VERSION",
    "OPENIMAGES_DIGIT_CLASSES",
    "PALETTE",
    "Box",
    "build_miniature",
    "cached_miniature",
    "class_digits",
    "csv_text",
    "generator_settings",
    "make_coco2014",
    "make_imagenet",
    "make_openimages",
    "miniature_cache_dir",
    "miniature_digest",
    "paste_digit",
    "photo_background",
    "render_mosaic_photo",
    "render_single_digit_photo",
    "save_image",
]
