"""Album data: K-image sampling, the ML-CUFED / PETA layouts, the dataset, its collate, the digit albums."""

import json
from pathlib import Path

import pytest
import torch

from miil.album.data import (
    ML_CUFED_EVENTS,
    AlbumDataset,
    album_classes,
    collate_albums,
    eval_album_indices,
    load_event_labels,
    load_importance_scores,
    read_album_list,
    read_cufed,
    read_event_folders,
    train_album_indices,
)
from miil.album.digit_albums import DigitAlbums
from miil.album.formats import default_importance_file, read_albums, resolve_split
from miil.album.miniature import make_cufed, make_ml_cufed, make_pec
from miil.core.data import PartlyRead, Skipped, SkippingCollate
from miil.core.errors import UserError
from miil.core.miniature import miniature_digest

from .conftest import CUFED_CLASSES, PEC_CLASSES


def test_eval_sampling_is_sorted_uniform_and_deterministic():
    assert eval_album_indices(32, 32) == list(range(32))
    idx = eval_album_indices(100, 32)
    assert len(idx) == 32 and len(set(idx)) == 32 and idx == sorted(idx) and idx[0] == 0 and idx[-1] == 99
    assert eval_album_indices(100, 32) == idx
    gaps = [b - a for a, b in zip(idx, idx[1:])]
    assert min(gaps) >= 3 and max(gaps) <= 4  # uniform: 99 / 31 = 3.19
    assert eval_album_indices(5, 32) == [0, 1, 2, 3, 4]  # short albums are masked, not repeated
    dup = eval_album_indices(5, 32, pad="duplicate")
    assert len(dup) == 32 and set(dup) == set(range(5)) and dup == sorted(dup)
    with pytest.raises(ValueError, match="pad"):
        eval_album_indices(5, 4, pad="zeros")


def test_train_sampling_is_a_random_subset():
    g = torch.Generator().manual_seed(0)
    draws = [tuple(train_album_indices(50, 8, generator=g)) for _ in range(20)]
    assert all(len(set(d)) == 8 and list(d) == sorted(d) and max(d) < 50 for d in draws)
    assert len(set(draws)) > 15
    assert train_album_indices(3, 8, generator=g) == [0, 1, 2]
    dup = train_album_indices(3, 8, pad="duplicate", generator=g)
    assert len(dup) == 8 and set(dup) == {0, 1, 2}  # every photo kept, then repeats


def test_event_folder_layout(folder_albums, tmp_path):
    records = read_event_folders(folder_albums)
    assert len(records) == 9 and album_classes(records) == PEC_CLASSES
    assert all(r.labels == (r.folder.parent.name,) and list(r.images) == sorted(r.images) for r in records)
    assert all(5 <= len(r.images) <= 8 for r in records)
    train = read_event_folders(folder_albums, albums=read_album_list(folder_albums / "train_split.txt"))
    test = read_event_folders(folder_albums, albums=read_album_list(folder_albums / "test_split.txt"))
    assert len(train) == 6 and len(test) == 3 and not {r.album_id for r in train} & {r.album_id for r in test}
    split = tmp_path / "split.txt"
    first, second = records[0], records[4]
    split.write_text(f"{first.labels[0]}/{first.album_id}\n# comment\n\n{second.album_id}\n")
    kept = read_event_folders(folder_albums, albums=read_album_list(split))
    assert sorted(x.album_id for x in kept) == sorted([first.album_id, second.album_id])
    labels = {r.album_id: [r.labels[0], "party"] for r in records}
    multi = read_event_folders(folder_albums, labels=labels)
    assert all(len(x.labels) == 2 for x in multi) and "party" in album_classes(multi)
    split.write_text("missing_album\n")
    with pytest.raises(FileNotFoundError, match="missing_album"):
        read_event_folders(folder_albums, albums=read_album_list(split))
    with pytest.raises(KeyError, match="no entry in the labels file"):
        read_event_folders(folder_albums, labels={})


