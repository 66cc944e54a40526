"""A command with ``--seed`` starts from it: what it builds before training (initial weights) follows the seed."""

import argparse

import torch

from miil.core.cli import run_command


def _draws(seed) -> list[torch.Tensor]:
    out = []

    def command(args):
        out.append(torch.nn.Linear(4, 3).weight.detach().clone())  # initial weights, built before any engine
        return 0

    assert run_command(command, argparse.Namespace(seed=seed), "miil x train") == 0
    return out


def test_the_same_seed_builds_the_same_initial_weights_in_every_run():
    torch.manual_seed(123)
    first = _draws(7)[0]
    torch.rand(5)  # whatever ran before the command does not matter
    assert torch.equal(first, _draws(7)[0])
    assert not torch.equal(first, _draws(8)[0])


def test_commands_without_a_seed_leave_the_generators_alone():
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    run_command(lambda args: 0, argparse.Namespace(), "miil x validate")
    assert torch.equal(torch.rand(3), expected)
