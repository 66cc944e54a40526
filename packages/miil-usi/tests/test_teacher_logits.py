import dataclasses
import json

import numpy as np
import pytest
import timm
import torch
from torch.utils.data import TensorDataset

from miil.usi import (
    USI,
    FrozenTeacher,
    KDBatchTransform,
    KDMixup,
    TeacherLogits,
    build_usi_trainer,
    dataset_fingerprint,
    precompute_teacher_logits,
)


def _data(n=24, seed=0):
    g = torch.Generator().manual_seed(seed)
    return TensorDataset(torch.randn(n, 3, 16, 16, generator=g), torch.randint(0, 4, (n,), generator=g))


def test_stored_logits_round_trip_and_checks(tmp_path):
    torch.manual_seed(0)
    teacher = FrozenTeacher(
        timm.create_model("test_resnet", num_classes=4), student_mean=None, student_std=None, input_size=(3, 16, 16)
    )
    data = _data()
    path = precompute_teacher_logits(teacher, data, tmp_path / "t", batch_size=5, dtype="float32", progress=False)
    assert path.suffix == ".npy" and path.with_suffix(".json").is_file()
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["num_samples"] == 24 and meta["num_classes"] == 4 and meta["fingerprint"] == dataset_fingerprint(data)
    store = TeacherLogits(path, dataset=data, num_classes=4)
    idx = torch.tensor([3, 0, 17])
    with torch.no_grad():
        expected = torch.log_softmax(teacher(data.tensors[0][idx]), -1)
    torch.testing.assert_close(store.log_probs(idx), expected, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="different training set"):
        TeacherLogits(path, dataset=_data(seed=1))
    with pytest.raises(ValueError, match="4 classes"):
        TeacherLogits(path, num_classes=10)
    with pytest.raises(FileNotFoundError, match="precompute-logits"):
        TeacherLogits(tmp_path / "missing.npy")
    np.save(path, np.full((24, 4), np.nan, dtype=np.float16))
    with pytest.raises(ValueError, match="no teacher output"):
        TeacherLogits(path).log_probs(idx)


def test_training_from_stored_logits_uses_them(tmp_path):
    torch.manual_seed(0)
    teacher = FrozenTeacher(
        timm.create_model("test_resnet", num_classes=4), student_mean=None, student_std=None, input_size=(3, 16, 16)
    )
    data = _data()
    path = precompute_teacher_logits(teacher, data, tmp_path / "t.npy", batch_size=8, progress=False)
    cfg = dataclasses.replace(
        USI,
        out_dir=str(tmp_path / "run"),
        num_classes=4,
        img_size=16,
        epochs=1,
        batch_size=8,
        warmup_epochs=0,
        amp=False,
        ema=False,
        device="cpu",
        progress=False,
        teacher_logits=str(path),
        kd_weight=5.0,
    )
    trainer = build_usi_trainer(cfg, data, model=timm.create_model("test_resnet", num_classes=4))
    assert trainer.teacher is None and trainer.run_info["kd"] == "stored logits"
    batches = []
    transform = trainer.batch_transform
    assert isinstance(transform, KDBatchTransform) and isinstance(transform.mixup, KDMixup)
    trainer.batch_transform = lambda b: batches.append(transform(b)) or batches[-1]
    result = trainer.fit()
    assert all(len(b) == 3 and b[2].shape == (8, 4) for b in batches)  # (images, soft labels, teacher log-probs)
    assert all(torch.allclose(b[2].exp().sum(-1), torch.ones(8)) for b in batches)
    assert np.isfinite(result.history[0]["train_loss"])
