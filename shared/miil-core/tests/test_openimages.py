"""OpenImages V6 (miil.core.data.openimages, miil.core.splits): the official human-verified label CSVs and CSL's
``data.csv`` read on the miniature release into 1 / 0 / -1 labels, class files, bad files and the split resolver."""

import csv
from pathlib import Path

import pytest

from miil.core.data import OpenImagesDataset, PathEscapeError, read_openimages_classes
from miil.core.errors import UserError
from miil.core.miniature import OPENIMAGES_DIGIT_CLASSES
from miil.core.splits import SplitRequest, openimages_split_files

NOT_TRAINABLE = "/m/05s2s"  # the miniature's verified labels of a class outside the trainable list


def _truth(root, split):
    """The official file as written: {image id: {MID: confidence}}, in file order."""
    name = "oidv6-train" if split == "train" else "validation"
    out = {}
    with open(root / f"{name}-annotations-human-imagelabels.csv", newline="") as f:
        for r in csv.DictReader(f):
            out.setdefault(r["ImageID"], {})[r["LabelName"]] = int(r["Confidence"])
    return out


@pytest.mark.parametrize("layout", ["csl", "human"])
def test_miniature_labels_in_both_layouts(openimages_root, layout, capsys):
    root = openimages_root
    truth = _truth(root, "train")
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
    # verified positives are 1, verified negatives 0, everything else -1 (not annotated)
    dense = ds.targets.dense()
    for row, image_id in zip(dense, ids):
        assert row.tolist() == [truth[image_id].get(mid, -1) for mid, _ in OPENIMAGES_DIGIT_CLASSES]
    assert (dense == -1).any() and (dense == 1).any() and (dense == 0).any()
    # the non-trainable class is verified in some images but is no target: dropped and counted
    dropped = sum(NOT_TRAINABLE in labels for labels in truth.values())
    assert dropped > 0 and NOT_TRAINABLE not in ds.classes and dense.shape == (48, 10)
    assert f"{dropped} labels of classes outside the 10-class list dropped" in capsys.readouterr().err
    # every path stays under the root and is a real image
    base = (root if layout == "csl" else root / "train").resolve()
    for i in range(len(ds)):
        assert Path(ds.path(i)).resolve().is_relative_to(base) and Path(ds.path(i)).is_file()
    image, target = ds[0]
    assert image.mode == "RGB" and target.tolist() == dense[0].tolist()
    if layout == "csl":
        with pytest.warns(UserWarning):
            val = OpenImagesDataset(root / "data.csv", root, classes=root / "oidv6-class-descriptions.csv", split="val")
        assert len(val) == 24 and all(p.startswith("validation/") for p in val.images)
        assert val.display_name("/m/0dgt3x") == "Digit three" and val.classes[-1] == NOT_TRAINABLE


def test_class_files_and_bad_label_files(openimages_root, tmp_path):
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
    # a data.csv row whose path climbs out of the root is refused when read
    (tmp_path / "root").mkdir()
    escape = tmp_path / "data.csv"
    escape.write_text("path,pos_labels,neg_labels\n../outside.jpg,['/m/01'],[]\n")
    with pytest.warns(UserWarning):
        ds = OpenImagesDataset(escape, tmp_path / "root", classes=["/m/01"])
    with pytest.raises(PathEscapeError):
        ds[0]


def _request(root, split="train", labels=None, which="train"):
    return SplitRequest("openimages", root, split, labels, which, labels is not None)


def test_split_resolver_reads_the_release_layout(openimages_root, tmp_path):
    root = openimages_root
    train = openimages_split_files(_request(root))  # the release's file wins by default
    assert train.labels == root / "oidv6-train-annotations-human-imagelabels.csv" and train.images == root / "train"
    assert train.classes == root / "mid_to_classes.pth" and train.row_split is None
    val = openimages_split_files(_request(root, "val", which="val"))
    assert val.labels == root / "validation-annotations-human-imagelabels.csv" and val.images == root / "validation"
    listing = openimages_split_files(_request(root, "val", which="val"), prefer="csl")
    assert (listing.labels, listing.images, listing.row_split) == (root / "data.csv", root, "val")
    named = openimages_split_files(_request(root, labels=root / "data.csv"), root / "oidv6-classes-trainable.txt")
    assert named.row_split == "train" and named.classes == root / "oidv6-classes-trainable.txt"

    # a bare release folder: labels, images and the class list each missing, each named with the layout
    bare = tmp_path / "bare"
    bare.mkdir()
    with pytest.raises(UserError, match=r"mid_to_classes.pth, oidv6-classes-trainable.txt in .*release layout"):
        openimages_split_files(_request(bare))
    (bare / "oidv6-classes-trainable.txt").write_text("/m/01\n")
    with pytest.raises(UserError) as err:
        openimages_split_files(_request(bare, "val", which="val"))
    msg = str(err.value)
    assert "validation-annotations-human-imagelabels.csv" in msg and "data.csv" in msg
    assert "release layout" in msg and "--val-labels" in msg
    (bare / "oidv6-train-annotations-human-imagelabels.csv").write_text("ImageID,Source,LabelName,Confidence\n")
    with pytest.raises(UserError, match=r"image folder .*train does not exist .*release layout.*--train-split"):
        openimages_split_files(_request(bare))
    with pytest.raises(UserError, match=r"labels file .*nope.csv does not exist"):
        openimages_split_files(_request(bare, labels=bare / "nope.csv"))
