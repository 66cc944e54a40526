"""Tests for miil.core.data: unreadable-file policy, datasets, CSV formats, transforms and the embedded digits."""

from __future__ import annotations

import io
import os
import pickle
import random
import re
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from miil.core.data import (
    CutoutPIL,
    DigitsDataset,
    ImageFolderDataset,
    MultiLabelCSVDataset,
    PartlyRead,
    Skipped,
    SkippingCollate,
    SquishResize,
    UnreadableFileError,
    UnreadableFileWarning,
    UnreadablePolicy,
    digits_pil_images,
    load_digits_split,
    multilabel_eval_transform,
    multilabel_train_transform,
    rand_augment,
    resolve_under_root,
    skip_unreadable_collate,
    write_multilabel_csv,
)

# ----------------------------------------------------------------------------------------------- helpers


def _digit_image(i: int, size: int = 32) -> Image.Image:
    """A real handwritten digit (sklearn), upscaled to an RGB image."""
    images, _ = load_digits_split("train")
    return Image.fromarray(images[i]).resize((size, size), Image.Resampling.BILINEAR).convert("RGB")


def _save(img: Image.Image, path, fmt: str | None = None) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, format=fmt)
    return str(path)


def _truncated_jpeg(path, i: int = 0) -> str:
    buf = io.BytesIO()
    _digit_image(i, 64).save(buf, format="JPEG", quality=95)
    data = buf.getvalue()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data[: len(data) // 2])
    return str(path)


def _random_bytes_png(path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 700, dtype=np.uint8).tobytes())
    return str(path)


