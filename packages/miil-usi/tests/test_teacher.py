import dataclasses

import pytest
import timm
import torch
from torch.utils.data import TensorDataset

from miil.usi import USI, FrozenTeacher, build_usi_trainer, create_teacher

NORM_S = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
NORM_T = ((0.1, 0.2, 0.3), (0.3, 0.6, 0.9))


def _data(n=32, classes=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return TensorDataset(torch.randn(n, 3, 16, 16, generator=g), torch.randint(0, classes, (n,), generator=g))


def _cfg(tmp_path, **kw):
    base = dict(
        out_dir=str(tmp_path / "run"),
        model="test_resnet",
        num_classes=4,
        img_size=16,
        epochs=1,
        batch_size=8,
        warmup_epochs=0,
        amp=False,
        ema=False,
        device="cpu",
        progress=False,
        mean=NORM_S[0],
        std=NORM_S[1],
        teacher="given",
    )
    base.update(kw)
    return dataclasses.replace(USI, **base)


def test_teacher_stays_frozen_and_sees_the_students_mixed_batch(tmp_path, bn_randomizer):
    torch.manual_seed(0)
    teacher = bn_randomizer(timm.create_model("test_efficientnet", num_classes=4))
    teacher.pretrained_cfg = {**teacher.pretrained_cfg, "mean": NORM_T[0], "std": NORM_T[1]}
    student = timm.create_model("test_resnet", num_classes=4)
    trainer = build_usi_trainer(_cfg(tmp_path), _data(), model=student, teacher=teacher)
    frozen = trainer.teacher
    assert isinstance(frozen, FrozenTeacher) and frozen.fuse_result.fused
    before = {k: v.clone() for k, v in frozen.state_dict().items()}
    student_before = [p.detach().clone() for p in student.parameters()]
    seen = {"student": [], "teacher": []}
    student.register_forward_pre_hook(lambda m, a: seen["student"].append(a[0].detach().clone()))
    frozen.model.register_forward_pre_hook(lambda m, a: seen["teacher"].append(a[0].detach().clone()))
    frozen.train()  # asking the teacher to train changes nothing
    trainer.fit()
    assert not frozen.training and not any(m.training for m in frozen.modules())
    assert all(not p.requires_grad and p.grad is None for p in frozen.parameters())
    after = frozen.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert any(not torch.equal(a, b) for a, b in zip(student_before, student.parameters()))  # the student trained
    assert len(seen["student"]) >= 4 and len(seen["teacher"]) == len(seen["student"])
    for xs, xt in zip(seen["student"], seen["teacher"]):
        expected = ((xs * 0.5 + 0.5) - torch.tensor(NORM_T[0]).view(1, 3, 1, 1)) / torch.tensor(NORM_T[1]).view(
            1, 3, 1, 1
        )
        torch.testing.assert_close(xt, expected, rtol=1e-5, atol=1e-5)
    # Mixup/cutmix happened: the batches are not the raw dataset images.
    raw = _data().tensors[0]
    assert not any(torch.equal(seen["student"][0][0], img) for img in raw)


def test_kd_changes_the_loss_and_no_teacher_means_plain_soft_ce(tmp_path):
    torch.manual_seed(0)
    teacher = timm.create_model("test_efficientnet", num_classes=4)
    losses = {}
    for name, t in (("kd", teacher), ("none", None)):
        torch.manual_seed(1)
        student = timm.create_model("test_resnet", num_classes=4)
        cfg = _cfg(tmp_path / name, teacher="given" if t is not None else "none", seed=3)
        trainer = build_usi_trainer(cfg, _data(), model=student, teacher=t)
        assert (trainer.teacher is None) == (t is None)
        losses[name] = trainer.fit().history[0]["train_loss"]
    assert losses["kd"] > losses["none"] + 0.01  # the alpha_kd * KL term is added


def test_create_teacher_needs_weights_and_matching_classes(teacher_checkpoint):
    from miil.core.errors import UserError

    with pytest.raises(UserError, match="has no weights"):
        create_teacher("test_resnet", num_classes=3, student_mean=NORM_S[0], student_std=NORM_S[1])
    # a hub teacher for other classes is refused from its configuration, before anything is downloaded
    with pytest.raises(UserError, match="pretrained for 1000 classes but the data has 3.*--teacher none"):
        create_teacher("test_resnet", num_classes=3, pretrained=True, student_mean=None, student_std=None)
    teacher = create_teacher(
        "test_resnet",
        num_classes=3,
        checkpoint=teacher_checkpoint,
        student_mean=NORM_S[0],
        student_std=NORM_S[1],
        img_size=16,
    )
    assert teacher(torch.randn(2, 3, 16, 16)).shape == (2, 3)
    assert not any(p.requires_grad for p in teacher.parameters())
    from miil.core.io import KeyMappingError

    with pytest.raises(KeyMappingError):
        create_teacher("test_resnet", num_classes=5, checkpoint=teacher_checkpoint, student_mean=None, student_std=None)
