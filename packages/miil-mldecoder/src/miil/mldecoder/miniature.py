"""Miniature Pascal VOC 2007 and NUS-WIDE (zero-shot) copies in their real on-disk formats, from real digits.

Paper: "ML-Decoder: Scalable and Versatile Classification Head" (arXiv 2111.12933) evaluates on Pascal-VOC 2007 and
on the NUS-WIDE zero-shot benchmark (925 seen tags, 81 unseen concepts, fastText word vectors). MS-COCO, which
ML-Decoder shares with CSL, is written by :func:`miil.core.miniature.make_coco2014`.

The images are mosaics of real handwritten digits over real photographs (:mod:`miil.core.miniature.render`), so the
labels are learnable: VOC class ``k`` is digit ``k % 10`` painted in colour ``k // 10``; NUS-WIDE class ``"three"``
is the digit 3. Train splits use the train digits and test / validation splits the disjoint test digits. The
generators write atomically, reuse a finished copy made with the same settings, and give the same files for the
same seed.
"""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import torch

from miil.core.data import load_digits_split, plan_digit_mosaics
from miil.core.miniature import build_miniature, generator_settings, render_mosaic_photo, save_image

from .data.voc import VOC_CLASSES

__all__ = ["NUS_WIDE_DIGIT_CLASSES", "make_nus_wide", "make_voc2007"]

#: NUS-WIDE miniature class names: the digits as words (class ``NUS_WIDE_DIGIT_CLASSES[d]`` shows digit ``d``).
NUS_WIDE_DIGIT_CLASSES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_POSES = ("Unspecified", "Frontal", "Left", "Right", "Rear")


def _sub(parent: ET.Element, tag: str, text: object | None = None) -> ET.Element:
    node = ET.SubElement(parent, tag)
    if text is not None:
        node.text = str(text)
    return node


