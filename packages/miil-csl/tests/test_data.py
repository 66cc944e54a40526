import json

import numpy as np
import pytest
import torch
from PIL import Image

from miil.core.data import write_multilabel_csv
from miil.core.metrics import MeanAPMeter
from miil.csl import PartialMAPMeter
from miil.csl.data import (
    CocoMultiLabelDataset,
    DigitMosaicDataset,
    LVISFederatedDataset,
    OpenImagesDataset,
    SparseLabels,
    make_digit_mosaics,
    read_openimages_classes,
)
from miil.csl.pipeline import CSLConfig, DataSpec, build_datasets, build_meter


def _png(path, value=128):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((12, 16, 3), value, dtype=np.uint8)).save(path)


def _coco(tmp_path):
    data = {
        "images": [
            {"id": 10, "file_name": "a.jpg"},
            {"id": 11, "file_name": "b.jpg"},
            {"id": 12, "file_name": "empty.jpg"},
        ],
        "categories": [{"id": 1, "name": "person"}, {"id": 3, "name": "car"}, {"id": 2, "name": "bicycle"}],
        "annotations": [
            {"id": 1, "image_id": 10, "category_id": 1, "area": 10.0},
            {"id": 2, "image_id": 10, "category_id": 1, "area": 5000.0},
            {"id": 3, "image_id": 11, "category_id": 2, "area": 100.0},
            {"id": 4, "image_id": 11, "category_id": 3, "area": 100.0},
        ],
    }
    ann = tmp_path / "instances_train2014.json"
    ann.write_text(json.dumps(data))
    for name in ("a.jpg", "b.jpg", "empty.jpg"):
        _png(tmp_path / "train2014" / name)
    return ann


def test_coco_instances(tmp_path):
    ann = _coco(tmp_path)
    ds = CocoMultiLabelDataset(ann, tmp_path / "train2014")
    assert ds.classes == ["person", "car", "bicycle"]  # JSON order, not id order
    assert ds.targets.tolist() == [[1, 0, 0], [0, 1, 1]]  # the image without annotations is dropped
    img, target = ds[1]
    assert img.size == (16, 12) and target.tolist() == [0, 1, 1]
    keep = CocoMultiLabelDataset(ann, tmp_path / "train2014", keep_unannotated_images=True)
    assert len(keep) == 3 and keep.targets[2].tolist() == [0, 0, 0]


def test_coco_errors(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps(
            {
                "images": [{"id": 1, "file_name": "x.jpg"}],
                "categories": [],
                "annotations": [{"id": 7, "image_id": 1, "category_id": 99}],
            }
        )
    )
    with pytest.raises(ValueError, match=r"bad.json: annotation 7 refers to unknown 99"):
        CocoMultiLabelDataset(bad, tmp_path)
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        CocoMultiLabelDataset(bad, tmp_path)
    bad.write_text(json.dumps({"images": []}))
    with pytest.raises(ValueError, match="not a COCO instances file"):
        CocoMultiLabelDataset(bad, tmp_path)


def _openimages(tmp_path):
    (tmp_path / "classes.txt").write_text("/m/01\n/m/02\n/m/03\n/m/04\n")
    (tmp_path / "descriptions.csv").write_text("LabelName,DisplayName\n/m/01,Cat\n/m/02,Dog\n/m/03,Car\n/m/04,Tree\n")
    (tmp_path / "data.csv").write_text(
        "path,pos,neg,split\n"
        "train/x1.jpg,\"['/m/01', '/m/03']\",\"['/m/02']\",train\n"
        "train/x2.jpg,['/m/04'],\"['/m/01', '/m/99']\",train\n"
        "val/y1.jpg,[],\"['/m/03', '/m/04']\",val\n"
    )
    for name in ("train/x1.jpg", "train/x2.jpg", "val/y1.jpg"):
        _png(tmp_path / "images" / name)


def test_openimages_csl_layout(tmp_path, capsys):
    _openimages(tmp_path)
    with pytest.warns(UserWarning, match="9605"):
        ds = OpenImagesDataset(
            tmp_path / "data.csv", tmp_path / "images", classes=tmp_path / "classes.txt", split="train"
        )
    assert isinstance(ds.targets, SparseLabels)
    assert ds.targets.dense().tolist() == [[1, 0, 1, -1], [0, -1, -1, 1]]
    assert "1 labels of classes outside" in capsys.readouterr().err  # /m/99 is not a trainable class
    assert ds[0][1].tolist() == [1, 0, 1, -1]
    with pytest.warns(UserWarning):
        val = OpenImagesDataset(
            tmp_path / "data.csv", tmp_path / "images", classes=tmp_path / "descriptions.csv", split="val"
        )
    assert val.targets.dense().tolist() == [[-1, -1, 0, 0]]
    assert val.display_name("/m/03") == "Car"


