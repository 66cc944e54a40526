import pytest
import timm
import torch

from miil.core.data import digits_pil_images
from miil.usi import FrozenTeacher, InputRenormalizer, model_mean_std, renormalize, usi_eval_transform

STUDENT = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))  # timm's ImageNet normalization
TEACHERS = [
    ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),  # TResNet: the case the original code got right
    ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),  # std != 1: the case the original code got wrong
    ((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)),  # CLIP
]


def _images():
    return [img for img, _ in digits_pil_images("test", image_size=24, channels=3)[:6]]


@pytest.mark.parametrize("teacher_norm", TEACHERS)
def test_teacher_receives_exactly_its_own_transform(teacher_norm):
    student_tf = usi_eval_transform(20, mean=STUDENT[0], std=STUDENT[1])
    teacher_tf = usi_eval_transform(20, mean=teacher_norm[0], std=teacher_norm[1])
    images = _images()
    x_student = torch.stack([student_tf(im) for im in images])
    x_teacher_own = torch.stack([teacher_tf(im) for im in images])
    renorm = InputRenormalizer(
        from_mean=STUDENT[0], from_std=STUDENT[1], to_mean=teacher_norm[0], to_std=teacher_norm[1]
    )
    torch.testing.assert_close(renorm(x_student), x_teacher_own, rtol=0, atol=2e-6)
    functional = renormalize(
        x_student, from_mean=STUDENT[0], from_std=STUDENT[1], to_mean=teacher_norm[0], to_std=teacher_norm[1]
    )
    torch.testing.assert_close(functional, x_teacher_own, rtol=0, atol=2e-6)


def test_the_original_formula_is_wrong_when_teacher_std_is_not_one():
    mean_t, std_t = TEACHERS[1]
    x = torch.rand(2, 3, 4, 4)
    m_s, s_s = (torch.tensor(v).view(1, 3, 1, 1) for v in STUDENT)
    m_t, s_t = (torch.tensor(v).view(1, 3, 1, 1) for v in (mean_t, std_t))
    x_student = (x - m_s) / s_s
    original = x_student * s_s / s_t - (m_t - m_s)  # kd_utils.normalize_input
    truth = (x - m_t) / s_t
    assert (original - truth).abs().max() > 0.05  # (mean_s - mean_t) * (1 / std_t - 1) per channel
    ours = InputRenormalizer(from_mean=STUDENT[0], from_std=STUDENT[1], to_mean=mean_t, to_std=std_t)(x_student)
    torch.testing.assert_close(ours, truth, rtol=0, atol=2e-6)


def test_frozen_teacher_model_sees_its_own_normalization():
    teacher = timm.create_model("test_resnet", num_classes=4)
    teacher.pretrained_cfg = {**teacher.pretrained_cfg, "mean": TEACHERS[1][0], "std": TEACHERS[1][1]}
    seen = []
    teacher.register_forward_pre_hook(lambda module, args: seen.append(args[0].clone()))
    frozen = FrozenTeacher(teacher, student_mean=STUDENT[0], student_std=STUDENT[1], input_size=(3, 20, 20))
    seen.clear()  # drop the tracing passes of the BN fusion
    images = _images()
    x_student = torch.stack([usi_eval_transform(20, mean=STUDENT[0], std=STUDENT[1])(im) for im in images])
    own = torch.stack([usi_eval_transform(20, mean=TEACHERS[1][0], std=TEACHERS[1][1])(im) for im in images])
    frozen(x_student)
    assert len(seen) == 1
    torch.testing.assert_close(seen[0], own, rtol=0, atol=2e-6)
    assert (frozen.mean, frozen.std) == (TEACHERS[1][0], TEACHERS[1][1])


def test_identity_when_normalizations_match_and_errors():
    renorm = InputRenormalizer(from_mean=STUDENT[0], from_std=STUDENT[1], to_mean=STUDENT[0], to_std=STUDENT[1])
    x = torch.randn(2, 3, 5, 5)
    assert renorm.identity and renorm(x) is x
    with pytest.raises(ValueError, match="positive"):
        InputRenormalizer(from_mean=(0, 0, 0), from_std=(1, 0, 1), to_mean=(0, 0, 0), to_std=(1, 1, 1))
    with pytest.raises(ValueError, match="one value per channel"):
        InputRenormalizer(from_mean=(0, 0), from_std=(1, 1, 1), to_mean=(0, 0, 0), to_std=(1, 1, 1))
    with pytest.raises(ValueError, match=r"\[B, 3"):
        InputRenormalizer(from_mean=(0, 0, 0), from_std=(1, 1, 1), to_mean=(1, 0, 0), to_std=(1, 1, 1))(
            torch.randn(2, 1, 4, 4)
        )


def test_model_mean_std_reads_timm_config_and_overrides():
    model = timm.create_model("test_resnet")
    assert model_mean_std(model) == (tuple(model.pretrained_cfg["mean"]), tuple(model.pretrained_cfg["std"]))
    assert model_mean_std(model, mean=(0, 0, 0), std=(1, 1, 1)) == ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
    plain = torch.nn.Conv2d(3, 3, 1)
    assert model_mean_std(plain, default=((0.5,) * 3, (0.5,) * 3)) == ((0.5,) * 3, (0.5,) * 3)
