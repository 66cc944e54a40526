import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from miil.core.data import write_multilabel_csv
from miil.core.metrics import MeanAPMeter
from miil.core.miniature import miniature_digest
from miil.csl import PartialMAPMeter
from miil.csl.data import LVISFederatedDataset, OpenImagesDataset, read_openimages_classes
from miil.csl.miniature import LVIS_DIGIT_NAMES, OPENIMAGES_DIGIT_CLASSES, make_lvis, make_openimages
from miil.csl.pipeline import CSLConfig, DataSpec, build_datasets, build_meter


def _png(path, value=128):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((12, 16, 3), value, dtype=np.uint8)).save(path)


def _oi_targets(root, split):
    """Ground truth of the official human-verified label file: {image id: {MID: confidence}}."""
    name = "oidv6-train" if split == "train" else "validation"
    text = (root / f"{name}-annotations-human-imagelabels.csv").read_text()
    rows = list(csv.DictReader(text.splitlines()))
    out = {}
    for r in rows:
        out.setdefault(r["ImageID"], {})[r["LabelName"]] = int(r["Confidence"])
    return out


@pytest.mark.parametrize("layout", ["csl", "human"])
def test_openimages_miniature_in_both_layouts(openimages_root, layout, capsys):
    root = openimages_root
    truth = _oi_targets(root, "train")
    if layout == "csl":
        with pytest.warns(UserWarning, match="9605"):
            ds = OpenImagesDataset(root / "data.csv", root, classes=root / "mid_to_classes.pth", split="train")
        ids = [Path(p).stem for p in ds.images]
        assert all(p.startswith("train/") for p in ds.images)
    else:
        labels = root / "oidv6-train-annotations-human-imagelabels.csv"
        with pytest.warns(UserWarning, match="9605"):
            ds = OpenImagesDataset(labels, root / "train", classes=root / "oidv6-classes-trainable.txt")
        ids = [p.removesuffix(".jpg") for p in ds.images]
    assert ids == list(truth) and len(ds) == 48
    assert "labels of classes outside the 10-class list dropped" in capsys.readouterr().err  # the non-trainable MID
    dense = ds.targets.dense()
    for row, image_id in zip(dense, ids):
        want = [truth[image_id].get(mid, -1) for mid, _ in OPENIMAGES_DIGIT_CLASSES]
        assert row.tolist() == want
    assert (dense == -1).any() and (dense == 1).any() and (dense == 0).any()  # partial labels
    image, target = ds[0]
    assert image.mode == "RGB" and target.tolist() == dense[0].tolist()
    if layout == "csl":
        with pytest.warns(UserWarning):
            val = OpenImagesDataset(root / "data.csv", root, classes=root / "oidv6-class-descriptions.csv", split="val")
        assert len(val) == 24 and all(p.startswith("validation/") for p in val.images)
        assert val.display_name("/m/0dgt3x") == "Digit three" and val.classes[-1] == "/m/05s2s"


def test_openimages_class_files_and_errors(openimages_root, tmp_path):
    mids, names = read_openimages_classes(openimages_root / "mid_to_classes.pth")
    assert mids == [m for m, _ in OPENIMAGES_DIGIT_CLASSES] and names[mids[0]] == "Digit zero"
    trainable, _ = read_openimages_classes(openimages_root / "oidv6-classes-trainable.txt")
    assert trainable == mids
    (tmp_path / "dupes.txt").write_text("/m/01\n/m/01\n")
    with pytest.raises(ValueError, match="more than once"):
        read_openimages_classes(tmp_path / "dupes.txt")
    labels = tmp_path / "oidv6-train-annotations-human-imagelabels.csv"
    labels.write_text("ImageID,Source,LabelName,Confidence\nx1,verification,/m/01,0.5\n")
    with pytest.raises(ValueError, match=r"imagelabels.csv:2: Confidence must be 1 or 0"), pytest.warns(UserWarning):
        OpenImagesDataset(labels, tmp_path, classes=["/m/01"])


def test_lvis_miniature_federated_labels(lvis_root):
    for split in ("train", "val"):
        ann = lvis_root / "annotations" / f"lvis_v1_{split}.json"
        data = json.loads(ann.read_text())
        ds = LVISFederatedDataset(ann, lvis_root)
        assert ds.classes == list(LVIS_DIGIT_NAMES) and set(ds.frequency) == {"r", "c", "f"}
        by_id = {img["id"]: img for img in data["images"]}
        for row, image_id in enumerate(ds.image_ids):
            img = by_id[image_id]
            assert "file_name" not in img and ds.images[row] == "/".join(img["coco_url"].split("/")[-2:])
            present = {a["category_id"] for a in data["annotations"] if a["image_id"] == image_id}
            for k, value in enumerate(ds.targets[row].tolist()):
                want = 1 if k + 1 in present else (0 if k + 1 in img["neg_category_ids"] else -1)
                assert value == want
        unknown = LVISFederatedDataset(ann, lvis_root, not_exhaustive="unknown")
        flagged = sum(len(img["not_exhaustive_category_ids"]) for img in data["images"])
        assert int((unknown.targets == 1).sum()) == int((ds.targets == 1).sum()) - flagged
    assert any(p.startswith("train2017/") for p in ds.images)  # LVIS v1 val images come from COCO train2017 too
    image, target = ds[0]
    assert image.mode == "RGB" and target.dtype == torch.float32