def test_openimages_human_layout_and_class_files(tmp_path):
    _openimages(tmp_path)
    labels = tmp_path / "oidv6-train-annotations-human-imagelabels.csv"
    labels.write_text(
        "ImageID,Source,LabelName,Confidence\nx1,verification,/m/01,1\nx1,verification,/m/02,0\nx2,crowdsource,/m/04,1\n"
    )
    _png(tmp_path / "flat" / "x1.jpg")
    with pytest.warns(UserWarning):
        ds = OpenImagesDataset(labels, tmp_path / "flat", classes=["/m/01", "/m/02", "/m/04"])
    assert ds.images == ["x1.jpg", "x2.jpg"]
    assert ds.targets.dense().tolist() == [[1, 0, -1], [-1, -1, 1]]
    pth = tmp_path / "mid_to_classes.pth"
    torch.save({"/m/01": "'Cat'", "/m/02": "Dog"}, pth)
    mids, names = read_openimages_classes(pth)
    assert mids == ["/m/01", "/m/02"] and names["/m/01"] == "Cat"
    (tmp_path / "dupes.txt").write_text("/m/01\n/m/01\n")
    with pytest.raises(ValueError, match="more than once"):
        read_openimages_classes(tmp_path / "dupes.txt")
    labels.write_text("ImageID,Source,LabelName,Confidence\nx1,verification,/m/01,0.5\n")
    with pytest.raises(ValueError, match=r"imagelabels.csv:2: Confidence must be 1 or 0"), pytest.warns(UserWarning):
        OpenImagesDataset(labels, tmp_path, classes=["/m/01"])


def _lvis(tmp_path):
    data = {
        "images": [
            {
                "id": 1,
                "coco_url": "http://images.cocodataset.org/train2017/000000000001.jpg",
                "neg_category_ids": [2],
                "not_exhaustive_category_ids": [1, 3],
            },
            {
                "id": 2,
                "coco_url": "http://images.cocodataset.org/val2017/000000000002.jpg",
                "neg_category_ids": [],
                "not_exhaustive_category_ids": [],
            },
        ],
        "categories": [
            {"id": 1, "name": "apple", "frequency": "f"},
            {"id": 2, "name": "bear", "frequency": "c"},
            {"id": 3, "name": "kite", "frequency": "r"},
        ],
        "annotations": [{"id": 5, "image_id": 1, "category_id": 1}, {"id": 6, "image_id": 2, "category_id": 3}],
    }
    ann = tmp_path / "lvis_v1_train.json"
    ann.write_text(json.dumps(data))
    _png(tmp_path / "coco" / "train2017" / "000000000001.jpg")
    return ann, data


def test_lvis_federated(tmp_path):
    ann, data = _lvis(tmp_path)
    ds = LVISFederatedDataset(ann, tmp_path / "coco")
    assert ds.images == ["train2017/000000000001.jpg", "val2017/000000000002.jpg"]
    assert ds.classes == ["apple", "bear", "kite"] and ds.frequency == ["f", "c", "r"]
    # apple: instance -> 1 (not exhaustive but present); bear: verified absent -> 0; kite: flagged, no instance -> -1.
    assert ds.targets.tolist() == [[1, 0, -1], [-1, -1, 1]]
    unknown = LVISFederatedDataset(ann, tmp_path / "coco", not_exhaustive="unknown")
    assert unknown.targets.tolist() == [[-1, 0, -1], [-1, -1, 1]]
    assert ds[0][1].tolist() == [1, 0, -1]
    data["annotations"].append({"id": 9, "image_id": 1, "category_id": 2})
    ann.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="neg_category_ids mark as absent"):
        LVISFederatedDataset(ann, tmp_path)


def test_digit_mosaics():
    images, targets = make_digit_mosaics("train", 200, grid=3, max_digits=4, seed=0)
    assert images.shape == (200, 24, 24) and targets.shape == (200, 10)
    assert ((targets.sum(1) >= 1) & (targets.sum(1) <= 4)).all()
    freq = targets.mean(0)
    assert freq[0] > 3 * freq[9]  # long-tailed classes
    again, _ = make_digit_mosaics("train", 200, grid=3, max_digits=4, seed=0)
    assert (again == images).all()
    ds = DigitMosaicDataset("test", num_images=50)
    x, y = ds[0]
    assert x.shape == (1, 24, 24) and float(x.min()) >= 0.0 and float(x.max()) <= 1.0
    assert y.tolist() == ds.targets[0].tolist()
    with pytest.raises(ValueError, match="max_digits"):
        make_digit_mosaics("train", 5, grid=2, max_digits=5)


def test_core_csv_format_through_the_pipeline(tmp_path):
    paths = ["a.png", "b.png", "c.png"]
    for p in paths:
        _png(tmp_path / p)
    write_multilabel_csv(tmp_path / "train.csv", paths, [[1, 0], [0, -1], [1, 1]], ["cat", "dog"])
    cfg = CSLConfig(data_format="csv", simulate="rps", simulate_param=0.0, img_size=8, randaug=None)
    train, val, classes, summary = build_datasets(cfg, DataSpec(train=str(tmp_path / "train.csv")), verbose=False)
    assert classes == ["cat", "dog"] and val is None
    assert train[1][1].tolist() == [0, -1]
    assert train[0][0].shape == (3, 8, 8)
    assert summary.positives_kept == 3
    write_multilabel_csv(tmp_path / "val.csv", paths, [[1, 0], [0, -1], [-1, 1]], ["cat", "dog"])
    spec = DataSpec(train=str(tmp_path / "train.csv"), val=str(tmp_path / "val.csv"))
    _, val, _, _ = build_datasets(cfg, spec, verbose=False)
    assert isinstance(build_meter(cfg, val), PartialMAPMeter)  # -1 in the validation labels: partial mAP
    write_multilabel_csv(tmp_path / "full.csv", paths, [[1, 0], [0, 1], [1, 1]], ["cat", "dog"])
    _, full, _, _ = build_datasets(cfg, DataSpec(train=spec.train, val=str(tmp_path / "full.csv")), verbose=False)
    assert isinstance(build_meter(cfg, full), MeanAPMeter)  # fully labelled: standard mAP
