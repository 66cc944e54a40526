"""The miniature-dataset machinery (build once, atomically, deterministically) and the ImageNet miniature."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from miil.core.data import ImageFolderDataset
from miil.core.miniature import (
    MANIFEST,
    build_miniature,
    cached_miniature,
    make_coco2014,
    make_imagenet,
    make_openimages,
    miniature_digest,
)
from miil.core.miniature.imagenet import imagenet_synsets


def test_same_seed_same_bytes_other_seed_other_data(tmp_path, coco_root):
    again = make_coco2014(tmp_path / "again")
    assert miniature_digest(again) == miniature_digest(coco_root)
    other = make_coco2014(tmp_path / "other", seed=1)
    assert miniature_digest(other) != miniature_digest(coco_root)
    (again / "train2014" / "extra.jpg").write_bytes(b"x")
    assert miniature_digest(again) != miniature_digest(coco_root)


@pytest.mark.parametrize("make", [make_imagenet, make_coco2014, make_openimages])
def test_generators_are_deterministic_by_seed(make, tmp_path):
    small = {"num_classes": 2, "train_per_class": 2, "val_per_class": 1} if make is make_imagenet else {
        "train_images": 3, "val_images": 2}  # fmt: skip
    a, b = make(tmp_path / "a", seed=3, **small), make(tmp_path / "b", seed=3, **small)
    assert miniature_digest(a) == miniature_digest(b) != miniature_digest(make(tmp_path / "c", seed=4, **small))


def test_build_once_rebuild_on_new_settings_refuse_real_data(tmp_path):
    calls = []

    def build(out):
        calls.append(out)
        (out / "data.txt").write_text("x")

    root = tmp_path / "ds"
    assert build_miniature(root, "fmt", {"n": 1}, build) == root and len(calls) == 1
    assert build_miniature(root, "fmt", {"n": 1}, build) == root and len(calls) == 1  # reused
    assert json.loads((root / MANIFEST).read_text())["settings"] == {"n": 1}
    build_miniature(root, "fmt", {"n": 2}, build)
    assert len(calls) == 2 and json.loads((root / MANIFEST).read_text())["settings"] == {"n": 2}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]  # no partial folder left behind
    real = tmp_path / "real"
    real.mkdir()
    (real / "photo.jpg").write_bytes(b"mine")
    with pytest.raises(FileExistsError, match="not empty and holds no miniature"):
        build_miniature(real, "fmt", {}, build)
    assert (real / "photo.jpg").read_bytes() == b"mine"

    def failing(out):
        (out / "half").write_text("x")
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        build_miniature(tmp_path / "broken", "fmt", {}, failing)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds", "real"]  # nothing half-written


def test_cached_miniature_names_the_folder_after_the_settings(tmp_path):
    a = cached_miniature(make_imagenet, cache_dir=tmp_path, num_classes=2, train_per_class=2, val_per_class=1)
    b = cached_miniature(make_imagenet, cache_dir=tmp_path, num_classes=2, train_per_class=2, val_per_class=1)
    c = cached_miniature(make_imagenet, cache_dir=tmp_path, num_classes=3, train_per_class=2, val_per_class=1)
    assert a == b != c and a.parent == tmp_path and a.name.startswith("imagenet-")


def test_imagenet_folders_read_by_the_image_folder_loader(imagenet_root):
    wnids = sorted(p.name for p in (imagenet_root / "train").iterdir())
    assert len(wnids) == 10 and set(wnids) <= set(imagenet_synsets())
    assert sorted(p.name for p in (imagenet_root / "val").iterdir()) == wnids
    train = ImageFolderDataset(imagenet_root / "train", strict=True)
    val = ImageFolderDataset(imagenet_root / "val", classes=train.classes, strict=True)
    assert len(train) == 80 and len(val) == 40
    assert all(Path(p).name.startswith(f"{Path(p).parent.name}_") for p, _ in train.samples)
    assert all(Path(p).name.startswith("ILSVRC2012_val_") for p, _ in val.samples)
    formats = {}
    for path, _ in train.samples + val.samples:
        with Image.open(path) as im:
            formats[(im.format, im.mode)] = formats.get((im.format, im.mode), 0) + 1
    assert formats[("JPEG", "CMYK")] == 1 and formats[("PNG", "RGB")] == 1 and formats[("JPEG", "L")] == 1
    modes = {train[i][0].mode for i in range(len(train))}  # the CMYK and disguised PNG files load as RGB
    assert modes == {"RGB"}
    sizes = {train[i][0].size for i in range(len(train))}
    assert len(sizes) > 10
