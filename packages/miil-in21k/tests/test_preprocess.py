"""Preprocessing on a small generated release: class threshold, validation split, resize, resume, report."""

import json

import pytest
from PIL import Image

from miil.core.cli import main as miil_main
from miil.core.data import digits_pil_images
from miil.in21k import plan_split, preprocess_imagenet21k, resize_image, scan_class_folders

SIZES = {"n00000001": 6, "n00000002": 4, "n00000003": 5, "n00000004": 3}  # threshold 4: keep 1 and 3


def _release(root, *, big=(40, 30)):
    """Class folders of real digit images (upscaled), names numbered so that byte order != numeric order."""
    digits = digits_pil_images("train", image_size=8, channels=3)
    k = 0
    for wnid, n in SIZES.items():
        folder = root / wnid
        folder.mkdir(parents=True)
        for i in range(n):
            img = digits[k][0].resize(big)
            k += 1
            img.save(folder / f"{wnid}_{[10, 9, 100, 2, 33, 4][i]}.JPEG", quality=95)
        (folder / "notes.txt").write_text("not an image")
    (root / "n00000001" / "n00000001_5.JPEG").write_bytes(b"\xff\xd8 truncated")  # unreadable, 7th file
    Image.new("RGB", (10, 12)).save(root / "n00000003" / "n00000003_0.png")  # smaller than the target: copied
    return root


def test_scan_and_plan(tmp_path):
    files = scan_class_folders(_release(tmp_path / "src"))
    assert files["n00000001"][:3] == ["n00000001_10.JPEG", "n00000001_100.JPEG", "n00000001_2.JPEG"]
    assert "notes.txt" not in files["n00000001"]
    plan = plan_split(files, small_class_threshold=4, val_per_class=2)
    assert plan.dropped == {"n00000002": 4, "n00000004": 3}  # at most 4 images: dropped (the script keeps > 500)
    assert plan.val["n00000001"] == ["n00000001_10.JPEG", "n00000001_100.JPEG"]  # the first files, not shuffled
    assert plan.counts() == {"classes": 2, "train": 5 + 4, "val": 4}
    with pytest.raises(ValueError, match="val_per_class"):
        plan_split(files, small_class_threshold=4, val_per_class=5)


def test_preprocess_resizes_resumes_and_reports(tmp_path):
    src, out = _release(tmp_path / "src"), tmp_path / "out"
    report = preprocess_imagenet21k(
        src, out, size=32, small_class_threshold=4, val_per_class=2, workers=2, progress=False, variant="fall11"
    )
    assert report["counts"] == {"classes": 2, "train": 9, "val": 4}
    assert report["files"] == {"resized": 11, "copied": 1, "exists": 0}
    assert [u["file"].rsplit("/", 1)[-1] for u in report["unreadable"]] == ["n00000001_5.JPEG"]
    assert report["check"]["matches"] is False and report["check"]["expected"]["classes"] == 11221
    assert "n00000001" in report["check"]["classes_extra_vs_tree"]
    train = sorted(p.name for p in (out / "imagenet21k_train" / "n00000001").iterdir())
    assert train == ["n00000001_2.JPEG", "n00000001_33.JPEG", "n00000001_4.JPEG", "n00000001_9.JPEG"]
    assert sorted(p.name for p in (out / "imagenet21k_val" / "n00000003").iterdir()) == [
        "n00000003_0.png",
        "n00000003_10.JPEG",
    ]
    with Image.open(out / "imagenet21k_train" / "n00000003" / "n00000003_2.JPEG") as im:
        assert im.size == (32, 32)  # squished, aspect ratio ignored
    with Image.open(out / "imagenet21k_val" / "n00000003" / "n00000003_0.png") as im:
        assert im.size == (10, 12)  # longer side below the target size: copied unchanged
    assert json.loads((out / "preprocess_report.json").read_text())["counts"] == report["counts"]

    done = out / "imagenet21k_train" / "n00000001" / "n00000001_4.JPEG"
    stamp = done.stat().st_mtime_ns
    (out / "imagenet21k_val" / "n00000001" / "n00000001_10.JPEG").unlink()
    again = preprocess_imagenet21k(
        src, out, size=32, small_class_threshold=4, val_per_class=2, workers=1, progress=False
    )
    assert again["files"] == {"resized": 1, "copied": 0, "exists": 11}
    assert done.stat().st_mtime_ns == stamp
    assert not list(out.rglob("*.part"))


def test_short_edge_resize_and_cli(tmp_path):
    src = tmp_path / "a.jpg"
    Image.new("RGB", (400, 300), (10, 20, 30)).save(src)
    assert resize_image(src, tmp_path / "b.jpg", mode="short-edge", size=256) == "resized"
    with Image.open(tmp_path / "b.jpg") as im:
        assert im.size == (341, 256)
    assert resize_image(tmp_path / "missing.jpg", tmp_path / "c.jpg").startswith("unreadable")

    release = _release(tmp_path / "src", big=(300, 280))
    code = miil_main(
        ["in21k", "preprocess", str(release), str(tmp_path / "out"), "--resize", "short-edge", "--size", "64",
         "--small-class-threshold", "4", "--val-per-class", "2", "--variant", "none", "--no-progress"]
    )  # fmt: skip
    assert code == 0
    with Image.open(tmp_path / "out" / "imagenet21k_train" / "n00000001" / "n00000001_9.JPEG") as im:
        assert im.size == (69, 64)
    assert miil_main(["in21k", "preprocess", str(release), str(release / "inside"), "--variant", "none"]) == 2
