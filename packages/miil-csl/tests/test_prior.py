import random

import pytest
import torch
import torch.nn as nn
from torch.utils.data import TensorDataset

from miil.csl import ClassPrior, ClassPriorEstimator, PartialSelectiveLoss, estimate_prior, load_prior


def test_save_load_roundtrip_and_shuffled_rows_change_nothing(tmp_path):
    classes = [f"c{i}" for i in range(20)]
    values = torch.rand(20, generator=torch.Generator().manual_seed(0)).tolist()
    prior = ClassPrior.from_lists(classes, values)
    path = tmp_path / "prior.csv"
    prior.save(path)
    lines = path.read_text().splitlines()
    assert lines[0] == "Classes,avg_pred"
    rows = lines[1:]
    random.Random(1).shuffle(rows)
    shuffled = tmp_path / "shuffled.csv"
    shuffled.write_text("\n".join([lines[0], *rows]) + "\n")
    a, b = load_prior(path), load_prior(shuffled)
    assert a.classes != b.classes  # the rows really are in another order
    assert torch.equal(a.for_classes(classes), b.for_classes(classes))
    assert a.for_classes(classes).tolist() == pytest.approx(values)
    logits = torch.randn(8, 20)
    targets = torch.randint(-1, 2, (8, 20)).float()
    kw = dict(mode="selective", classes=classes, prior_threshold=0.5, likelihood_topk=1)
    torch.testing.assert_close(
        PartialSelectiveLoss(prior=a, **kw)(logits, targets), PartialSelectiveLoss(prior=b, **kw)(logits, targets)
    )


def test_reference_prior_file_with_junk_line(tmp_path):
    path = tmp_path / "prior_fpc_1000.csv"
    path.write_text("Classes,avg_pred\nperson,0.542279\nbicycle,0.13131638\n1542867\n")
    with pytest.raises(ValueError, match=r"prior_fpc_1000.csv:4: expected 2 cells"):
        load_prior(path)
    prior = load_prior(path, skip_malformed=True)
    assert prior.classes == ["person", "bicycle"] and prior["person"] == pytest.approx(0.542279)
    assert prior.above(0.5) == ["person"]


def test_bad_prior_files(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("Classes,avg_pred\ncat,1.5\n")
    with pytest.raises(ValueError, match="not in \\[0, 1\\]"):
        load_prior(bad)
    bad.write_text("Classes,avg_pred\ncat,0.1\ncat,0.2\n")
    with pytest.raises(ValueError, match="appears twice"):
        load_prior(bad)
    bad.write_text("Classes,avg_pred\ncat,abc\n")
    with pytest.raises(ValueError, match="not a number"):
        load_prior(bad)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_prior(tmp_path / "missing.csv")
    with pytest.raises(KeyError, match="'dog'"):
        ClassPrior({"cat": 0.2}).for_classes(["cat", "dog"])


def test_estimator_averages_sigmoid_and_resets():
    est = ClassPriorEstimator(["a", "b", "c"])
    batches = [torch.randn(5, 3), torch.randn(7, 3)]
    for b in batches:
        est.update(b)
    expected = torch.sigmoid(torch.cat(batches)).mean(0)
    assert est.count == 12
    assert est.compute().for_classes(["a", "b", "c"]).tolist() == pytest.approx(expected.tolist(), rel=1e-6)
    est.reset()
    assert est.count == 0
    with pytest.raises(RuntimeError, match="before any update"):
        est.compute()
    with pytest.raises(ValueError, match=r"\[B, 3\]"):
        est.update(torch.zeros(2, 4))


def test_estimate_prior_runs_model_over_dataset():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3))
    x = torch.randn(50, 4)
    ds = TensorDataset(x, torch.zeros(50, 3))
    model.train()
    prior = estimate_prior(model, ds, ["a", "b", "c"], batch_size=16)
    assert model.training  # restored
    expected = torch.sigmoid(model(x)).mean(0).detach()
    assert prior.for_classes(["a", "b", "c"]).tolist() == pytest.approx(expected.tolist(), rel=1e-5)
