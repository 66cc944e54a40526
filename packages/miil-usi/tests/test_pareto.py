import csv

import pytest
import timm

from miil.usi import ParetoPoint, mark_front, measure_throughput, pareto_front, pareto_table, write_pareto


def test_front_on_a_hand_made_table():
    # (images/s, top-1): like the paper's GPU plot, fast-and-good models dominate the slow, less accurate ones.
    table = {
        "levit_256": (7500, 81.6),
        "levit_384": (5200, 82.7),
        "tresnet_l": (1500, 83.9),
        "resnet50": (2800, 81.0),  # slower and worse than levit_256
        "swin_s": (700, 84.0),
        "vit_s": (3000, 81.2),  # dominated by levit_384
        "convnext_s": (700, 83.8),  # as fast as swin_s, less accurate
        "twin_a": (1000, 83.0),
        "twin_b": (1000, 83.0),  # identical points do not dominate each other
        "twin_c": (1000, 82.9),
    }
    flags = dict(zip(table, pareto_front(list(table.values()))))
    assert {m for m, on in flags.items() if on} == {"levit_256", "levit_384", "tresnet_l", "swin_s"}
    assert pareto_front([(1, 1), (1, 1)]) == [True, True]
    assert pareto_front([(2, 1), (1, 2), (1, 1)]) == [True, True, False]
    assert pareto_front([]) == []


def test_table_csv_and_plot(tmp_path):
    points = [ParetoPoint("a", 100.0, 70.0), ParetoPoint("b", 50.0, 80.0), ParetoPoint("c", 40.0, 75.0)]
    paths = write_pareto(points, tmp_path / "out", title="test", device="cpu")
    rows = list(csv.DictReader(paths["csv"].open()))
    assert [r["model"] for r in rows] == ["a", "b", "c"]
    assert [r["on_front"] for r in rows] == ["True", "True", "False"]
    md = paths["md"].read_text()
    assert "| a | 100.0 | 70.00 | yes |" in md and "| c | 40.0 | 75.00 |  |" in md and "img/s (cpu)" in md
    png = paths["png"].read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    assert pareto_table(mark_front(points)).count("yes") == 2
    with pytest.raises(ValueError, match="no models"):
        write_pareto([], tmp_path / "none")


def test_throughput_fuses_bn_and_counts_images():
    res = measure_throughput("test_resnet", batch_size=2, img_size=32, device="cpu", iters=2, warmup=1, min_seconds=0)
    assert res.images_per_s > 0 and res.bn_fused > 0 and res.iterations >= 2 and res.img_size == 32
    vit = measure_throughput(timm.create_model("test_vit"), batch_size=2, device="cpu", iters=1, min_seconds=0)
    assert vit.bn_fused == 0 and vit.model == "VisionTransformer" and vit.images_per_s > 0
    with pytest.raises(ValueError, match="batch_size"):
        measure_throughput("test_resnet", batch_size=0)
