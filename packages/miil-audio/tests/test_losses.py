import pytest
import torch
import torch.nn.functional as F

from miil.audio import LabelSmoothingCrossEntropy, MixedLabelBCE, MixTargets, mixed_label_bce


def test_label_smoothing_matches_the_original_definition():
    torch.manual_seed(0)
    logits, y = torch.randn(6, 5), torch.tensor([0, 1, 2, 3, 4, 0])
    s = 0.1
    target = torch.full((6, 5), s / 4)
    target[torch.arange(6), y] = 1 - s
    expected = -(target * F.log_softmax(logits, -1)).sum(-1)
    assert torch.allclose(LabelSmoothingCrossEntropy(smoothing=s)(logits, y), expected.sum())
    assert torch.allclose(LabelSmoothingCrossEntropy(smoothing=s, reduction="mean")(logits, y), expected.mean())
    assert torch.allclose(
        LabelSmoothingCrossEntropy(smoothing=0.0, reduction="mean")(logits, y), F.cross_entropy(logits, y)
    )
    with pytest.raises(ValueError):
        LabelSmoothingCrossEntropy(smoothing=1.0)
    with pytest.raises(ValueError, match="reduction"):
        LabelSmoothingCrossEntropy(reduction="max")(logits, y)


def test_mixed_label_bce_is_bce_on_the_union_of_labels():
    torch.manual_seed(0)
    logits = torch.randn(3, 4)
    mix = MixTargets(torch.tensor([0, 1, 2]), torch.tensor([3, 3, 2]), torch.tensor([0.5, 0.95, 0.7]))
    target = torch.tensor([[1.0, 0, 0, 1], [0, 1, 0, 0], [0, 0, 1, 0]])
    expected = F.binary_cross_entropy_with_logits(logits, target, reduction="sum")
    assert torch.allclose(mixed_label_bce(logits, mix), expected)
    assert torch.allclose(MixedLabelBCE(reduction="mean")(logits, mix), expected / 12)
    loose = mixed_label_bce(logits, mix, threshold=1.0)  # now the second row's partner counts too
    assert not torch.allclose(loose, expected)
