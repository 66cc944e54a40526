"""The VOC and NUS-WIDE loaders on the miniature copies written in the datasets' real formats."""

import json
import shutil

import numpy as np
import pytest
import torch

from miil.core.errors import UserError
from miil.core.miniature import miniature_digest
from miil.mldecoder import NusWideDataset, VOCDataset, load_word_vectors
from miil.mldecoder.data import VOC_CLASSES, parse_label_list, read_nus_wide_csv
from miil.mldecoder.miniature import NUS_WIDE_DIGIT_CLASSES, make_nus_wide, make_voc2007
from miil.mldecoder.zsl_metrics import load_zsl_split


@pytest.mark.parametrize("split", ["train", "val", "trainval", "test"])
def test_voc_targets_agree_with_the_devkit_class_lists(voc_root, split):
    root = voc_root / "VOCdevkit" / "VOC2007"
    ds = VOCDataset(root, split)
    ids = (root / "ImageSets" / "Main" / f"{split}.txt").read_text().split()
    assert ds.ids == ids and ds.classes == list(VOC_CLASSES)
    # The devkit's per-class lists are the classification ground truth: 1 present, 0 difficult only, -1 absent.
    ours = {1: 1.0, 0: -1.0, -1: 0.0}
    for k, name in enumerate(VOC_CLASSES):
        rows = dict(
            line.split() for line in (root / "ImageSets" / "Main" / f"{name}_{split}.txt").read_text().splitlines()
        )
        assert [ours[int(rows[i])] for i in ids] == ds.targets[:, k].tolist(), name
    assert (ds.targets != 0).any(0).all()  # every class occurs in every split (some only as difficult)
    image, target = ds[0]
    assert image.mode == "RGB" and torch.equal(target, ds.targets[0])


def test_voc_difficult_parts_and_errors(voc_root, tmp_path):
    root = tmp_path / "VOC2007"
    shutil.copytree(voc_root / "VOCdevkit" / "VOC2007", root)
    ds = VOCDataset(root, "trainval")
    assert (ds.targets == -1).any()  # some classes occur only as difficult objects
    assert (VOCDataset(root, "trainval", difficult="positive").targets == -1).sum() == 0
    person = next(p for p in (root / "Annotations").glob("*.xml") if "<name>person</name>" in p.read_text())
    assert "<part>" in person.read_text()  # the part's <name>head</name> is not an object
    bad = person.read_text().replace("<name>person</name>", "<name>unicorn</name>", 1)
    person.write_text(bad)
    split = next(
        s for s in ("train", "val", "test") if person.stem in (root / "ImageSets/Main" / f"{s}.txt").read_text()
    )
    with pytest.raises(ValueError, match=rf"{person.stem}.xml: unknown object class 'unicorn'"):
        VOCDataset(root, split)
    (root / "ImageSets" / "Main" / "trainval.txt").unlink()
    with pytest.raises(FileNotFoundError, match="trainval.txt"):
        VOCDataset(root, "trainval")


def test_nus_wide_rows_splits_word_vectors_and_zsl_split(nus_root):
    rows = read_nus_wide_csv(nus_root / "data.csv")
    assert len(rows) == 72 and rows[0][0].startswith("Flickr/")  # the header row is not an image
    train = NusWideDataset(nus_root, nus_root / "data.csv", split="train")
    assert train.classes == sorted(NUS_WIDE_DIGIT_CLASSES) and len(train) == 48
    seen, unseen = load_zsl_split(nus_root / "benchmark_81_v0.json", train.classes)
    assert [train.classes[i] for i in unseen] == ["nine", "seven", "three"] and len(seen) == 7
    val = NusWideDataset(nus_root, nus_root / "data.csv", split="val", only_with_classes=unseen)
    assert 0 < len(val) <= 24 and val.targets[:, unseen].sum(1).min() >= 1
    vectors = load_word_vectors(nus_root / "wordvec_array.pth", len(train.classes))
    assert vectors.shape == (10, 300)  # stored [300, C] as the reference's wordvec_array, read as [C, 300]
    raw = torch.load(nus_root / "wordvec_array.pth", weights_only=True)
    assert raw.shape == (300, 10)
    # The vectors carry the classes' visual similarity: each class is nearest to itself among noisy copies.
    sim = torch.nn.functional.normalize(vectors, dim=1) @ torch.nn.functional.normalize(vectors, dim=1).t()
    assert torch.equal(sim.argmax(1), torch.arange(10))
    image, target = train[0]
    assert image.mode == "RGB" and target.sum() >= 1


def test_nus_wide_header_whatever_its_names(tmp_path):
    # pandas in the reference reads the first row as the header, whatever it says
    (tmp_path / "data.csv").write_text('img,tags,split\nx/1.jpg,"[sky, cat]",train\nx/2.jpg,"[dog]",val\n')
    assert [r[0] for r in read_nus_wide_csv(tmp_path / "data.csv")] == ["x/1.jpg", "x/2.jpg"]
    (tmp_path / "data.csv").write_text('x/1.jpg,"[sky, cat]",train\n')
    assert read_nus_wide_csv(tmp_path / "data.csv")[0][1] == ["sky", "cat"]  # no header at all
    assert parse_label_list("['a', 'b c']") == ["a", "b c"] and parse_label_list("a;b") == ["a", "b"]
    with pytest.raises(ValueError, match="no rows of split 'test'"):
        (tmp_path / "x").mkdir()
        NusWideDataset(tmp_path, tmp_path / "data.csv", split="test")


def test_word_vector_layouts(tmp_path):
    wv = torch.randn(1, 300, 4)  # a leading batch axis
    torch.save(wv, tmp_path / "wv.pth")
    torch.testing.assert_close(load_word_vectors(tmp_path / "wv.pth", 4), wv[0].t())
    np.save(tmp_path / "wv.npy", np.ones((4, 7), dtype=np.float32))
    assert load_word_vectors(tmp_path / "wv.npy", 4).shape == (4, 7)
    with pytest.raises(UserError, match="but there are 5 classes"):
        load_word_vectors(tmp_path / "wv.npy", 5)


def test_nus_wide_zsl_json_names_unknown_classes(nus_root, tmp_path):
    split = json.loads((nus_root / "benchmark_81_v0.json").read_text())
    split["test class"].append("unicorn")
    (tmp_path / "split.json").write_text(json.dumps(split))
    with pytest.raises(ValueError, match="unicorn"):
        load_zsl_split(tmp_path / "split.json", sorted(NUS_WIDE_DIGIT_CLASSES))


@pytest.mark.parametrize(
    "make, small",
    [
        (make_voc2007, {"train_images": 3, "val_images": 2, "test_images": 2}),
        (make_nus_wide, {"train_images": 3, "val_images": 2}),
    ],
    ids=lambda v: getattr(v, "__name__", ""),
)
def test_miniatures_are_deterministic_by_seed(make, small, tmp_path):
    a, b = make(tmp_path / "a", seed=3, **small), make(tmp_path / "b", seed=3, **small)
    assert miniature_digest(a) == miniature_digest(b) != miniature_digest(make(tmp_path / "c", seed=4, **small))