def _write(path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


@pytest.fixture
def folder_tree(tmp_path):
    root = tmp_path / "folder"
    good = [
        _save(_digit_image(0), root / "cat" / "a.png"),
        _save(_digit_image(1), root / "cat" / "nested" / "b.JPG", fmt="JPEG"),
        _save(_digit_image(2), root / "dog" / "c.bmp"),
    ]
    bad = [_truncated_jpeg(root / "cat" / "truncated.jpg"), _random_bytes_png(root / "dog" / "junk.png")]
    (root / "dog" / "notes.txt").write_text("not an image")
    (root / "dog" / ".hidden.png").write_bytes(b"")
    return root, good, bad


# ----------------------------------------------------------------------------------------------- unreadable


def test_policy_skips_and_counts(tmp_path):
    policy = UnreadablePolicy()
    bad = _truncated_jpeg(tmp_path / "t.jpg")
    with pytest.warns(UnreadableFileWarning, match="t.jpg"):
        assert policy.load_image(bad) is None
    with pytest.warns(UnreadableFileWarning, match="missing.png"):
        assert policy.load_image(tmp_path / "missing.png") is None
    assert policy.count == 2 and policy.skipped == [bad, str(tmp_path / "missing.png")]
    good = policy.load_image(_save(_digit_image(3).convert("L"), tmp_path / "g.png"))
    assert good.mode == "RGB" and good.size == (32, 32)
    clone = pickle.loads(pickle.dumps(policy))
    assert clone.count == 2 and clone.skipped == policy.skipped and not clone.strict
    policy.reset()
    assert policy.count == 0 and policy.skipped == []


def test_policy_strict_error_names_path(tmp_path):
    bad = _random_bytes_png(tmp_path / "junk.png")
    with pytest.raises(UnreadableFileError, match="junk.png") as info:
        UnreadablePolicy(strict=True).load_image(bad)
    assert isinstance(info.value, OSError) and info.value.path == bad
    assert bad in str(pickle.loads(pickle.dumps(info.value)))
    assert str(info.value).startswith("cannot read image file")


class UnreadableClipError(UnreadableFileError):
    kind = "video"


def test_unreadable_error_subclass_names_its_media_kind():
    err = UnreadableClipError("clip.mp4", ValueError("moov atom not found"))
    assert str(err).startswith("cannot read video file clip.mp4: ValueError: moov atom not found")
    copy = pickle.loads(pickle.dumps(err))
    assert type(copy) is UnreadableClipError and copy.path == "clip.mp4" and str(copy) == str(err)


def test_image_folder_skips_corrupt_files(folder_tree):
    root, good, bad = folder_tree
    ds = ImageFolderDataset(root, transform=multilabel_eval_transform(16))
    assert ds.classes == ["cat", "dog"]
    assert sorted(p for p, _ in ds.samples) == sorted(good + bad)  # txt and hidden files ignored
    assert ds.targets == [ds.class_to_idx[os.path.relpath(p, root).split(os.sep)[0]] for p, _ in ds.samples]
    results = {}
    for i, (path, _) in enumerate(ds.samples):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            results[path] = ds[i]
        if path in bad:
            assert isinstance(results[path], Skipped) and results[path].file == path
            assert results[path].reason.startswith(("truncated", "not a readable image file"))
            assert [w.category for w in caught] == [UnreadableFileWarning] and path in str(caught[0].message)
        else:
            img, label = results[path]
            assert img.shape == (3, 16, 16) and label == ds.targets[i] and not caught
    assert ds.policy.count == 2 and sorted(ds.policy.skipped) == sorted(bad)
    batch = skip_unreadable_collate([results[p] for p in good + bad])
    assert batch[0].shape == (3, 3, 16, 16) and batch[1].tolist() == [0, 0, 1]
    assert skip_unreadable_collate([None, results[bad[0]]]) is None
    collated, skipped = SkippingCollate()([results[p] for p in good + bad])
    assert collated[0].shape == (3, 3, 16, 16) and sorted(s.file for s in skipped) == sorted(bad)
    assert pickle.loads(pickle.dumps(ds)).samples == ds.samples


def test_partly_read_samples_count_and_report_their_skipped_files():
    """An album that lost a photo is still a sample; the photo is reported; an album with nothing left is skipped."""
    good = (torch.zeros(2), 0)
    partly = PartlyRead((torch.ones(2), 1), (Skipped("a/p1.jpg", "empty file"),))
    lost = PartlyRead(Skipped("b", "none of its 2 photos could be read"), (Skipped("b/x.jpg", "truncated"),) * 2)
    batch, skipped = SkippingCollate()([good, partly, lost])
    assert batch[0].tolist() == [[0.0, 0.0], [1.0, 1.0]] and batch[1].tolist() == [0, 1]
    assert [s.file for s in skipped] == ["a/p1.jpg", "b/x.jpg", "b/x.jpg", "b"]
    assert skip_unreadable_collate([partly, lost])[1].tolist() == [1]
    assert SkippingCollate()([lost]) == (None, list(lost.skipped) + [lost.sample])
    assert pickle.loads(pickle.dumps(partly)).skipped == partly.skipped  # crosses DataLoader workers


def test_image_folder_strict_and_empty(folder_tree, tmp_path):
    root, _, bad = folder_tree
    ds = ImageFolderDataset(root, strict=True)
    index = [p for p, _ in ds.samples].index(bad[0])
    with pytest.raises(UnreadableFileError, match="truncated.jpg"):
        ds[index]
    only_dog = ImageFolderDataset(root, classes=["dog"])
    assert only_dog.classes == ["dog"] and set(only_dog.targets) == {0}
    with pytest.raises(FileNotFoundError, match="bird"):
        ImageFolderDataset(root, classes=["bird"])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="empty"):
        ImageFolderDataset(empty)
    (empty / "cls").mkdir()
    (empty / "cls" / "readme.txt").write_text("x")
    with pytest.raises(FileNotFoundError, match="no images"):
        ImageFolderDataset(empty)
    with pytest.raises(FileNotFoundError, match="nowhere"):
        ImageFolderDataset(tmp_path / "nowhere")


# ----------------------------------------------------------------------------------------------- CSV datasets


def test_csv_dense_parsing(tmp_path):
    for i in range(3):
        _save(_digit_image(i), tmp_path / "img" / f"{i}.png")
    csv_path = _write(
        tmp_path / "labels.csv",
        "image,cat,dog,bird\nimg/0.png,1,0,-1\n\nimg/1.png, 0 ,,1\nimg/2.png,1.0,-1,\n",
    )
    ds = MultiLabelCSVDataset(csv_path)
    assert ds.format == "dense" and ds.classes == ["cat", "dog", "bird"]
    assert ds.targets.dtype == torch.float32
    assert ds.targets.tolist() == [[1, 0, -1], [0, -1, 1], [1, -1, -1]]
    assert ds.paths == [str((tmp_path / "img" / f"{i}.png").resolve()) for i in range(3)]
    img, target = ds[1]
    assert img.mode == "RGB" and target.tolist() == [0, -1, 1]
    # a given class list fixes the order; classes absent from the file are "not annotated"
    ds2 = MultiLabelCSVDataset(csv_path, classes=["bird", "fish", "cat", "dog"])
    assert ds2.targets[0].tolist() == [-1, -1, 1, 0]
    with pytest.raises(ValueError, match="not in the given classes"):
        MultiLabelCSVDataset(csv_path, classes=["cat"])


