"""Preprocessing of the miniature ImageNet-21K release: class threshold, validation split, resize, resume, report."""

import json
import shutil

import pytest
from PIL import Image

from miil.core.cli import main as miil_main
from miil.core.miniature import miniature_digest
from miil.in21k import packaged_tree, plan_split, preprocess_imagenet21k, resize_image, scan_class_folders
from miil.in21k.miniature import MINIATURE_CLASSES, SMALL_CLASS, make_imagenet21k

DOG, CAT = MINIATURE_CLASSES[0], MINIATURE_CLASSES[5]


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    """The miniature release: ten classes of 12 images and one small class of 3 (``miil.in21k.miniature``)."""
    return make_imagenet21k(tmp_path_factory.mktemp("miniature") / "in21k")


def _with_defects(release, dst):
    """A copy of the release with a non-image file, a truncated JPEG and an image smaller than the target size."""
    shutil.copytree(release, dst)
    (dst / DOG / "notes.txt").write_text("not an image")
    (dst / DOG / f"{DOG}_0.JPEG").write_bytes(b"\xff\xd8 truncated")  # sorts first: a validation file
    Image.new("RGB", (10, 12)).save(dst / CAT / f"{CAT}_0.png")  # smaller than the target: copied unchanged
    return dst


def test_classes_are_in_both_shipped_trees(release):
    for variant in ("fall11", "winter21"):
        tree = packaged_tree(variant)
        assert all(wnid in tree.class_list for wnid in (*MINIATURE_CLASSES, SMALL_CLASS))
        dog = tree.index(DOG)
        assert {tree.parent(w) for w in MINIATURE_CLASSES[1:5]} == {dog}  # a two-level hierarchy
    assert sorted(p.name for p in release.iterdir() if p.is_dir()) == sorted((*MINIATURE_CLASSES, SMALL_CLASS))


def test_scan_and_plan(release):
    files = scan_class_folders(release)
    assert all(len(files[w]) == 12 for w in MINIATURE_CLASSES) and len(files[SMALL_CLASS]) == 3
    names = files[DOG]
    assert names == sorted(names) and names != sorted(names, key=lambda n: int(n.split("_")[1].split(".")[0]))
    plan = plan_split(files, small_class_threshold=4, val_per_class=2)
    assert plan.dropped == {SMALL_CLASS: 3}  # at most 4 images: dropped (the script keeps > 500)
    assert plan.val[DOG] == names[:2]  # the first files by name, not shuffled
    assert plan.counts() == {"classes": 10, "train": 100, "val": 20}
    with pytest.raises(ValueError, match="val_per_class"):
        plan_split(files, small_class_threshold=4, val_per_class=5)


def test_preprocess_resizes_resumes_and_reports(release, tmp_path):
    src, out = _with_defects(release, tmp_path / "src"), tmp_path / "out"
    report = preprocess_imagenet21k(
        src, out, size=32, small_class_threshold=4, val_per_class=2, num_workers=2, progress=False, variant="fall11"
    )
    assert report["counts"] == {"classes": 10, "train": 102, "val": 20}
    assert report["files"] == {"resized": 120, "copied": 1, "exists": 0}
    assert [u["file"].rsplit("/", 1)[-1] for u in report["skipped"]] == [f"{DOG}_0.JPEG"]
    assert report["skipped"][0]["reason"].startswith("not a readable image file")  # a JPEG marker and nothing more
    assert report["check"]["matches"] is False and report["check"]["expected"]["classes"] == 11221
    files = scan_class_folders(src)
    assert sorted(p.name for p in (out / "imagenet21k_val" / CAT).iterdir()) == files[CAT][:2]
    assert files[CAT][0] == f"{CAT}_0.png"
    with Image.open(out / "imagenet21k_val" / CAT / f"{CAT}_0.png") as im:
        assert im.size == (10, 12)  # longer side below the target size: copied unchanged
    for path in (out / "imagenet21k_train").rglob("*.JPEG"):
        with Image.open(path) as im:  # the CMYK and the disguised PNG come out as RGB JPEGs
            assert im.size == (32, 32) and im.format == "JPEG" and im.mode in ("RGB", "L")
    assert json.loads((out / "preprocess_report.json").read_text())["counts"] == report["counts"]

    done = next((out / "imagenet21k_train" / DOG).iterdir())
    stamp = done.stat().st_mtime_ns
    gone = next((out / "imagenet21k_val" / CAT).glob("*.JPEG"))
    gone.unlink()
    again = preprocess_imagenet21k(
        src, out, size=32, small_class_threshold=4, val_per_class=2, num_workers=1, progress=False
    )
    assert again["files"] == {"resized": 1, "copied": 0, "exists": 120}
    assert done.stat().st_mtime_ns == stamp and gone.is_file()
    assert not list(out.rglob("*.part"))


def test_short_edge_resize_and_cli(release, tmp_path):
    src = tmp_path / "a.jpg"
    Image.new("RGB", (400, 300), (10, 20, 30)).save(src)
    assert resize_image(src, tmp_path / "b.jpg", mode="short-edge", size=256) == "resized"
    with Image.open(tmp_path / "b.jpg") as im:
        assert im.size == (341, 256)
    assert resize_image(tmp_path / "missing.jpg", tmp_path / "c.jpg").startswith("unreadable")

    code = miil_main(
        ["in21k", "preprocess", str(release), str(tmp_path / "out"), "--resize", "short-edge", "--size", "40",
         "--small-class-threshold", "4", "--val-per-class", "2", "--variant", "none", "--progress", "false"]
    )  # fmt: skip
    assert code == 0
    name = scan_class_folders(release)[DOG][5]
    with Image.open(release / DOG / name) as im:
        width, height = im.size
    with Image.open(tmp_path / "out" / "imagenet21k_train" / DOG / name) as im:
        scale = 40 / min(width, height)
        assert im.size == (round(width * scale), round(height * scale)) and min(im.size) == 40
    assert miil_main(["in21k", "preprocess", str(release), str(release / "inside"), "--variant", "none"]) == 2


@pytest.mark.parametrize(
    "make, small",
    [(make_imagenet21k, {"images_per_class": 2, "small_class_images": 1})],
    ids=lambda v: getattr(v, "__name__", ""),
)
def test_miniatures_are_deterministic_by_seed(make, small, tmp_path):
    a, b = make(tmp_path / "a", seed=3, **small), make(tmp_path / "b", seed=3, **small)
    assert miniature_digest(a) == miniature_digest(b) != miniature_digest(make(tmp_path / "c", seed=4, **small))


def test_cli_reports_unreadable_images_and_published_count_mismatches(release, tmp_path, capsys):
    src = _with_defects(release, tmp_path / "src")
    flags = ["--small-class-threshold", "4", "--val-per-class", "2", "--size", "32", "--progress", "false"]
    with pytest.warns(UserWarning, match=f"skipping unreadable file .*{DOG}_0.JPEG: not a readable image"):
        code = miil_main(["in21k", "preprocess", str(src), str(tmp_path / "a"), "--variant", "none", *flags])
    assert code == 3  # finished, with a skipped input
    assert "skipped 1 unreadable image(s)" in capsys.readouterr().out
    assert miil_main(["in21k", "preprocess", str(src), str(tmp_path / "b"), "--strict", *flags]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{DOG}_0.JPEG: not a readable image" in err[0] and "--strict" in err[0]
    assert miil_main(["in21k", "preprocess", str(release), str(tmp_path / "c"), "--require-match", *flags]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "differ from the published fall11 numbers" in err[0]