def test_lvis_conflicting_labels_are_refused(lvis_root, tmp_path):
    data = json.loads((lvis_root / "annotations" / "lvis_v1_train.json").read_text())
    first = data["annotations"][0]
    image = next(img for img in data["images"] if img["id"] == first["image_id"])
    image["neg_category_ids"].append(first["category_id"])
    (tmp_path / "lvis.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match="neg_category_ids mark as absent"):
        LVISFederatedDataset(tmp_path / "lvis.json", lvis_root)


def test_coco_through_the_pipeline_finds_the_official_image_folder(coco_root):
    cfg = CSLConfig(data_format="coco", simulate="fpc", simulate_param=2, img_size=16, randaug=None)
    train, val, classes, summary = build_datasets(cfg, DataSpec(data_root=str(coco_root)), verbose=False)
    assert Path(train.root) == coco_root / "train2014" and Path(val.root) == coco_root / "val2014"
    assert len(classes) == 10 and summary.positives_kept <= 2 * 10 and (train.targets == -1).any()
    assert not (val.targets == -1).any()  # the simulation touches the training labels only
    assert train[0][0].shape == (3, 16, 16)


def test_core_csv_format_through_the_pipeline(tmp_path):
    paths = ["a.png", "b.png", "c.png"]
    for p in paths:
        _png(tmp_path / p)
    write_multilabel_csv(tmp_path / "train.csv", paths, [[1, 0], [0, -1], [1, 1]], ["cat", "dog"])
    cfg = CSLConfig(data_format="csv", simulate="rps", simulate_param=0.0, img_size=8, randaug=None)
    train, val, classes, summary = build_datasets(cfg, DataSpec(data_root=str(tmp_path)), verbose=False)
    assert classes == ["cat", "dog"] and val is None  # no val.csv: training without validation
    assert train[1][1].tolist() == [0, -1]
    assert train[0][0].shape == (3, 8, 8)
    assert summary.positives_kept == 3
    write_multilabel_csv(tmp_path / "val.csv", paths, [[1, 0], [0, -1], [-1, 1]], ["cat", "dog"])
    _, val, _, _ = build_datasets(cfg, DataSpec(data_root=str(tmp_path)), verbose=False)  # the csv format's default
    assert isinstance(build_meter(cfg, val), PartialMAPMeter)  # -1 in the validation labels: partial mAP
    write_multilabel_csv(tmp_path / "full.csv", paths, [[1, 0], [0, 1], [1, 1]], ["cat", "dog"])
    spec = DataSpec(data_root=str(tmp_path), val_labels=str(tmp_path / "full.csv"))
    _, full, _, _ = build_datasets(cfg, spec, verbose=False)
    assert isinstance(build_meter(cfg, full), MeanAPMeter)  # fully labelled: standard mAP


@pytest.mark.parametrize(
    "make, small",
    [(make_openimages, {"train_images": 3, "val_images": 2}), (make_lvis, {"train_images": 3, "val_images": 2})],
    ids=lambda v: getattr(v, "__name__", ""),
)
def test_miniatures_are_deterministic_by_seed(make, small, tmp_path):
    a, b = make(tmp_path / "a", seed=3, **small), make(tmp_path / "b", seed=3, **small)
    assert miniature_digest(a) == miniature_digest(b) != miniature_digest(make(tmp_path / "c", seed=4, **small))


def test_data_root_defaults_read_the_released_layouts(coco_root, openimages_root, lvis_root, tmp_path):
    from miil.core.errors import UserError
    from miil.csl.sources import resolve_split

    train = resolve_split("coco", DataSpec(data_root=str(coco_root)), "train")
    assert (train.images, train.labels) == (
        str(coco_root / "train2014"),
        str(coco_root / "annotations" / "instances_train2014.json"),
    )
    val = resolve_split("openimages", DataSpec(data_root=str(openimages_root)), "val")
    assert val.labels == str(openimages_root / "data.csv") and val.row_split == "val"
    assert val.classes == str(openimages_root / "mid_to_classes.pth") and val.images == str(openimages_root)
    human = DataSpec(
        data_root=str(openimages_root), val_labels=str(openimages_root / "validation-annotations-human-imagelabels.csv")
    )
    val = resolve_split("openimages", human, "val")  # the official file: images in validation/, all of its rows
    assert val.images == str(openimages_root / "validation") and val.row_split is None
    val = resolve_split("lvis", DataSpec(data_root=str(lvis_root)), "val")
    assert val.labels == str(lvis_root / "annotations" / "lvis_v1_val.json") and val.images == str(lvis_root)
    assert resolve_split("lvis", DataSpec(data_root=str(tmp_path)), "val", optional=True) is None
    with pytest.raises(UserError, match="--train-labels"):
        resolve_split("lvis", DataSpec(data_root=str(tmp_path)), "train")
    with pytest.raises(UserError, match="--val-split"):  # a split the user named must exist
        resolve_split("coco", DataSpec(data_root=str(coco_root), val_split="val2017"), "val", optional=True)
    with pytest.raises(UserError, match="needs --data-root"):
        resolve_split("coco", DataSpec(), "train")
