from collections import Counter

import pytest

from miil.usi import RepeatedAugSampler


def _ranks(n, world, epoch=0, **kw):
    samplers = [RepeatedAugSampler(n, rank=r, world_size=world, seed=7, **kw) for r in range(world)]
    for s in samplers:
        s.set_epoch(epoch)
    return [list(s) for s in samplers], samplers


@pytest.mark.parametrize("world", [1, 2, 3])
@pytest.mark.parametrize("n", [10, 11, 24])
def test_every_sample_three_times_per_epoch_in_repeats_mode(n, world):
    lists, samplers = _ranks(n, world, epoch=2, epoch_mode="repeats")
    assert len({len(x) for x in lists}) == 1 and all(len(x) == len(s) for x, s in zip(lists, samplers))
    counts = Counter(i for x in lists for i in x)
    padding = len(lists[0]) * world - 3 * n
    assert set(range(n)) == set(counts) and 0 <= padding < world
    assert sum(c - 3 for c in counts.values()) == padding  # exactly 3 each, plus < world wrap-around pads


def test_ranks_split_the_global_order_without_overlap():
    lists, samplers = _ranks(12, 2, epoch=1, epoch_mode="repeats")
    order = samplers[0].global_order().tolist()
    interleaved = [lists[p % 2][p // 2] for p in range(len(order))]
    assert interleaved == order  # position p goes to rank p % world: no position is dealt twice
    # The three copies of an image are spread over both ranks.
    for i in range(12):
        assert {r for r in range(2) if i in lists[r]} == {0, 1}


@pytest.mark.parametrize("world", [1, 2])
def test_dataset_mode_keeps_the_epoch_length(world):
    n = 30
    lists, _ = _ranks(n, world, epoch=0, epoch_mode="dataset")
    drawn = [i for x in lists for i in x]
    assert len(drawn) == n  # as long as a plain epoch
    counts = Counter(drawn)
    assert sum(c != 3 for c in counts.values()) <= 1  # whole groups of 3 (one may be cut at the end)
    assert len(counts) == pytest.approx(n / 3, abs=1)


def test_epochs_reshuffle_deterministically_and_errors():
    a = RepeatedAugSampler(20, seed=3)
    a.set_epoch(0)
    first = list(a)
    a.set_epoch(1)
    assert list(a) != first
    b = RepeatedAugSampler(20, seed=3)
    b.set_epoch(0)
    assert list(b) == first
    plain = RepeatedAugSampler(5, num_repeats=1, shuffle=False, epoch_mode="repeats")
    assert list(plain) == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="rank"):
        RepeatedAugSampler(5, rank=2, world_size=2)
    with pytest.raises(ValueError, match="epoch_mode"):
        RepeatedAugSampler(5, epoch_mode="all")
    with pytest.raises(ValueError, match="empty"):
        RepeatedAugSampler(0)