def test_cufed_layout_and_importance_file(cufed_root):
    train_ids = read_album_list(cufed_root / "train_split.txt")
    records = read_cufed(cufed_root, albums=train_ids)
    assert [r.album_id for r in records] == train_ids and len(records) == 8
    everything = read_cufed(cufed_root)
    labels = load_event_labels(cufed_root / "event_type.json")
    assert [r.album_id for r in everything] == sorted(labels) and album_classes(everything) == CUFED_CLASSES
    assert all(isinstance(v, tuple) for v in labels.values()) and any(len(v) == 2 for v in labels.values())
    scores = load_importance_scores(cufed_root / "image_importance.json")
    for r in everything:
        photos = {name.rsplit(".", 1)[0] for name in r.images}
        assert set(scores[r.album_id]) == photos  # "<album>/<photo>" entries, keyed by photo without extension
        relevant = sum(s >= 0.7 for s in scores[r.album_id].values())
        assert relevant == 2 * len(r.labels)  # two relevant photos per event, the rest are distractors
    assert len(ML_CUFED_EVENTS) == 23 and set(CUFED_CLASSES) <= set(ML_CUFED_EVENTS)


def test_layout_errors_name_the_file(cufed_root):
    bad = cufed_root / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="bad.json"):
        load_event_labels(bad)
    bad.write_text(json.dumps({"a": [[0, "a/x", "high"]]}))
    with pytest.raises(ValueError, match="not a number"):
        load_importance_scores(bad)
    bad.write_text(json.dumps({"../escape": ["Show"]}))
    with pytest.raises(ValueError, match="plain"):
        read_cufed(cufed_root, labels_file=bad)


def test_dataset_and_collate(folder_albums):
    records = read_event_folders(folder_albums)
    ds = AlbumDataset(records, album_classes(records), album_size=4, img_size=16)
    images, target, index, names = ds[1]
    assert images.shape == (4, 3, 16, 16) and images.min() >= 0 and images.max() <= 1
    assert list(names) == ds.sampled_images(1)
    assert target.tolist() == [float(c == records[1].labels[0]) for c in PEC_CLASSES] and index == 1
    picks = eval_album_indices(len(records[1].images), 4)
    assert ds.sampled_images(1) == [records[1].images[i] for i in picks]
    short = AlbumDataset(records, album_classes(records), album_size=6, img_size=16)
    five = next(i for i, r in enumerate(records) if len(r.images) == 5)
    full = next(i for i, r in enumerate(records) if len(r.images) >= 6)
    imgs, targets, mask, indices = collate_albums([short[five], short[full]])
    assert imgs.shape[:3] == (2, 6, 3) and targets.shape == (2, 3)
    assert mask.tolist() == [[True] * 5 + [False], [True] * 6] and torch.all(imgs[0, 5] == 0)
    assert indices.tolist() == [five, full]
    with pytest.raises(KeyError, match="not among the classes"):
        AlbumDataset(records, PEC_CLASSES[:1])


def test_unreadable_photos_are_reported_and_strict_raises(folder_albums):
    records = read_event_folders(folder_albums)
    broken = records[0].folder / records[0].images[0]
    broken.write_bytes(b"not an image")
    (records[1].folder / "0.jpg").mkdir()  # a folder named like a photo
    (records[1].folder / "1.jpg").symlink_to(records[1].folder / "gone.jpg")  # a dangling link
    records = read_event_folders(folder_albums)
    assert {"0.jpg", "1.jpg"} <= set(records[1].images)  # listed, so that reading reports them
    ds = AlbumDataset(records, album_classes(records), album_size=16, img_size=8)
    with pytest.warns(UserWarning, match="unreadable"):
        first = ds[0]
    assert isinstance(first, PartlyRead) and [s.file for s in first.skipped] == [str(broken)]
    assert first.skipped[0].reason.startswith("not a readable image file")
    images, _, _, names = first.sample
    assert images.shape[0] == len(records[0].images) - 1 == len(names) and broken.name not in names
    with pytest.warns(UserWarning, match="unreadable"):
        second = ds[1]
    reasons = {Path(s.file).name: s.reason for s in second.skipped}
    assert reasons == {"0.jpg": "a folder, not a file", "1.jpg": "missing (a dangling symbolic link)"}
    for name in records[2].images:
        (records[2].folder / name).write_bytes(b"")
    with pytest.warns(UserWarning, match="empty file"):
        third = ds[2]
    assert isinstance(third.sample, Skipped) and third.sample.file == str(records[2].folder)
    assert len(third.skipped) == len(records[2].images)
    batch, skipped = SkippingCollate(collate_albums)([ds[3], first, third])
    assert batch[0].shape[0] == 2 and len(skipped) == 1 + len(third.skipped) + 1  # the album with nothing left too
    strict = AlbumDataset(records, album_classes(records), album_size=8, img_size=8, strict=True)
    with pytest.raises(OSError, match=broken.name):
        strict[0]