def test_csv_dense_bad_value_names_file_and_line(tmp_path):
    csv_path = _write(tmp_path / "bad.csv", "image,cat,dog\na.png,1,0\nb.png,2,0\n")
    with pytest.raises(ValueError, match=r"bad\.csv:3: class 'cat' has value '2'"):
        MultiLabelCSVDataset(csv_path)
    _write(tmp_path / "short.csv", "image,cat,dog\na.png,1\n")
    with pytest.raises(ValueError, match=r"short\.csv:2: row has 2 cells"):
        MultiLabelCSVDataset(tmp_path / "short.csv")
    _write(tmp_path / "nohead.csv", "path,cat\na.png,1\n")
    with pytest.raises(ValueError, match=r"nohead\.csv:1: the first header column must be 'image'"):
        MultiLabelCSVDataset(tmp_path / "nohead.csv")


def test_csv_sparse_parsing(tmp_path):
    pn = _write(tmp_path / "pn.csv", "image,positive,negative\na.png,dog;cat,bird\nb.png,,cat\nc.png,fish;,\n")
    ds = MultiLabelCSVDataset(pn)
    assert ds.format == "sparse" and ds.classes == ["bird", "cat", "dog", "fish"]
    assert ds.targets.tolist() == [[0, 1, 1, -1], [-1, 0, -1, -1], [-1, -1, -1, 1]]
    labels = _write(tmp_path / "labels.csv", "image,labels\na.png,dog;cat\nb.png,\n")
    ds = MultiLabelCSVDataset(labels, classes=["cat", "dog", "emu"])
    assert ds.classes == ["cat", "dog", "emu"] and ds.targets.tolist() == [[1, 1, 0], [0, 0, 0]]
    with pytest.raises(ValueError, match=r"labels\.csv:2: unknown class name 'dog'"):
        MultiLabelCSVDataset(labels, classes=["cat"])
    both = _write(tmp_path / "both.csv", "image,negative,positive\na.png,cat,cat\n")
    with pytest.raises(ValueError, match=r"both\.csv:2: .*'cat'.* both positive and negative"):
        MultiLabelCSVDataset(both)


