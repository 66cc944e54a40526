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
from miil.csl.data import LVISFederatedDataset
from miil.csl.miniature import LVIS_DIGIT_NAMES, make_lvis
from miil.csl.pipeline import CSLConfig, DataSpec, build_datasets, build_meter


def _png(path, value=128):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((12, 16, 3), value, dtype=np.uint8)).save(path)


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


def test_lvis_miniature_is_deterministic_by_seed(tmp_path):
    small = {"train_images": 3, "val_images": 2}  # OpenImages V6: miil-core's tests/test_miniature.py
    a, b = make_lvis(tmp_path / "a", seed=3, **small), make_lvis(tmp_path / "b", seed=3, **small)
    assert miniature_digest(a) == miniature_digest(b) != miniature_digest(make_lvis(tmp_path / "c", seed=4, **small))


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


def test_openimages_names_are_miil_core_s_and_a_release_without_data_csv_resolves(openimages_root, tmp_path):
    import miil.core.data
    import miil.core.miniature
    import miil.csl
    import miil.csl.miniature
    from miil.csl.sources import resolve_split

    for name in ("OpenImagesDataset", "SparseLabels", "MultiLabelImageDataset", "read_openimages_labels"):
        assert getattr(miil.csl, name) is getattr(miil.core.data, name)  # re-exported, not copied
    assert miil.csl.miniature.make_openimages is miil.core.miniature.make_openimages
    # the official files alone (no data.csv, no mid_to_classes.pth): the split's file and folder
    release = tmp_path / "release"
    release.mkdir()
    for name in ("train", "oidv6-train-annotations-human-imagelabels.csv", "oidv6-classes-trainable.txt"):
        (release / name).symlink_to(openimages_root / name)
    train = resolve_split("openimages", DataSpec(data_root=str(release)), "train")
    assert (train.labels, train.images, train.row_split) == (
        str(release / "oidv6-train-annotations-human-imagelabels.csv"),
        str(release / "train"),
        None,
    )
    assert train.classes == str(release / "oidv6-classes-trainable.txt")