def test_formats_read_the_miniatures_with_their_defaults(cufed_root, folder_albums):
    assert resolve_split(cufed_root, None, "train") == cufed_root / "train_split.txt"
    assert resolve_split(cufed_root, None, "val") == cufed_root / "test_split.txt"  # no val_split.txt: test
    assert resolve_split(cufed_root, "all", "val") is None and resolve_split(cufed_root, "test", "val").is_file()
    train = read_albums("ml-cufed", cufed_root, split=resolve_split(cufed_root, None, "train"))
    assert len(train) == 8 and any(len(r.labels) == 2 for r in train)
    pec = read_albums("pec", folder_albums, split=resolve_split(folder_albums, None, "val"), part="val")
    assert len(pec) == 3 and album_classes(pec) == PEC_CLASSES
    assert default_importance_file(cufed_root) == cufed_root / "image_importance.json"
    assert default_importance_file(folder_albums) is None


def test_single_label_cufed_miniature_reads_as_cufed(tmp_path):
    root = make_cufed(tmp_path / "cufed", train_albums_per_event=1, test_albums_per_event=1, album_size=(3, 4))
    train = read_albums("cufed", root, split=resolve_split(root, None, "train"))
    val = read_albums("cufed", root, split=resolve_split(root, None, "val"), part="val")
    assert len(train) == len(val) == 4 and all(len(r.labels) == 1 for r in train + val)


def test_format_mistakes_name_the_flag_to_use(cufed_root, folder_albums, tmp_path):
    with pytest.raises(UserError, match="--data-format pec or folder"):
        read_albums("ml-cufed", folder_albums, split=None)
    with pytest.raises(UserError, match="--data-format ml-cufed"):
        read_albums("pec", cufed_root, split=None)
    with pytest.raises(UserError, match="single-label CUFED.*--data-format ml-cufed"):
        read_albums("cufed", cufed_root, split=None)
    with pytest.raises(UserError, match="--val-labels"):
        read_albums("ml-cufed", cufed_root, split=None, labels=str(tmp_path / "none.json"), part="val")
    with pytest.raises(UserError, match="--train-split 'nope'"):
        resolve_split(cufed_root, "nope", "train")
    split = tmp_path / "split.txt"
    split.write_text("missing_album\n")
    with pytest.raises(UserError, match="missing_album"):
        read_albums("pec", folder_albums, split=split)


def test_digit_albums_follow_their_rule():
    albums = DigitAlbums("test", 50, seed=3)
    for i in range(len(albums)):
        photos, target, _ = albums[i]
        relevance = torch.from_numpy(albums.relevance[i])
        digits = torch.from_numpy(albums.digit_labels[albums.albums[i]])
        assert 8 <= len(photos) <= 12 and relevance.sum() == 2
        assert torch.all(digits[relevance == 1] <= 2) and torch.all(digits[relevance == 0] > 2)
        assert int(target.argmax()) == int(digits[relevance == 1].sum()) % 3
    assert len(set(albums.events.tolist())) == 3


@pytest.mark.parametrize(
    "make, small",
    [
        (make_ml_cufed, {"train_albums_per_event": 1, "test_albums_per_event": 1}),
        (make_cufed, {"train_albums_per_event": 1, "test_albums_per_event": 1}),
        (make_pec, {"train_albums_per_event": 1, "test_albums_per_event": 1}),
    ],
    ids=lambda v: getattr(v, "__name__", ""),
)
def test_miniatures_are_deterministic_by_seed(make, small, tmp_path):
    a, b = make(tmp_path / "a", seed=3, **small), make(tmp_path / "b", seed=3, **small)
    assert miniature_digest(a) == miniature_digest(b) != miniature_digest(make(tmp_path / "c", seed=4, **small))
