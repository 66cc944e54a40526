import numpy as np
import pytest
import torch

from miil.core.data import DigitMosaicDataset
from miil.csl import apply_partial_simulation, simulate_fpc, simulate_partial_labels, simulate_rps


def _full(n=2000, c=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    freq = torch.linspace(0.02, 0.6, c)
    return (torch.rand(n, c, generator=g) < freq).float()


def test_rps_removes_fraction_p_and_is_seeded():
    full = _full()
    for p in (0.1, 0.5, 0.9):
        out, summary = simulate_rps(full, p, seed=3)
        removed = float((out == -1).double().mean())
        assert removed == pytest.approx(p, abs=0.01)
        assert summary.removed_fraction == pytest.approx(removed, abs=1e-9)
        kept = out != -1
        assert torch.equal(out[kept], full[kept])  # kept labels are unchanged
    a, _ = simulate_rps(full, 0.5, seed=7)
    b, _ = simulate_rps(full, 0.5, seed=7)
    c, _ = simulate_rps(full, 0.5, seed=8)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_fpc_keeps_n_per_class_and_label():
    full = _full()
    n = 30
    out, summary = simulate_fpc(full, n, seed=0)
    for c in range(full.shape[1]):
        pos, neg = int((full[:, c] == 1).sum()), int((full[:, c] == 0).sum())
        assert int((out[:, c] == 1).sum()) == min(n, pos) <= n
        assert int((out[:, c] == 0).sum()) == min(n, neg) <= n
    kept = out != -1
    assert torch.equal(out[kept], full[kept])
    assert summary.positives_per_class == (out == 1).sum(0).tolist()
    again, _ = simulate_fpc(full, n, seed=0)
    assert torch.equal(out, again)
    # A class with fewer positives than n keeps all of them.
    rare = torch.zeros(100, 1)
    rare[:5] = 1
    out, _ = simulate_fpc(rare, 10, seed=1)
    assert int((out == 1).sum()) == 5 and int((out == 0).sum()) == 10


def test_existing_unknowns_stay_unknown_and_numpy_in_numpy_out():
    full = _full(200, 5).numpy()
    full[:, 0] = -1
    out, _ = simulate_partial_labels(full, "rps", 0.3, seed=0)
    assert isinstance(out, np.ndarray) and (out[:, 0] == -1).all()
    out, _ = simulate_partial_labels(full, "fpc", 10.0, seed=0)
    assert (out[:, 0] == -1).all()
    with pytest.raises(ValueError, match="labels must be 1, 0 or -1"):
        simulate_rps(np.full((2, 2), 0.5), 0.1)
    with pytest.raises(ValueError, match="unknown partial-label simulation"):
        simulate_partial_labels(full, "xyz", 1)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        simulate_rps(full, 1.5)


def test_apply_to_dataset_prints_summary(capsys):
    ds = DigitMosaicDataset("test", num_images=300)
    before = ds.targets.clone()
    summary = apply_partial_simulation(ds, "fpc", 20, seed=2)
    out = capsys.readouterr().out
    assert "FPC(20)" in out and "kept" in out
    assert int((ds.targets == 1).sum()) == summary.positives_kept <= 20 * 10
    assert not torch.equal(before, ds.targets)
    assert apply_partial_simulation(ds, "none", 0) is None
    with pytest.raises(TypeError, match="dense"):
        apply_partial_simulation(object(), "rps", 0.5)
