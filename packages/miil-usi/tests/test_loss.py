import pytest
import timm
import torch
import torch.nn.functional as F
from timm.loss import SoftTargetCrossEntropy
from timm.task import LogitDistillationTask

from miil.usi import FrozenTeacher, KDStep, USIDistillationLoss, usi_kd_loss


def _reference(s, y, t, *, alpha, temperature, gt=1.0, kd_only=False):
    """The paper's loss written out element by element (KL(p_t || p_s) summed over classes, averaged over B)."""
    p_s = torch.softmax(s / temperature, -1)
    p_t = torch.softmax(t / temperature, -1)
    ce = -(y * torch.log_softmax(s, -1)).sum(-1).mean()
    kl = (p_t * (torch.log(p_t) - torch.log(p_s))).sum(-1).mean() * temperature**2
    return (0.0 if kd_only else gt * ce) + alpha * kl


@pytest.mark.parametrize("temperature", [1.0, 3.0])
def test_loss_matches_the_equation(temperature):
    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(6, 5, generator=g), torch.randn(6, 5, generator=g) * 2
    y = torch.softmax(torch.randn(6, 5, generator=g), -1)  # mixed labels are distributions
    got = usi_kd_loss(s, y, t, alpha_kd=5.0, temperature=temperature)
    torch.testing.assert_close(got, _reference(s, y, t, alpha=5.0, temperature=temperature))
    loss = USIDistillationLoss(alpha_kd=2.0, temperature=temperature, gt_weight=0.5)
    torch.testing.assert_close(loss(s, y, t), _reference(s, y, t, alpha=2.0, temperature=temperature, gt=0.5))


def test_paper_defaults_and_variants():
    loss = USIDistillationLoss()
    assert (loss.alpha_kd, loss.temperature, loss.gt_weight, loss.kd_only) == (5.0, 1.0, 1.0, False)
    g = torch.Generator().manual_seed(1)
    s, t = torch.randn(4, 3, generator=g), torch.randn(4, 3, generator=g)
    y = F.one_hot(torch.tensor([0, 1, 2, 0]), 3).float()
    kd_only = USIDistillationLoss(kd_only=True)(s, None, t)
    torch.testing.assert_close(kd_only, _reference(s, y, t, alpha=5.0, temperature=1.0, kd_only=True))
    no_teacher = USIDistillationLoss()(s, y, None)
    torch.testing.assert_close(no_teacher, F.cross_entropy(s, torch.tensor([0, 1, 2, 0])))
    # The student that matches the teacher exactly pays only the ground-truth term.
    torch.testing.assert_close(usi_kd_loss(t, y, t), F.cross_entropy(t, torch.tensor([0, 1, 2, 0])))
    # Log-probabilities are valid teacher inputs: at T = 1 they give the same loss as the logits.
    torch.testing.assert_close(usi_kd_loss(s, y, torch.log_softmax(t, -1)), usi_kd_loss(s, y, t))


def test_bad_arguments_are_rejected():
    s = torch.randn(2, 3)
    with pytest.raises(ValueError, match="kd_only needs teacher"):
        usi_kd_loss(s, None, None, kd_only=True)
    with pytest.raises(ValueError, match="temperature"):
        USIDistillationLoss(temperature=0.0)
    with pytest.raises(ValueError, match="soft targets"):
        usi_kd_loss(s, torch.rand(2, 4), s)
    with pytest.raises(ValueError, match="must match"):
        usi_kd_loss(s, torch.rand(2, 3), torch.randn(2, 4))


@pytest.mark.parametrize("temperature", [1.0, 2.0])
def test_parity_with_timm_logit_distillation_task(temperature):
    """timm's LogitDistillationTask (independent weights 1 and 5) computes the same loss as our KD step."""
    torch.manual_seed(0)
    student = timm.create_model("test_resnet", num_classes=7)
    teacher = timm.create_model("test_efficientnet", num_classes=7).eval()
    # A teacher with its own mean/std (std != 1, where the original USI renormalization was wrong).
    teacher.pretrained_cfg = {**teacher.pretrained_cfg, "mean": (0.1, 0.2, 0.3), "std": (0.5, 0.25, 0.8)}
    x = torch.randn(4, 3, 32, 32)
    target = F.one_hot(torch.tensor([1, 3, 5, 6]), 7).float()
    task = LogitDistillationTask(
        student,
        teacher,
        criterion=SoftTargetCrossEntropy(),
        distill_loss_weight=5.0,
        task_loss_weight=1.0,
        temperature=temperature,
        device=torch.device("cpu"),
        verbose=False,
    )
    student.eval()  # compare deterministic forwards (BN statistics of the batch would otherwise move)
    expected = task(x.clone(), target)["loss"]
    ours = KDStep(
        USIDistillationLoss(alpha_kd=5.0, temperature=temperature),
        FrozenTeacher(
            teacher,
            student_mean=student.pretrained_cfg["mean"],
            student_std=student.pretrained_cfg["std"],
            fuse_bn=False,
        ),
    )(student, (x.clone(), target))
    torch.testing.assert_close(ours, expected, rtol=1e-5, atol=1e-6)
    assert float(ours.detach()) > float(F.cross_entropy(student(x), target.argmax(1)).detach())  # KD term counts
