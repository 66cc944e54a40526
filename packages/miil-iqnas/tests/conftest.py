"""Shared tiny fixtures: a reduced search space (7,056 networks), integer latency costs and a random estimator."""

import numpy as np
import pytest
import torch

from miil.core.testing import printed_warnings
from miil.hardcore import LatencyTable, SearchSpace, StageSpec
from miil.iqnas import AccuracyEstimator, latency_costs


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
def small_space() -> SearchSpace:
    """2 stages, 4 options (expansion 3/6 x kernel 3/5), depths 1-3: 84^2 = 7,056 networks."""
    return SearchSpace(
        stages=(StageSpec(8, 2, "relu"), StageSpec(16, 2, "hard_swish")),
        expansions=(3, 6),
        kernels=(3, 5),
        se_options=(False,),
        depths=(1, 2, 3),
        stem_channels=8,
        first_block_channels=8,
        head_block_channels=16,
        num_features=32,
        image_size=16,
    )


@pytest.fixture
def integer_table(small_space) -> LatencyTable:
    """Whole-number block latencies, so the grid dynamic program is exact at resolution 1."""
    rng = np.random.default_rng(0)
    block_ms = rng.integers(1, 20, size=(small_space.num_stages, 2, small_space.num_options)).astype(float)
    return LatencyTable(small_space, block_ms, {"stem": 3.0, "head": 2.0}, {"cpu": "synthetic"}, {"backend": "cpu"})


@pytest.fixture
def latency(integer_table):
    return latency_costs(integer_table)


@pytest.fixture
def estimator(small_space) -> AccuracyEstimator:
    rng = np.random.default_rng(1)
    return AccuracyEstimator(
        small_space,
        70.0,
        70.0 + rng.normal(0, 2, size=small_space.alpha_shape),
        70.0 + rng.normal(0, 2, size=small_space.beta_shape),
    )
