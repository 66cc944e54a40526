"""Search space as data: timm parity for hardcorenas_a ... _f, arch_def round trips, clear errors."""

import json

import numpy as np
import pytest
import timm

from miil.core.errors import UserError
from miil.hardcore import (
    HARDCORENAS_ARCH_DEFS,
    Architecture,
    SearchSpace,
    build_block,
    build_child,
    resolve_space,
)


@pytest.mark.parametrize("name", sorted(HARDCORENAS_ARCH_DEFS))
def test_timm_hardcorenas_parity(name):
    ours = build_child(SearchSpace(), name)
    theirs = timm.create_model(name, pretrained=False)
    assert str(ours) == str(theirs)
    ours_sd, theirs_sd = ours.state_dict(), theirs.state_dict()
    assert [(k, tuple(v.shape)) for k, v in ours_sd.items()] == [(k, tuple(v.shape)) for k, v in theirs_sd.items()]
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in theirs.parameters())
    # same structure means timm's weights load strictly and the outputs agree
    ours.load_state_dict(theirs_sd, strict=True)


def test_paper_space_size_and_shapes():
    space = SearchSpace()
    assert space.num_options == 12 and space.alpha_shape == (5, 4, 12) and space.beta_shape == (5, 3)
    assert np.prod(space.alpha_shape) == 240 and np.prod(space.beta_shape) == 15
    assert f"{space.size():.2e}" == "5.91e+21"
    # option index = 4 i_e + 2 i_k + i_se
    assert space.options[4 * 2 + 2 * 1 + 1].expansion == 6 and space.options[11].kernel == 5 and space.options[11].se


def test_arch_def_round_trip_and_alpha_beta(tiny_space):
    rng = np.random.default_rng(0)
    for _ in range(20):
        arch = tiny_space.random_architecture(rng)
        assert tiny_space.parse_arch_def(tiny_space.arch_def(arch)) == arch
        assert tiny_space.parse_arch_def(str(tiny_space.arch_def(arch))) == arch
        alpha, beta = tiny_space.alpha_beta(arch)
        assert np.allclose(alpha.sum(-1), 1) and np.allclose(beta.sum(-1), 1)
        assert tiny_space.from_alpha_beta(alpha, beta) == arch
    published = SearchSpace().parse_arch_def(HARDCORENAS_ARCH_DEFS["hardcorenas_b"])
    assert published.depths == (3, 3, 4, 4, 3)


def test_parse_errors_name_the_block(tiny_space):
    good = tiny_space.arch_def(tiny_space.heaviest())
    bad = [list(s) for s in good]
    bad[1][0] = bad[1][0].replace("_c8_", "_c9_")
    with pytest.raises(ValueError, match="_c9_"):
        tiny_space.parse_arch_def(bad)
    with pytest.raises(ValueError, match="stages"):
        tiny_space.parse_arch_def(good[:-1])
    with pytest.raises(ValueError, match="depths"):
        tiny_space.validate(Architecture(((0,), (0, 0))))


def test_block_builder_matches_child_blocks(tiny_space):
    arch = Architecture(((3, 11, 0), (7, 2)))
    child = build_child(tiny_space, arch, num_classes=5)
    for s, options in enumerate(arch.blocks):
        for j, option in enumerate(options):
            assert str(build_block(tiny_space, s, j, option)) == str(child.blocks[s + 1][j])


def test_space_serialisation_and_resolve(tmp_path, tiny_space):
    path = tmp_path / "space.json"
    path.write_text(json.dumps(tiny_space.to_dict()))
    assert resolve_space(str(path)) == tiny_space
    assert resolve_space(str(path), image_size=32).image_size == 32
    assert resolve_space(str(path), image_size=32).same_networks(tiny_space)
    with pytest.raises(UserError, match="neither a known name"):
        resolve_space(str(tmp_path / "missing.json"))
    with pytest.raises(ValueError, match="total stride"):
        SearchSpace(stages=SearchSpace().stages + (SearchSpace().stages[0],))
