"""Dataset formats: Kinetics (folders and the official CSV), UCF-101 split files, generic folder and CSV."""

from __future__ import annotations

import shutil
import warnings

import pytest

from miil.core.data import Skipped
from miil.core.miniature import miniature_digest
from miil.stam import ClipSampling, KineticsDataset, UCF101Dataset, VideoCSVDataset, VideoFolderDataset, VideoTransform
from miil.stam.data import read_kinetics_csv
from miil.stam.miniature import KINETICS_MOTION_LABELS, make_kinetics400

KW = dict(sampling=ClipSampling(num_frames=4, mode="segment"), transform=VideoTransform(size=32, crop="squish"))


def _clips(motion_root, n):
    return sorted(motion_root.rglob("*.mp4"))[:n]


def test_folder_dataset(motion_root, motion_classes):
    ds = VideoFolderDataset(motion_root, **KW)
    assert ds.classes == sorted(motion_classes) and len(ds) == 12
    clip, label = ds[0]
    assert clip.shape == (4, 3, 32, 32) and ds.classes[label] == ds.samples[0][0].parent.name
    fixed = VideoFolderDataset(motion_root, classes=motion_classes, **KW)
    assert fixed.classes == motion_classes and fixed.targets[:3] == [0, 0, 0]
    with pytest.raises(FileNotFoundError, match="nowhere"):
        VideoFolderDataset(motion_root / "nowhere")


@pytest.mark.parametrize("class_folders", [False, True])
def test_kinetics_csv_on_the_miniature(tmp_path, class_folders):
    root = make_kinetics400(tmp_path / "k400", class_folders=class_folders, missing_videos=1, val_per_class=1)
    rows = read_kinetics_csv(root / "annotations" / "validate.csv")
    assert [r["split"] for r in rows] == ["val"] * 4 and rows[0]["youtube_id"].startswith("-")
    with pytest.warns(UserWarning, match="1 of 4 videos"):
        ds = KineticsDataset(root / "val", csv_file=root / "annotations" / "validate.csv", **KW)
    assert ds.classes == sorted(KINETICS_MOTION_LABELS)
    assert [ds.classes[t] for t in ds.targets] == [r["label"] for r in rows]
    assert ds.samples[0][0].suffix == ".mkv"  # found whatever the extension (the original only took avi/mp4)
    assert len(ds.missing) == 1 and rows[-1]["youtube_id"] in ds.missing[0].name
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gone = ds[3]  # reported as unreadable, not silently dropped
    assert isinstance(gone, Skipped) and gone.reason == "missing" and gone.file == str(ds.missing[0])
    assert ds[0][0].shape == (4, 3, 32, 32)
    with pytest.warns(UserWarning, match="1 of 16 videos"):
        train = KineticsDataset(root / "train", csv_file=root / "annotations" / "train.csv", classes=ds.classes, **KW)
    assert len(train) == 16 and len(train.missing) == 1 and sorted(set(train.targets)) == [0, 1, 2, 3]


def test_kinetics_folders_and_bad_csv(tmp_path, motion_root):
    ds = KineticsDataset(motion_root, **KW)
    assert len(ds) == 12 and len(ds.classes) == 4
    bad = tmp_path / "bad.csv"
    bad.write_text("youtube_id,time_start,time_end\nabc,1,11\n")
    with pytest.raises(ValueError, match="label"):
        KineticsDataset(motion_root, csv_file=bad, **KW)
    unknown = tmp_path / "unknown.csv"
    unknown.write_text("label,youtube_id,time_start,time_end\nknitting,abc,1,11\n")
    with pytest.raises(ValueError, match="knitting"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        KineticsDataset(motion_root, csv_file=unknown, classes=["abseiling"], **KW)


def test_ucf101_splits(tmp_path, motion_root):
    root, splits = tmp_path / "UCF-101", tmp_path / "ucfTrainTestlist"
    (root / "ApplyEyeMakeup").mkdir(parents=True)
    (root / "HandstandPushups").mkdir(parents=True)
    splits.mkdir()
    src = _clips(motion_root, 3)
    shutil.copy(src[0], root / "ApplyEyeMakeup" / "v_ApplyEyeMakeup_g08_c01.avi")
    shutil.copy(src[1], root / "HandstandPushups" / "v_HandStandPushups_g01_c01.avi")
    shutil.copy(src[2], root / "ApplyEyeMakeup" / "v_ApplyEyeMakeup_g01_c01.avi")
    (splits / "classInd.txt").write_text("1 ApplyEyeMakeup\n2 HandstandPushups\n")
    (splits / "trainlist01.txt").write_text(
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1\nHandstandPushups/v_HandStandPushups_g01_c01.avi 2\n"
    )
    (splits / "testlist01.txt").write_text("ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi\n")
    train = UCF101Dataset(root, splits, fold=1, subset="train", **KW)
    test = UCF101Dataset(root, splits, fold=1, subset="test", **KW)
    assert train.classes == ["ApplyEyeMakeup", "HandstandPushups"] and train.targets == [0, 1]
    assert test.targets == [0] and test[0][0].shape == (4, 3, 32, 32)
    with pytest.raises(FileNotFoundError, match="testlist02"):
        UCF101Dataset(root, splits, fold=2, subset="test", **KW)
    with pytest.raises(ValueError, match="fold"):
        UCF101Dataset(root, splits, fold=4, **KW)


def test_csv_dataset(tmp_path, motion_root):
    src = _clips(motion_root, 2)
    table = tmp_path / "videos.csv"
    rel = [p.relative_to(motion_root).as_posix() for p in src]
    table.write_text(f"path,label\n{rel[0]},walking\n{rel[1]},running\n")
    ds = VideoCSVDataset(table, motion_root, **KW)
    assert ds.classes == ["running", "walking"] and ds.targets == [1, 0]
    outside = tmp_path / "outside.csv"
    outside.write_text("path,label\n../../etc/passwd,x\n")
    with pytest.raises(ValueError, match="climbs out of the data root"):
        VideoCSVDataset(outside, motion_root, **KW)
    no_header = tmp_path / "no_header.csv"
    no_header.write_text("a.mp4,x\n")
    with pytest.raises(ValueError, match="header"):
        VideoCSVDataset(no_header, motion_root, **KW)


def test_motion_clips_need_temporal_order():
    import numpy as np

    from miil.core.data import load_digits_split
    from miil.stam.data import motion_frames

    digit = load_digits_split("train")[0][0]
    for forward, backward in (("right", "left"), ("down", "up")):
        a = motion_frames(digit, forward, np.random.default_rng(3))
        b = motion_frames(digit, backward, np.random.default_rng(3))
        assert a.shape == (16, 32, 32, 3) and not np.array_equal(a, b)
        np.testing.assert_array_equal(a, b[::-1])  # the same frames, only their order differs
    with pytest.raises(ValueError, match="direction"):
        motion_frames(digit, "sideways", np.random.default_rng(0))


@pytest.mark.parametrize(
    "make, small",
    [(make_kinetics400, {"train_per_class": 1, "val_per_class": 1})],
    ids=lambda v: getattr(v, "__name__", ""),
)
def test_miniatures_are_deterministic_by_seed(make, small, tmp_path):
    a, b = make(tmp_path / "a", seed=3, **small), make(tmp_path / "b", seed=3, **small)
    assert miniature_digest(a) == miniature_digest(b) != miniature_digest(make(tmp_path / "c", seed=4, **small))
