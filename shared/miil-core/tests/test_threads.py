import pytest
import torch

from miil.core.threads import limit_threads


def test_limit_threads_sets_and_restores_even_on_error():
    outer = torch.get_num_threads()
    torch.set_num_threads(2)  # a count the block changes, so that restoring it is observable
    try:
        with limit_threads(1):
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
        with pytest.raises(RuntimeError, match="boom"), limit_threads(1):
            raise RuntimeError("boom")
        assert torch.get_num_threads() == 2
        with pytest.raises(ValueError, match="n >= 1"), limit_threads(0):
            pass
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(outer)
