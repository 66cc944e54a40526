import json

import numpy as np
import pytest
import torch
from PIL import Image

from miil.mldecoder import CocoMultiLabelDataset, NusWideDataset, VOCDataset, load_word_vectors
from miil.mldecoder.data import make_digit_mosaics, parse_label_list, read_coco_instances


def _png(path, value=128):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((12, 16, 3), value, dtype=np.uint8)).save(path)


def _coco(tmp_path, **changes):
    data = {
        "images": [
            {"id": 10, "file_name": "a.png"},
            {"id": 11, "file_name": "b.png"},
            {"id": 12, "file_name": "empty.png"},
        ],
        "categories": [{"id": 3, "name": "car"}, {"id": 1, "name": "person"}, {"id": 90, "name": "toothbrush"}],
        "annotations": [
            {"id": 1, "image_id": 10, "category_id": 1, "area": 10.0},
            {"id": 2, "image_id": 10, "category_id": 1, "area": 99999.0},
            {"id": 3, "image_id": 11, "category_id": 90, "area": 5.0},
            {"id": 4, "image_id": 11, "category_id": 3, "area": 5000.0},
        ],
    }
    data.update(changes)
    f = tmp_path / "instances.json"
    f.write_text(json.dumps(data))
    for name in ("a.png", "b.png", "empty.png"):
        _png(tmp_path / "img" / name)
    return f


def test_coco_instances_presence_targets_keep_unannotated_images(tmp_path):
    ann = _coco(tmp_path)
    ds = CocoMultiLabelDataset(tmp_path / "img", ann, transform=lambda im: torch.tensor(im.size))
    assert ds.classes == ["person", "car", "toothbrush"]  # ordered by category id
    assert len(ds) == 3
    torch.testing.assert_close(ds.targets, torch.tensor([[1.0, 0, 0], [0, 1, 1], [0, 0, 0]]))
    img, target = ds[2]
    assert img.tolist() == [16, 12] and target.sum() == 0


def test_coco_errors_name_the_file(tmp_path):
    ann = _coco(tmp_path, annotations=[{"image_id": 99, "category_id": 1}])
    with pytest.raises(ValueError, match=r"instances.json: annotations\[0\] refers to image id 99"):
        read_coco_instances(ann)
    ann = _coco(tmp_path, images=[{"id": 1}])
    with pytest.raises(ValueError, match=r"images\[0\]: missing required field 'file_name'"):
        read_coco_instances(ann)
    ann = _coco(tmp_path, images=[{"id": 1, "file_name": "../outside.png"}], annotations=[])
    with pytest.raises(ValueError, match="outside the data root"):
        CocoMultiLabelDataset(tmp_path / "img", ann)


def _voc(tmp_path):
    root = tmp_path / "VOC2007"
    (root / "ImageSets" / "Main").mkdir(parents=True)
    (root / "Annotations").mkdir()
    (root / "ImageSets" / "Main" / "test.txt").write_text("000001\n000002\n")
    objects = {
        "000001": [("dog", 0), ("person", 1)],  # person only difficult -> ignored
        "000002": [("person", 1), ("person", 0), ("car", 0)],
    }
    for image_id, objs in objects.items():
        body = "".join(f"<object><name>{n}</name><difficult>{d}</difficult></object>" for n, d in objs)
        (root / "Annotations" / f"{image_id}.xml").write_text(f"<annotation>{body}</annotation>")
        _png(root / "JPEGImages" / f"{image_id}.jpg")
    return root


def test_voc_targets_with_difficult_objects(tmp_path):
    root = _voc(tmp_path)
    ds = VOCDataset(root, "test")
    k = {c: i for i, c in enumerate(ds.classes)}
    assert len(ds) == 2 and len(ds.classes) == 20
    assert ds.targets[0, k["dog"]] == 1 and ds.targets[0, k["person"]] == -1 and ds.targets[0, k["car"]] == 0
    assert ds.targets[1, k["person"]] == 1 and ds.targets[1, k["car"]] == 1
    assert VOCDataset(root, "test", difficult="negative").targets[0, k["person"]] == 0
    (root / "Annotations" / "000001.xml").write_text("<annotation><object><name>unicorn</name></object></annotation>")
    with pytest.raises(ValueError, match=r"000001.xml: unknown object class 'unicorn'"):
        VOCDataset(root, "test")
    with pytest.raises(FileNotFoundError, match="trainval.txt"):
        VOCDataset(root, "trainval")


def test_nus_wide_list_split_and_word_vectors(tmp_path):
    (tmp_path / "data.csv").write_text(
        "image,labels,split\n"
        "x/1.png,\"['sky', 'cat']\",train\n"
        "x/2.png,\"['dog']\",train\n"
        "x/3.png,\"['zebra', 'sky']\",val\n"
        "x/4.png,\"['cat']\",val\n"
    )
    for i in range(1, 5):
        _png(tmp_path / "x" / f"{i}.png")
    train = NusWideDataset(tmp_path, tmp_path / "data.csv", split="train")
    assert train.classes == ["cat", "dog", "sky", "zebra"] and len(train) == 2
    val = NusWideDataset(tmp_path, tmp_path / "data.csv", split="val", only_with_classes=[3])
    assert len(val) == 1 and val.targets[0].tolist() == [0, 0, 1, 1]
    assert parse_label_list("[a, b c]") == ["a", "b c"] and parse_label_list("a;b") == ["a", "b"]
    with pytest.raises(ValueError, match="no rows of split 'test'"):
        NusWideDataset(tmp_path, tmp_path / "data.csv", split="test")
    wv = torch.randn(1, 300, 4)  # the reference's wordvec_array layout: [1, dim, classes]
    torch.save(wv, tmp_path / "wv.pth")
    torch.testing.assert_close(load_word_vectors(tmp_path / "wv.pth", 4), wv[0].t())
    np.save(tmp_path / "wv.npy", np.ones((4, 7), dtype=np.float32))
    assert load_word_vectors(tmp_path / "wv.npy", 4).shape == (4, 7)
    with pytest.raises(ValueError, match="but there are 5 classes"):
        load_word_vectors(tmp_path / "wv.npy", 5)


def test_digit_mosaics_are_deterministic_and_labelled():
    a, ya = make_digit_mosaics("test", num_samples=50, seed=3)
    b, yb = make_digit_mosaics("test", num_samples=50, seed=3)
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(ya, yb)
    assert a.shape == (50, 1, 30, 30) and ya.shape == (50, 10)
    counts = ya.sum(1)
    assert counts.min() >= 1 and counts.max() <= 3
    # every labelled digit leaves ink: the canvas is empty only where no digit was placed
    assert (a.flatten(1).sum(1) > 0).all()
    with pytest.raises(ValueError, match="cell must be"):
        make_digit_mosaics("test", num_samples=1, cell=6)
