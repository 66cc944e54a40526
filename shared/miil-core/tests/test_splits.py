"""miil.core.splits: from the data flags of one split to its files, with the release's defaults."""

import pytest

from miil.core.errors import UserError


def test_resolve_split_defaults_flags_and_optional_validation(tmp_path):
    from miil.core.splits import coco_split_files, csv_split_files, resolve_split

    (tmp_path / "train2014").mkdir()
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "instances_train2014.json").write_text("{}")
    (tmp_path / "train.csv").write_text("image,a\n")
    resolvers = {"coco": coco_split_files, "csv": csv_split_files, "embedded": lambda req: req.split}
    defaults = {"coco": ("train2014", "val2014"), "csv": ("train", "val"), "embedded": ("a", "b")}

    def resolve(fmt, root, split=None, labels=None, which="train", optional=False):
        return resolve_split(
            fmt, root, split, labels, which=which, defaults=defaults, resolvers=resolvers, optional=optional,
            without_root=("csv", "embedded"),
        )  # fmt: skip

    assert resolve("coco", tmp_path) == (tmp_path / "train2014", tmp_path / "annotations" / "instances_train2014.json")
    assert resolve("coco", tmp_path, which="val", optional=True) is None  # no val2014: no validation
    with pytest.raises(UserError, match="--val-split"):
        resolve("coco", tmp_path, which="val")
    with pytest.raises(UserError, match="--val-split"):  # a split the user named must exist, optional or not
        resolve("coco", tmp_path, split="val2017", which="val", optional=True)
    with pytest.raises(UserError, match="--train-labels"):
        resolve("coco", tmp_path, labels=tmp_path / "other.json")
    with pytest.raises(UserError, match="needs --data-root"):
        resolve("coco", None)
    with pytest.raises(UserError, match="is not one of coco, csv, embedded"):
        resolve("voc", tmp_path)
    assert resolve("csv", tmp_path) == (tmp_path / "train.csv", tmp_path)
    assert resolve("csv", None, labels=tmp_path / "train.csv") == (tmp_path / "train.csv", tmp_path)
    assert resolve("embedded", None, which="val") == "b"


def test_split_request_rejects_a_third_split(tmp_path):
    from miil.core.splits import resolve_split

    with pytest.raises(ValueError, match="'train' or 'val'"):
        resolve_split("csv", tmp_path, None, None, which="test", defaults={"csv": ("a", "b")}, resolvers={})


def test_require_file_names_the_flag(tmp_path):
    from miil.core.splits import require_file

    (tmp_path / "f.json").write_text("{}")
    assert require_file(tmp_path / "f.json", "labels", "pass it with --train-labels") == tmp_path / "f.json"
    with pytest.raises(UserError, match=r"labels .*g.json does not exist; pass it with --train-labels"):
        require_file(tmp_path / "g.json", "labels", "pass it with --train-labels")
    with pytest.raises(UserError, match="does not exist"):  # a folder is not a file
        require_file(tmp_path, "labels", "pass it with --train-labels")
