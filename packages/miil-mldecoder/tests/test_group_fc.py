import pytest
import torch

from miil.mldecoder import GroupFC, group_size


def loop_reference(h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, num_classes: int) -> torch.Tensor:
    """The reference's per-group loop: out[:, i] = h[:, i] @ W[i], flattened, truncated, plus bias."""
    out = torch.zeros(h.shape[0], h.shape[1], weight.shape[2], dtype=h.dtype)
    for i in range(h.shape[1]):
        out[:, i, :] = h[:, i, :] @ weight[i]
    return out.flatten(1)[:, :num_classes] + bias


@pytest.mark.parametrize("num_classes,num_groups", [(80, 80), (1000, 100), (9605, 200), (7, 3), (5, 1)])
def test_batched_group_fc_equals_per_group_loop(num_classes, num_groups):
    torch.manual_seed(num_classes)
    fc = GroupFC(num_groups, 16, num_classes)
    torch.nn.init.normal_(fc.bias)
    h = torch.randn(4, num_groups, 16)
    expected = loop_reference(h, fc.weight.detach(), fc.bias.detach(), num_classes)
    torch.testing.assert_close(fc(h), expected, rtol=1e-5, atol=1e-5)


def test_group_size_is_ceil_and_truncates():
    assert group_size(9605, 200) == 49  # 9,800 logits truncated to 9,605 (the paper's OpenImages setting)
    assert group_size(80, 80) == 1
    assert group_size(1001, 1000) == 2  # the reference's int(N/K + 0.999) would give 1 and drop a class
    fc = GroupFC(200, 8, 9605)
    assert fc.weight.shape == (200, 8, 49)
    assert fc(torch.randn(2, 200, 8)).shape == (2, 9605)


def test_group_fc_init_and_errors():
    fc = GroupFC(10, 32, 100)
    assert torch.count_nonzero(fc.bias) == 0
    # xavier-normal over [K, D, g]: std = sqrt(2 / (fan_in + fan_out)) with fan_in = D*g, fan_out = K*g
    expected_std = (2.0 / (32 * 10 + 10 * 10)) ** 0.5
    assert fc.weight.std().item() == pytest.approx(expected_std, rel=0.15)
    with pytest.raises(ValueError, match="may not exceed"):
        GroupFC(11, 4, 10)
    with pytest.raises(ValueError, match=r"\[B, 10, D\]"):
        fc(torch.randn(2, 9, 32))