def _voc_xml(image_id: str, width: int, height: int, objects: list[dict], rng: np.random.Generator) -> ET.Element:
    root = ET.Element("annotation")
    _sub(root, "folder", "VOC2007")
    _sub(root, "filename", f"{image_id}.jpg")
    source = _sub(root, "source")
    _sub(source, "database", "The VOC2007 Database")
    _sub(source, "annotation", "PASCAL VOC2007")
    _sub(source, "image", "flickr")
    _sub(source, "flickrid", int(rng.integers(10**8, 10**9)))
    owner = _sub(root, "owner")
    _sub(owner, "flickrid", f"miil{int(rng.integers(1000))}")
    _sub(owner, "name", "?")
    size = _sub(root, "size")
    _sub(size, "width", width)
    _sub(size, "height", height)
    _sub(size, "depth", 3)
    _sub(root, "segmented", 0)
    for obj in objects:
        node = _sub(root, "object")
        _sub(node, "name", obj["name"])
        _sub(node, "pose", obj["pose"])
        _sub(node, "truncated", obj["truncated"])
        _sub(node, "difficult", obj["difficult"])
        box = _sub(node, "bndbox")
        x0, y0, x1, y1 = obj["box"]
        for tag, value in (("xmin", x0), ("ymin", y0), ("xmax", x1), ("ymax", y1)):
            _sub(box, tag, value)
        if obj["name"] == "person":  # VOC2007 person layout: parts carry their own <name>
            part = _sub(node, "part")
            _sub(part, "name", "head")
            head = _sub(part, "bndbox")
            for tag, value in (("xmin", x0), ("ymin", y0), ("xmax", x1), ("ymax", y0 + max(1, (y1 - y0) // 3))):
                _sub(head, tag, value)
    ET.indent(root, space="\t")
    return root


def make_voc2007(
    root: str | os.PathLike,
    *,
    seed: int = 0,
    train_images: int = 24,
    val_images: int = 16,
    test_images: int = 24,
    difficult_fraction: float = 0.1,
    grid: int = 3,
    cell: int = 10,
    scale: int = 4,
    max_digits: int = 3,
) -> Path:
    """Write a miniature Pascal VOC 2007 (devkit layout, train / val / trainval / test lists) and return ``root``.

    Layout written (``VOCtrainval_06-Nov-2007.tar`` and ``VOCtest_06-Nov-2007.tar`` extracted into one folder)::

        root/VOCdevkit/VOC2007/
          JPEGImages/<6-digit id>.jpg
          Annotations/<6-digit id>.xml        folder, filename, source, owner, size, segmented, and per object:
                                              name, pose, truncated, difficult, bndbox (1-based pixel corners);
                                              person objects also have a <part> (head) with its own <name>
          ImageSets/Main/{train,val,trainval,test}.txt                  one image id per line
          ImageSets/Main/<class>_{train,val,trainval,test}.txt          "<id> -1" absent, "<id>  1" present,
                                                                        "<id>  0" present only as difficult

    The 20 classes are VOC's (``VOC_CLASSES``); class ``k`` is drawn as digit ``k % 10`` in colour ``k // 10``. Image
    ids interleave across splits, as in the release. About ``difficult_fraction`` of the objects are marked difficult
    (and drawn dimmer); objects touching the border are marked truncated.

    Args:
        root: Output folder (absent, empty, or an earlier miniature).
        seed: Seed of everything drawn.
        train_images: Images of the train list.
        val_images: Images of the val list (trainval = train + val).
        test_images: Images of the test list (drawn from the held-out digits).
        difficult_fraction: Share of objects marked difficult.
        grid: Mosaic cells per side.
        cell: Cell side in digit pixels (>= 8).
        scale: Image pixels per digit pixel.
        max_digits: Most objects per image.
    """
    params = generator_settings(locals())

    def build(out: Path) -> None:
        voc = out / "VOCdevkit" / "VOC2007"
        rng = np.random.default_rng([seed, 2007])
        total = train_images + val_images + test_images
        ids = [f"{n:06d}" for n in sorted(rng.choice(np.arange(1, 10 * total + 10), size=total, replace=False))]
        assignment = rng.permutation(["train"] * train_images + ["val"] * val_images + ["test"] * test_images)
        members: dict[str, list[str]] = {"train": [], "val": [], "test": []}
        for image_id, split in zip(ids, assignment.tolist()):
            members[split].append(image_id)
        presence: dict[str, np.ndarray] = {}
        for split, image_ids in members.items():
            digits = "test" if split == "test" else "train"
            plans = plan_digit_mosaics(
                digits,
                len(image_ids),
                grid=grid,
                cell=cell,
                max_digits=max_digits,
                num_classes=len(VOC_CLASSES),
                balanced=True,
                seed=seed * 3 + ("train", "val", "test").index(split),
            )
            side = grid * cell
            for image_id, items in zip(image_ids, plans):
                height = side * scale
                width = height + int(rng.choice([0, cell * scale]))
                pixels, boxes = render_mosaic_photo(items, digits, rng, side=side, scale=scale, width=width)
                hard = rng.random(len(boxes)) < difficult_fraction
                if hard.any():  # difficult objects are the faint ones: re-render them dimmed
                    pixels = _dim_boxes(pixels, [b for b, h in zip(boxes, hard) if h])
                save_image(pixels, voc / "JPEGImages" / f"{image_id}.jpg")
                objects, state = [], np.full(len(VOC_CLASSES), -1)
                for box, is_hard in zip(boxes, hard.tolist()):
                    x0, y0 = box.x + 1, box.y + 1  # VOC boxes are 1-based and inclusive
                    x1, y1 = box.x + box.width, box.y + box.height
                    truncated = int(box.x == 0 or box.y == 0 or x1 >= width or y1 >= height)
                    objects.append(
                        {
                            "name": VOC_CLASSES[box.label],
                            "pose": _POSES[int(rng.integers(len(_POSES)))],
                            "truncated": truncated,
                            "difficult": int(is_hard),
                            "box": (x0, y0, x1, y1),
                        }
                    )
                    state[box.label] = max(state[box.label], 0 if is_hard else 1)
                xml = _voc_xml(image_id, width, height, objects, rng)
                path = voc / "Annotations" / f"{image_id}.xml"
                path.parent.mkdir(parents=True, exist_ok=True)
                ET.ElementTree(xml).write(path, encoding="utf-8")
                presence[image_id] = state
        lists = {**members, "trainval": sorted(members["train"] + members["val"])}
        main = voc / "ImageSets" / "Main"
        main.mkdir(parents=True, exist_ok=True)
        for split, image_ids in lists.items():
            (main / f"{split}.txt").write_text("".join(f"{i}\n" for i in image_ids))
            for k, name in enumerate(VOC_CLASSES):
                rows = "".join(f"{i} {int(presence[i][k]):2d}\n" for i in image_ids)
                (main / f"{name}_{split}.txt").write_text(rows)

    return build_miniature(root, "voc2007", params, build)


def _dim_boxes(pixels: np.ndarray, boxes) -> np.ndarray:
    out = pixels.astype(np.float32)
    for b in boxes:
        out[b.y : b.y + b.height, b.x : b.x + b.width] *= 0.6
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _word_vectors(classes: list[str], dim: int, seed: int) -> torch.Tensor:
    """``[dim, C]`` vectors in the reference's ``wordvec_array`` layout: a fixed random projection of each digit's
    mean image (train digits), plus noise. They play the role of fastText vectors: related classes (similar-looking
    digits) get related vectors, which is what zero-shot transfer needs."""
    images, labels = load_digits_split("train")
    rng = np.random.default_rng([seed, 300])
    project = rng.normal(size=(64, dim)) / 8.0
    vectors = []
    for name in classes:
        mean = images[labels == NUS_WIDE_DIGIT_CLASSES.index(name)].reshape(-1, 64).mean(0) / 255.0
        mean = (mean - mean.mean()) / (mean.std() + 1e-6)
        vectors.append(mean @ project + rng.normal(scale=0.05, size=dim))
    return torch.tensor(np.stack(vectors, 1), dtype=torch.float32)


def make_nus_wide(
    root: str | os.PathLike,
    *,
    seed: int = 0,
    train_images: int = 48,
    val_images: int = 24,
    unseen: tuple[str, ...] = ("three", "seven", "nine"),
    word_dim: int = 300,
    grid: int = 3,
    cell: int = 10,
    scale: int = 3,
    max_digits: int = 3,
) -> Path:
    """Write a miniature NUS-WIDE zero-shot set (the ML-Decoder reference's files) and return ``root``.

    Layout written::

        root/
          Flickr/<concept>/<nnnn>_<flickr id>.jpg     the image release: one folder per (first) concept
          data.csv                                    header row, then: image path, label list "[sky, clouds]",
                                                      split "train" / "val"
          benchmark_81_v0.json                        {"train class": [...seen...], "test class": [...unseen...]}
          wordvec_array.pth                           float32 [word_dim, C] tensor, C = all classes in sorted order

    As in the reference's ``parse_csv_data``, the first row of ``data.csv`` is a header (pandas reads it as one,
    whatever it says) and the label lists are bracketed, comma-and-space separated and unquoted; the class order is
    the sorted set of all label names, and the word vectors follow it. Images carry seen and unseen labels in both
    splits; a zero-shot run trains on the seen ones and evaluates the unseen ones on validation images that have one.

    Args:
        root: Output folder (absent, empty, or an earlier miniature).
        seed: Seed of everything drawn.
        train_images: Rows of split ``train`` (from the train digits).
        val_images: Rows of split ``val`` (from the held-out digits).
        unseen: Class names of the "test class" list; the other digit words are seen.
        word_dim: Word-vector size (fastText: 300).
        grid: Mosaic cells per side.
        cell: Cell side in digit pixels (>= 8).
        scale: Image pixels per digit pixel.
        max_digits: Most digits (labels) per image.
    """
    params = generator_settings(locals())
    unknown = sorted(set(unseen) - set(NUS_WIDE_DIGIT_CLASSES))
    if unknown or not 0 < len(set(unseen)) < len(NUS_WIDE_DIGIT_CLASSES):
        raise ValueError(f"unseen must be a proper, non-empty subset of {NUS_WIDE_DIGIT_CLASSES}, got {unseen}")

    def build(out: Path) -> None:
        rng = np.random.default_rng([seed, 81])
        rows = []
        photo_ids = iter(rng.integers(10**8, 10**10, size=train_images + val_images).tolist())
        number = 0
        for split, n, digits in (("train", train_images, "train"), ("val", val_images, "test")):
            plans = plan_digit_mosaics(
                digits, n, grid=grid, cell=cell, max_digits=max_digits, balanced=True, seed=seed * 2 + (split == "val")
            )
            side = grid * cell
            for items in plans:
                number += 1
                pixels, boxes = render_mosaic_photo(items, digits, rng, side=side, scale=scale)
                labels = list(dict.fromkeys(NUS_WIDE_DIGIT_CLASSES[b.label] for b in boxes))
                rel = f"Flickr/{labels[0]}/{number:04d}_{next(photo_ids)}.jpg"
                save_image(pixels, out / rel)
                rows.append((rel, labels, split))
        text = "image_name,label,split\n" + "".join(f'{p},"[{", ".join(lab)}]",{s}\n' for p, lab, s in rows)
        (out / "data.csv").write_text(text, encoding="utf-8")
        classes = sorted({name for _, labels, _ in rows for name in labels})
        split = {
            "train class": [c for c in classes if c not in unseen],
            "test class": [c for c in classes if c in unseen],
        }
        (out / "benchmark_81_v0.json").write_text(json.dumps(split), encoding="utf-8")
        torch.save(_word_vectors(classes, word_dim, seed), out / "wordvec_array.pth")

    return build_miniature(root, "nus_wide", params, build)