def test_csv_paths_may_not_escape_root(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    _save(_digit_image(0), tmp_path / "outside.png")
    for bad, line in (("../outside.png", 3), (str(tmp_path / "outside.png"), 3), ("sub/../../outside.png", 3)):
        csv_path = _write(data / "l.csv", f"image,cat\nok.png,1\n{bad},0\n")
        with pytest.raises(ValueError, match=rf"l\.csv:{line}: .*{re.escape(bad)}"):
            MultiLabelCSVDataset(csv_path)
    assert resolve_under_root(data, "a/../b.png") == data.absolute() / "b.png"
    with pytest.raises(ValueError, match=r"'\.\./x\.png'.*" + str(data.absolute())):
        resolve_under_root(data, "../x.png")


def test_dataset_owner_symlinks_are_followed(tmp_path):
    # A dataset assembled from several disks: its folders are symbolic links the owner made. The root check is
    # lexical, so such a layout is read; only label-file paths that climb out of the root are refused.
    disk = tmp_path / "disk2"
    disk.mkdir()
    _save(_digit_image(3), disk / "three.png")
    data = tmp_path / "data"
    data.mkdir()
    os.symlink(disk, data / "images")
    ds = MultiLabelCSVDataset(_write(data / "l.csv", "image,three\nimages/three.png,1\n"))
    image, target = ds[0]
    assert image.size == (32, 32) and target.tolist() == [1.0]
    with pytest.raises(ValueError, match="climbs out of the data root"):
        MultiLabelCSVDataset(_write(data / "l.csv", "image,three\nimages/../../disk2/three.png,1\n"))


def test_csv_dataset_skips_unreadable_and_strict(tmp_path):
    _save(_digit_image(0), tmp_path / "good.png")
    _truncated_jpeg(tmp_path / "bad.jpg")
    _random_bytes_png(tmp_path / "junk.png")
    csv_path = _write(tmp_path / "l.csv", "image,positive,negative\ngood.png,a,b\nbad.jpg,b,\njunk.png,,a\n")
    ds = MultiLabelCSVDataset(csv_path, transform=multilabel_eval_transform(8))
    img, target = ds[0]
    assert img.shape == (3, 8, 8) and target.tolist() == [1, 0]
    for i, name in ((1, "bad.jpg"), (2, "junk.png")):
        with pytest.warns(UnreadableFileWarning, match=name):
            sample = ds[i]
        assert isinstance(sample, Skipped) and sample.file.endswith(name)
    assert ds[1].reason.startswith("truncated") and ds[2].reason.startswith("not a readable image file")
    assert [os.path.basename(p) for p in ds.policy.skipped[:2]] == ["bad.jpg", "junk.png"]
    batch = skip_unreadable_collate([ds[0], None])
    assert batch[0].shape == (1, 3, 8, 8) and batch[1].tolist() == [[1, 0]]
    strict = MultiLabelCSVDataset(csv_path, strict=True)
    with pytest.raises(UnreadableFileError, match=str(tmp_path / "junk.png")):
        strict[2]
    shared = UnreadablePolicy()
    ds_shared = MultiLabelCSVDataset(csv_path, policy=shared)
    with pytest.warns(UnreadableFileWarning):
        ds_shared[1]
    assert shared.count == 1 and ds_shared.policy is shared


def test_write_multilabel_csv_round_trip(tmp_path):
    targets = torch.tensor([[1.0, -1.0, 0.0], [0.0, 1.0, 1.0]])
    out = tmp_path / "sub" / "out.csv"
    write_multilabel_csv(out, ["x/a.png", "b.png"], targets, ["c1", "c,2", "c3"])
    assert out.read_text().splitlines()[0] == 'image,c1,"c,2",c3'
    ds = MultiLabelCSVDataset(out)
    assert ds.classes == ["c1", "c,2", "c3"] and torch.equal(ds.targets, targets)
    assert ds.paths[0] == str((tmp_path / "sub" / "x" / "a.png").resolve())
    with pytest.raises(ValueError, match=r"targets\[1, 2\] = 0.5"):
        write_multilabel_csv(out, ["a", "b"], [[1, 0, 0], [1, 0, 0.5]], ["p", "q", "r"])
    with pytest.raises(ValueError, match="shape"):
        write_multilabel_csv(out, ["a"], [[1, 0]], ["p", "q", "r"])


# ----------------------------------------------------------------------------------------------- transforms


def test_cutout_paints_exactly_one_rectangle():
    base = Image.new("RGB", (40, 30), (10, 20, 30))
    cut = CutoutPIL(cutout_factor=0.5, fill=(200, 100, 50))
    full_h, full_w = 15, 20
    saw_full = False
    for seed in range(40):
        random.seed(seed)
        out = np.asarray(cut(base))
        assert np.asarray(base).max() == 30  # the input is not modified
        changed = np.any(out != (10, 20, 30), axis=-1)
        ys, xs = np.nonzero(changed)
        y1, y2, x1, x2 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
        assert changed.sum() == (y2 - y1) * (x2 - x1)  # the changed pixels form one solid rectangle
        assert (out[changed] == (200, 100, 50)).all()
        assert (y2 - y1) <= full_h and (x2 - x1) <= full_w
        if y1 > 0 and x1 > 0 and y2 < 30 and x2 < 40:  # not clipped: exactly the expected size
            assert (y2 - y1, x2 - x1) == (full_h, full_w)
            saw_full = True
    assert saw_full
    random.seed(3)
    a = np.asarray(CutoutPIL()(base))
    random.seed(3)
    assert np.array_equal(a, np.asarray(CutoutPIL()(base)))  # reproducible under random.seed
    assert CutoutPIL(p=0.0)(base) is base
    with pytest.raises(ValueError, match="cutout_factor"):
        CutoutPIL(cutout_factor=1.5)


def test_squish_resize_and_pipelines():
    img = _digit_image(5, 20).resize((50, 20))
    assert SquishResize(33)(img).size == (33, 33)
    assert SquishResize((12, 40))(img).size == (40, 12)  # (height, width)
    with pytest.raises(ValueError, match="SquishResize"):
        SquishResize(0)
    random.seed(0)
    torch.manual_seed(0)
    train = multilabel_train_transform(24)
    steps = [type(t).__name__ for t in train.transforms]
    assert steps == ["SquishResize", "CutoutPIL", "RandAugment", "ToTensor"]
    for t in (train(img), multilabel_eval_transform((24, 16))(img)):
        assert t.dtype == torch.float32 and t.min() >= 0 and t.max() <= 1
    assert train(img).shape == (3, 24, 24)
    assert multilabel_eval_transform((24, 16))(img).shape == (3, 24, 16)
    plain = multilabel_train_transform(24, cutout_factor=None, randaug=None)
    assert torch.equal(plain(img), multilabel_eval_transform(24)(img))


def test_rand_augment_maps_pil_to_pil():
    aug = rand_augment("rand-m9-n3-mstd0.5", img_size=32)
    assert aug.num_layers == 3 and aug.ops[0].hparams["translate_const"] == 14
    assert aug.ops[0].hparams["img_mean"] == (124, 116, 104)
    img = _digit_image(7, 32)
    random.seed(1)
    outs = [aug(img) for _ in range(5)]
    assert all(isinstance(o, Image.Image) and o.size == img.size and o.mode == "RGB" for o in outs)
    assert any(not np.array_equal(np.asarray(o), np.asarray(img)) for o in outs)
    with pytest.raises(ValueError, match="RandAugment"):
        rand_augment("augmix-m5")


# ----------------------------------------------------------------------------------------------- digits


def test_digits_split_is_stratified_and_seeded():
    x_train, y_train = load_digits_split("train")
    x_test, y_test = load_digits_split("test")
    assert len(x_train) + len(x_test) == 1797 and len(y_test) == len(x_test)
    assert x_train.dtype == np.uint8 and x_train.shape[1:] == (8, 8) and x_train.max() == 255
    assert y_train.dtype == np.int64 and set(y_test.tolist()) == set(range(10))
    np.testing.assert_allclose(np.bincount(y_test) / len(y_test), np.bincount(y_train) / len(y_train), atol=0.01)
    again, _ = load_digits_split("test")
    other, _ = load_digits_split("test", seed=1)
    assert np.array_equal(again, x_test) and not np.array_equal(other, x_test)
    assert len(load_digits_split("test", test_fraction=0.5)[0]) == 899
    with pytest.raises(ValueError, match="'val'"):
        load_digits_split("val")


def test_digits_dataset_formats():
    ds = DigitsDataset("test", image_size=16, channels=3)
    x, y = ds[0]
    assert ds.classes == [str(d) for d in range(10)] and len(ds) == len(load_digits_split("test")[1])
    assert x.shape == (3, 16, 16) and x.dtype == torch.float32 and x.min() >= 0 and x.max() <= 1
    assert torch.equal(x[0], x[2]) and isinstance(y, int)
    grey = DigitsDataset("train")
    g, _ = grey[3]
    assert g.shape == (1, 8, 8)
    raw, _ = load_digits_split("train")
    assert torch.allclose(g[0] * 255, torch.from_numpy(raw[3]).float(), atol=1e-3)
    seen_modes = []

    def to_tensor(img):
        seen_modes.append((img.mode, img.size))
        return torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0)

    t, _ = DigitsDataset("train", image_size=12, channels=3, transform=to_tensor)[0]
    assert seen_modes == [("RGB", (12, 12))] and t.shape == (12, 12, 3)
    with pytest.raises(TypeError, match="must return a tensor"):
        DigitsDataset("train", transform=lambda im: im)[0]
    with pytest.raises(ValueError, match="channels"):
        DigitsDataset(channels=2)
    pairs = digits_pil_images("test", image_size=10)
    assert pairs[0][0].mode == "L" and pairs[0][0].size == (10, 10) and pairs[0][1] == ds.targets[0]


def test_bad_input_set_is_refused_with_a_reason_each(tmp_path):
    from miil.core.testing import BAD_INPUT_KINDS, write_bad_inputs

    files = write_bad_inputs(tmp_path / "bad")
    assert sorted(files) == sorted(BAD_INPUT_KINDS) and not files["missing"].exists()
    policy = UnreadablePolicy()
    reasons = {}
    for kind, path in files.items():
        with pytest.warns(UnreadableFileWarning, match=path.name):
            assert policy.load_image(path) is None
        reasons[kind] = policy.skipped_sample(path).reason
    assert reasons["missing"] == "missing" and reasons["empty"] == "empty file"
    assert reasons["folder"] == "a folder, not a file" and reasons["truncated"].startswith("truncated")
    assert reasons["wrong_type"].startswith("not a readable image file")
    assert policy.load_image(tmp_path / "bad" / "real-digit.jpg").size == (64, 64)
