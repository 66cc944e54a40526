"""COCO-2014 loading (``miil.core.data.CocoMultiLabelDataset``) on the miniature written in the official format."""

from __future__ import annotations

import json

import pytest
import torch

from miil.core.data import CocoMultiLabelDataset, read_coco_labels
from miil.core.miniature import COCO_DIGIT_CATEGORIES


def _instances(coco_root, split="val2014"):
    return json.loads((coco_root / "annotations" / f"instances_{split}.json").read_text())


@pytest.mark.parametrize("split", ["train2014", "val2014"])
def test_reads_the_miniature_as_the_reference_protocol(coco_root, split):
    data = _instances(coco_root, split)
    ds = CocoMultiLabelDataset(coco_root / split, coco_root / "annotations" / f"instances_{split}.json")
    assert ds.classes == [name for _, name in COCO_DIGIT_CATEGORIES]  # the file's order (= id order)
    assert ds.category_ids == [cid for cid, _ in COCO_DIGIT_CATEGORIES]
    annotated = {a["image_id"] for a in data["annotations"]}
    assert len(data["images"]) == len(annotated) + 2  # two images without annotations ...
    assert len(ds) == len(annotated) and set(ds.image_ids) == annotated  # ... are left out, as in the reference
    by_id = {img["id"]: img["file_name"] for img in data["images"]}
    column = {cid: k for k, cid in enumerate(ds.category_ids)}
    for row, image_id in enumerate(ds.image_ids):
        present = {column[a["category_id"]] for a in data["annotations"] if a["image_id"] == image_id}
        assert set(ds.targets[row].nonzero().flatten().tolist()) == present
        assert ds.paths[row].endswith(by_id[image_id])
    assert (ds.targets.sum(0) > 0).all()  # every class occurs in every split
    image, target = ds[0]
    assert image.mode == "RGB" and torch.equal(target, ds.targets[0])


def test_crowd_annotations_count_and_grey_images_load(coco_root):
    data = _instances(coco_root)
    crowd = [a for a in data["annotations"] if a["iscrowd"]]
    assert len(crowd) == 1 and isinstance(crowd[0]["segmentation"], dict)
    height, width = crowd[0]["segmentation"]["size"]
    assert sum(crowd[0]["segmentation"]["counts"]) == height * width  # uncompressed RLE covers the image
    ds = CocoMultiLabelDataset(coco_root / "val2014", coco_root / "annotations" / "instances_val2014.json")
    row = ds.image_ids.index(crowd[0]["image_id"])
    assert ds.targets[row, ds.category_ids.index(crowd[0]["category_id"])] == 1  # crowd regions are positives
    modes = set()
    for i in range(len(ds)):
        img, _ = ds[i]
        modes.add(img.mode)
    assert modes == {"RGB"}  # the grey-scale JPEG is converted


def test_keep_unannotated_images(coco_root):
    ann = coco_root / "annotations" / "instances_train2014.json"
    labels = read_coco_labels(ann, keep_unannotated_images=True)
    assert len(labels.file_names) == len(_instances(coco_root, "train2014")["images"])
    assert int((labels.targets.sum(1) == 0).sum()) == 2
    ds = CocoMultiLabelDataset(coco_root / "train2014", ann, keep_unannotated_images=True)
    assert len(ds) == len(labels.file_names) and ds.targets.dtype == torch.float32


def test_targets_are_replaceable_for_partial_label_simulation(coco_root):
    ds = CocoMultiLabelDataset(coco_root / "val2014", coco_root / "annotations" / "instances_val2014.json")
    ds.targets = torch.full_like(ds.targets, -1.0)
    assert ds[1][1].tolist() == [-1.0] * 10


def test_errors_name_the_file_and_the_entry(tmp_path, coco_root):
    data = _instances(coco_root)
    bad = tmp_path / "instances_bad.json"
    broken = dict(data, annotations=[dict(data["annotations"][0], image_id=-5)])
    bad.write_text(json.dumps(broken))
    with pytest.raises(ValueError, match=r"instances_bad.json: annotations\[0\] refers to image id -5"):
        read_coco_labels(bad)
    bad.write_text(json.dumps(dict(data, annotations=[dict(data["annotations"][0], category_id=99)])))
    with pytest.raises(ValueError, match=r"annotations\[0\] refers to category id 99"):
        read_coco_labels(bad)
    bad.write_text(json.dumps(dict(data, images=[{"id": 1}])))
    with pytest.raises(ValueError, match=r"images\[0\]: missing required field 'file_name'"):
        read_coco_labels(bad)
    bad.write_text(json.dumps(dict(data, categories=data["categories"] * 2)))
    with pytest.raises(ValueError, match="repeats category id"):
        read_coco_labels(bad)
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        read_coco_labels(bad)
    bad.write_text(json.dumps({"images": []}))
    with pytest.raises(ValueError, match="missing required field 'categories'"):
        read_coco_labels(bad)
    escaping = dict(data, images=[dict(data["images"][0], file_name="../outside.jpg")], annotations=[])
    bad.write_text(json.dumps(escaping))
    with pytest.raises(ValueError, match="climbs out of the data root"):
        CocoMultiLabelDataset(coco_root / "val2014", bad, keep_unannotated_images=True)
    with pytest.raises(FileNotFoundError, match="COCO image folder"):
        CocoMultiLabelDataset(tmp_path / "missing", coco_root / "annotations" / "instances_val2014.json")
