"""Shared tiny fixtures: a two-stage search space at 16x16 and a synthetic latency table."""

import numpy as np
import pytest
import torch

from miil.core.testing import printed_warnings
from miil.hardcore import LatencyTable, SearchSpace, StageSpec


@pytest.fixture(autouse=True)
def _few_threads():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture
def shown_warnings():
    """Warnings reach stderr as in a real ``miil`` process (miil-core's ``printed_warnings``)."""
    with printed_warnings():
        yield


@pytest.fixture
def tiny_space() -> SearchSpace:
    return SearchSpace(
        stages=(StageSpec(8, 2, "relu"), StageSpec(16, 2, "hard_swish")),
        stem_channels=8,
        first_block_channels=8,
        head_block_channels=16,
        num_features=32,
        image_size=16,
    )


@pytest.fixture
def synthetic_table() -> LatencyTable:
    """The paper's space with random positive entries (no timing: formula and search tests)."""
    space = SearchSpace()
    rng = np.random.default_rng(0)
    block_ms = rng.uniform(0.2, 2.0, size=(space.num_stages, 2, space.num_options))
    return LatencyTable(space, block_ms, {"stem": 3.0, "head": 2.0}, {"cpu": "synthetic"}, {"backend": "cpu"})
