import pytest
import torch
import torch.nn as nn
from torch.utils.data import TensorDataset

from miil.core.data import digits_pil_images
from miil.core.errors import UserError
from miil.usi import collect_images, predict, usi_eval_transform, validate


def test_validate_reports_top1_and_top5():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, 6, generator=g)
    y = torch.randint(0, 6, (40,), generator=g)
    model = nn.Linear(6, 6)
    with torch.no_grad():
        logits = model(x)
    ranks = (logits > logits.gather(1, y[:, None])).sum(1)  # classes scored above the true one
    got = validate(model, TensorDataset(x, y), batch_size=7)
    assert got["top1"] == pytest.approx(100.0 * float((ranks < 1).float().mean()))
    assert got["top5"] == pytest.approx(100.0 * float((ranks < 5).float().mean()))
    assert got["images"] == 40 and got["skipped_unreadable"] == 0


def test_predict_keeps_the_order_and_skips_unreadable_files(tmp_path):
    images = [img for img, _ in digits_pil_images("test", image_size=16, channels=3)[:3]]
    paths = []
    for i, img in enumerate(images):
        if i == 1:
            bad = tmp_path / "b_broken.png"
            bad.write_bytes(b"not a png")
            paths.append(bad)
        p = tmp_path / f"{'a' if i == 0 else 'c'}_{i}.png"
        img.save(p)
        paths.append(p)
    found = collect_images([tmp_path])
    assert found == sorted(paths)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 16 * 16, 4))
    tf = usi_eval_transform(16, mean=(0.5,) * 3, std=(0.5,) * 3)
    with pytest.warns(UserWarning, match="b_broken.png: not a readable image file"):
        rows, report = predict(model, found, transform=tf, classes=["w", "x", "y", "z"], top_k=3, batch_size=2)
    assert [r["file"] for r in rows] == [str(p) for p in found if p.name != "b_broken.png"]
    assert report.samples == 3 and [s.file for s in report.skipped] == [str(tmp_path / "b_broken.png")]
    assert all(len(r["top"]) == 3 and {t["class"] for t in r["top"]} <= set("wxyz") for r in rows)
    assert all(sum(t["prob"] for t in r["top"]) <= 1.0 + 1e-6 for r in rows)
    with torch.no_grad():  # the probabilities are the model's softmax on the evaluation view
        first = model(tf(images[0].convert("RGB"))[None]).softmax(-1)[0]
    assert rows[0]["top"][0]["prob"] == pytest.approx(float(first.max()), abs=1e-6)
    # a path given explicitly is an input even when it is missing; a folder with no image is a user error
    assert collect_images([tmp_path / "nope.png"]) == [tmp_path / "nope.png"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no images"):
        collect_images([tmp_path / "empty"])
