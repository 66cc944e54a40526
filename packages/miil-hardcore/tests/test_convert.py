"""Converters of the original HardCoReNAS checkpoints: key layouts rebuilt from the original module definitions.

The original code (github Alibaba-MIIL/HardCoReNAS, ``timm/models/mobilenasnet.py``) names a supernet's searched
block ``blocks.<stage + 1>.<block>`` with ``_alpha`` [options], ``conv_pw``, ``bn1``, ``conv_dw.<kernel index>``,
``bn2.<kernel index>``, ``se.1.conv_reduce`` / ``se.1.conv_expand`` (one SE at the largest expansion, masked for the
smaller ones; ``se.0`` is the parameter-free identity), ``conv_pwl`` and ``bn3.<expansion index * 2 + se>``; the
stage depth logits are ``beta.<stage>``. The tests build such state dicts from our modules' weights, convert them and
compare outputs, and check a masked reference forward of the original block written from those definitions.
"""

import json

import numpy as np
import pytest
import timm
import torch
import torch.nn as nn
import torch.nn.functional as F

from miil.core.cli import main
from miil.core.io import KeyMappingError
from miil.hardcore import (
    HARDCORENAS_ARCH_DEFS,
    HardCoReSupernet,
    SearchSpace,
    build_child,
    convert_original_child,
    convert_original_supernet,
    detect_original_layout,
    fixed_paths,
    infer_child_architecture,
    load_child,
    load_supernet,
    original_state_dict,
    supernet_from_heaviest,
)
from miil.hardcore.search_space import Architecture


def _randomise(model: nn.Module, seed: int = 0) -> nn.Module:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.3)
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=gen) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)
                m.num_batches_tracked.fill_(7)
    return model.eval()


def _tie_se(net: HardCoReSupernet) -> None:
    """Make every expansion's SE the slice of the largest one, as the original's single masked SE is."""
    with torch.no_grad():
        for stage in net.stages:
            for block in stage:
                full = block.se[-1]
                for se in block.se[:-1]:
                    rd, mid = se.conv_reduce.weight.shape[:2]
                    se.conv_reduce.weight.copy_(full.conv_reduce.weight[:rd, :mid])
                    se.conv_reduce.bias.copy_(full.conv_reduce.bias[:rd])
                    se.conv_expand.weight.copy_(full.conv_expand.weight[:mid, :rd])
                    se.conv_expand.bias.copy_(full.conv_expand.bias[:mid])


def _original_supernet(net: HardCoReSupernet, alpha=None, beta=None) -> dict[str, torch.Tensor]:
    """The original ``MobileNasNet`` state dict carrying ``net``'s weights (its largest-expansion SE as ``se.1``)."""
    space = net.space
    last = len(space.expansions) - 1
    out = {}
    for key, value in net.state_dict().items():
        head, _, rest = key.partition(".")
        if head == "stem_block":
            out[f"blocks.0.0.{rest}"] = value
        elif head == "head_block":
            out[f"blocks.{space.num_stages + 1}.0.{rest}"] = value
        elif head == "stages":
            s, j, name = rest.split(".", 2)
            if name.startswith("se."):
                ie, tail = name[3:].split(".", 1)
                if int(ie) == last:
                    out[f"blocks.{int(s) + 1}.{j}.se.1.{tail}"] = value
            else:
                out[f"blocks.{int(s) + 1}.{j}.{name}"] = value
        else:
            out[key] = value
    for s in range(space.num_stages):
        for j in range(space.max_depth):
            out[f"blocks.{s + 1}.{j}._alpha"] = (
                torch.full((space.num_options,), 1.0 / space.num_options) if alpha is None else alpha[s, j]
            )
        out[f"beta.{s}"] = torch.full((len(space.depths),), 1.0 / 3) if beta is None else beta[s]
    return {k: v.clone() for k, v in out.items()}


def test_original_layout_of_the_paper_space():
    """Names and shapes of one elastic block, written from the original definitions (in 24, out 24, e 3/4/6)."""
    space = SearchSpace()
    net = HardCoReSupernet(space, num_classes=10)
    sd = _original_supernet(net)
    shapes = {k[len("blocks.1.1.") :]: tuple(v.shape) for k, v in sd.items() if k.startswith("blocks.1.1.")}
    bn = lambda n, c: {f"{n}.{s}": (c,) for s in ("weight", "bias", "running_mean", "running_var")}  # noqa: E731
    expected = {
        "_alpha": (12,),
        "conv_pw.weight": (144, 24, 1, 1),
        **bn("bn1", 144),
        "conv_dw.0.weight": (144, 1, 3, 3),
        "conv_dw.1.weight": (144, 1, 5, 5),
        **bn("bn2.0", 144),
        **bn("bn2.1", 144),
        "se.1.conv_reduce.weight": (40, 144, 1, 1),
        "se.1.conv_reduce.bias": (40,),
        "se.1.conv_expand.weight": (144, 40, 1, 1),
        "se.1.conv_expand.bias": (144,),
        "conv_pwl.weight": (24, 144, 1, 1),
        **{k: v for n in range(6) for k, v in bn(f"bn3.{n}", 24).items()},
    }
    assert {k: v for k, v in shapes.items() if not k.endswith("num_batches_tracked")} == expected
    assert tuple(sd["beta.4"].shape) == (3,) and "blocks.6.0.conv.weight" in sd and "blocks.0.0.conv_pw.weight" in sd
    assert detect_original_layout(sd) == "supernet"
    converted = convert_original_supernet(sd, space)
    ours = net.state_dict()
    assert set(converted.state_dict) == set(ours)
    assert all(torch.equal(converted.state_dict[k], ours[k]) for k in ours if ".se." not in k)


def _make_divisible(v: float) -> int:
    out = max(8, int(v + 4) // 8 * 8)
    return out + 8 if out < 0.9 * v else out


def _original_block(sd, pre, x, *, option, space, geo):
    """The original elastic block with one option active: full-width tensors, channels masked (not sliced)."""
    choice = space.options[option]
    ie, ik = space.expansions.index(choice.expansion), space.kernels.index(choice.kernel)
    act = F.relu if geo["act"] == "relu" else F.hardswish

    def bn(h, name):
        return F.batch_norm(
            h, sd[f"{name}.running_mean"], sd[f"{name}.running_var"], sd[f"{name}.weight"], sd[f"{name}.bias"]
        )

    w_pw = sd[f"{pre}.conv_pw.weight"]
    max_mid, mid = w_pw.shape[0], _make_divisible(x.shape[1] * choice.expansion)
    h = act(bn(F.conv2d(x, w_pw), f"{pre}.bn1"))
    k = choice.kernel
    g = F.conv2d(h, sd[f"{pre}.conv_dw.{ik}.weight"], stride=geo["stride"], padding=k // 2, groups=max_mid)
    mask = torch.zeros(1, max_mid, 1, 1)
    mask[:, :mid] = 1
    g = act(bn(g, f"{pre}.bn2.{ik}") * mask)
    if choice.se:
        w_r = sd[f"{pre}.se.1.conv_reduce.weight"]
        rd_mask = torch.zeros(1, w_r.shape[0], 1, 1)
        rd_mask[:, : _make_divisible(mid / 4)] = 1
        z = F.conv2d(g.mean((2, 3), keepdim=True), w_r, sd[f"{pre}.se.1.conv_reduce.bias"]) * rd_mask
        z = F.conv2d(F.relu(z), sd[f"{pre}.se.1.conv_expand.weight"], sd[f"{pre}.se.1.conv_expand.bias"])
        g = g * F.relu6(z + 3) / 6
    y = bn(F.conv2d(g, sd[f"{pre}.conv_pwl.weight"]), f"{pre}.bn3.{ie * 2 + int(choice.se)}")
    skip = geo["stride"] == 1 and geo["in_channels"] == geo["out_channels"]
    return y + x if skip else y


def test_converted_block_matches_the_masked_original(tiny_space):
    """Every option of a converted block computes what the original's masked block computes."""
    net = _randomise(HardCoReSupernet(tiny_space, num_classes=3), seed=1)
    sd = _original_supernet(net)  # its SE is used masked for every expansion, independently of our smaller SEs
    converted = HardCoReSupernet(tiny_space, num_classes=3).eval()
    converted.load_state_dict(convert_original_supernet(sd, tiny_space).state_dict)
    for s, j in ((0, 0), (1, 1)):
        geo = tiny_space.block_geometry(s, j)
        x = torch.randn(2, geo["in_channels"], geo["resolution"], geo["resolution"])
        for option in range(tiny_space.num_options):
            weights = F.one_hot(torch.tensor([option, option]), tiny_space.num_options).float()
            with torch.no_grad():
                ours = converted.stages[s][j](x, weights)
                ref = _original_block(sd, f"blocks.{s + 1}.{j}", x, option=option, space=tiny_space, geo=geo)
            torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)


def test_supernet_round_trip_identical_outputs(tiny_space):
    net = _randomise(HardCoReSupernet(tiny_space, num_classes=3), seed=2)
    _tie_se(net)
    gen = torch.Generator().manual_seed(0)
    alpha = torch.randn(*tiny_space.alpha_shape, generator=gen)
    beta = torch.randn(*tiny_space.beta_shape, generator=gen)
    wrapped = {"state_dict": {f"module.{k}": v for k, v in _original_supernet(net, alpha, beta).items()}, "epoch": 3}
    result = convert_original_supernet(original_state_dict(wrapped), tiny_space)
    restored = HardCoReSupernet(tiny_space, num_classes=3).eval()
    restored.load_state_dict(result.state_dict)
    assert all(torch.equal(v, result.state_dict[k]) for k, v in net.state_dict().items())
    torch.testing.assert_close(torch.as_tensor(result.alpha, dtype=torch.float32), alpha)
    torch.testing.assert_close(torch.as_tensor(result.beta, dtype=torch.float32), beta)
    assert result.architecture(tiny_space) == tiny_space.from_alpha_beta(alpha.numpy(), beta.numpy())
    x = torch.randn(3, 3, 16, 16)
    rng = np.random.default_rng(0)
    with torch.no_grad():
        for arch in [tiny_space.heaviest(), *(tiny_space.random_architecture(rng) for _ in range(3))]:
            paths = fixed_paths(tiny_space, arch, 3)
            torch.testing.assert_close(restored(x, paths), net(x, paths), rtol=0, atol=0)


def test_supernet_errors_name_the_keys(tiny_space):
    sd = _original_supernet(HardCoReSupernet(tiny_space, num_classes=3))
    missing = {k: v for k, v in sd.items() if k != "blocks.2.1.bn2.0.running_var"}
    with pytest.raises(KeyMappingError, match=r"stages\.1\.1\.bn2\.0\.running_var"):
        convert_original_supernet(missing, tiny_space)
    with pytest.raises(KeyMappingError, match=r"blocks\.1\.0\.conv_extra\.weight"):
        convert_original_supernet({**sd, "blocks.1.0.conv_extra.weight": torch.zeros(1)}, tiny_space)
    with pytest.raises(KeyMappingError, match=r"unmapped.*\n.*blocks\.1\.0\.se\.0\.conv_reduce\.weight"):
        convert_original_supernet({**sd, "blocks.1.0.se.0.conv_reduce.weight": torch.zeros(1)}, tiny_space)
    with pytest.raises(KeyMappingError, match=r"blocks\.1\.0\.conv_pw\.weight\): got \[4, 8, 1, 1\]"):
        convert_original_supernet({**sd, "blocks.1.0.conv_pw.weight": torch.zeros(4, 8, 1, 1)}, tiny_space)
    with pytest.raises(ValueError, match="use_dedicated_pwl_se"):
        convert_original_supernet({**sd, "blocks.1.0.conv_pwl.0.weight": torch.zeros(1)}, tiny_space)
    shared = {
        k: v for k, v in sd.items() if not (k.startswith("blocks.1.0.bn3.") and not k.startswith("blocks.1.0.bn3.0"))
    }
    with pytest.raises(ValueError, match=r"blocks\.1\.0 has 1 output BN"):
        convert_original_supernet(shared, tiny_space)
    with pytest.raises(ValueError, match=r"beta\.1"):
        convert_original_supernet({k: v for k, v in sd.items() if k != "beta.1"}, tiny_space)


def test_unwrapping_teacher_student_and_ema(tiny_space):
    sd = {"conv_stem.weight": torch.ones(1), "blocks.0.0.conv_dw.weight": torch.ones(1)}
    ikd = {**{f"module1.{k}": v * 2 for k, v in sd.items()}, **{f"module2.{k}": v for k, v in sd.items()}}
    assert torch.equal(original_state_dict({"state_dict": ikd})["conv_stem.weight"], torch.ones(1))
    assert torch.equal(original_state_dict(ikd, part="teacher")["conv_stem.weight"], 2 * torch.ones(1))
    ema = {"state_dict": sd, "state_dict_ema": {k: v * 3 for k, v in sd.items()}}
    assert torch.equal(original_state_dict(ema, use_ema=True)["conv_stem.weight"], 3 * torch.ones(1))
    with pytest.raises(ValueError, match="module1./module2."):
        original_state_dict(sd, part="teacher")
    with pytest.raises(KeyError, match="state_dict_ema"):
        original_state_dict(sd, use_ema=True)


def test_child_conversion_infers_the_architecture(tiny_space):
    arch = Architecture(((8, 3, 11), (1, 6)))
    child = _randomise(build_child(tiny_space, arch, num_classes=3), seed=3)
    sd = {k: v for k, v in child.state_dict().items() if not k.endswith("num_batches_tracked")}  # old PyTorch files
    assert {"blocks.0.0.conv_dw.weight", "blocks.3.0.conv.weight", "blocks.1.2.se.conv_reduce.weight"} <= set(sd)
    assert detect_original_layout(sd) == "child"
    converted, found = convert_original_child(sd, tiny_space)
    assert found == arch
    restored = build_child(tiny_space, found, num_classes=3).eval()
    restored.load_state_dict(converted)
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(restored(x), child(x), rtol=0, atol=0)
    with pytest.raises(KeyMappingError, match=r"blocks\.1\.0\.conv_pwl\.weight"):
        convert_original_child(
            {k: v for k, v in sd.items() if k != "blocks.1.0.conv_pwl.weight"}, tiny_space, arch=arch
        )
    with pytest.raises(ValueError, match=r"blocks\.1\.0\.conv_pw\.weight maps 8 -> 40"):
        infer_child_architecture({**sd, "blocks.1.0.conv_pw.weight": torch.zeros(40, 8, 1, 1)}, tiny_space)


@pytest.mark.parametrize("name", ["hardcorenas_a", "hardcorenas_f"])
def test_published_children_are_recognised(name):
    """The README's Green checkpoints are timm's hardcorenas_* weights: the layout and architecture are read back."""
    space = SearchSpace(image_size=32)
    sd = timm.create_model(name, pretrained=False, num_classes=10).state_dict()
    converted, arch = convert_original_child(sd, space)
    assert space.arch_def(arch) == HARDCORENAS_ARCH_DEFS[name]
    assert all(torch.equal(converted[k], v) for k, v in sd.items())


def test_heaviest_network_embeds_into_the_supernet(tiny_space):
    heavy = _randomise(build_child(tiny_space, tiny_space.heaviest(), num_classes=3), seed=4)
    result = supernet_from_heaviest(heavy.state_dict(), tiny_space)
    net = HardCoReSupernet(tiny_space, num_classes=3).eval()
    net.load_state_dict(result.state_dict)
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(net(x, fixed_paths(tiny_space, tiny_space.heaviest(), 2)), heavy(x))
    assert result.initialised == [f"stages.{s}.{j}.conv_dw.0.weight" for s in range(2) for j in range(4)]
    sd = result.state_dict
    assert torch.equal(sd["stages.1.2.bn3.0.running_mean"], heavy.state_dict()["blocks.2.2.bn3.running_mean"])
    assert torch.equal(sd["stages.1.2.bn2.0.weight"], heavy.state_dict()["blocks.2.2.bn2.weight"])
    rd, mid = sd["stages.0.1.se.0.conv_reduce.weight"].shape[:2]
    assert torch.equal(sd["stages.0.1.se.0.conv_reduce.weight"], sd["stages.0.1.se.2.conv_reduce.weight"][:rd, :mid])
    with pytest.raises(ValueError, match="not the heaviest"):
        supernet_from_heaviest(
            build_child(tiny_space, Architecture(((0, 0), (0, 0))), num_classes=3).state_dict(), tiny_space
        )


def test_convert_cli(tmp_path, tiny_space, capsys):
    space_file = tmp_path / "space.json"
    space_file.write_text(json.dumps(tiny_space.to_dict()))
    net = _randomise(HardCoReSupernet(tiny_space, num_classes=3), seed=5)
    _tie_se(net)
    arch = Architecture(((11, 2), (5, 7, 9)))
    alpha, beta = (torch.as_tensor(a, dtype=torch.float32) for a in tiny_space.alpha_beta(arch))
    torch.save(_original_supernet(net, alpha, beta), tmp_path / "w_star.pth")
    dst = tmp_path / "w_star.safetensors"
    assert main(["hardcore", "convert", str(tmp_path / "w_star.pth"), str(dst), "--space", str(space_file)]) == 0
    meta = json.loads(dst.with_suffix(".json").read_text())
    assert meta["kind"] == "supernet" and meta["argmax_arch_def"] == tiny_space.arch_def(arch)
    x = torch.randn(2, 3, 16, 16)
    paths = fixed_paths(tiny_space, arch, 2)
    with torch.no_grad():
        torch.testing.assert_close(load_supernet(dst).eval()(x, paths), net(x, paths), rtol=0, atol=0)
        child_dst = tmp_path / "child.safetensors"
        argv = ["hardcore", "convert", str(tmp_path / "w_star.pth"), str(child_dst), "--space", str(space_file)]
        assert main([*argv, "--kind", "child"]) == 0
        child, info = load_child(child_dst)
        assert info["arch_def"] == tiny_space.arch_def(arch)
        torch.testing.assert_close(child.eval()(x), net(x, paths), rtol=1e-6, atol=1e-6)

        other = Architecture(((0, 1), (2, 3, 4, 5)))
        assert main([*argv, "--kind", "child", "--arch", json.dumps(tiny_space.arch_def(other))]) == 0
        child, info = load_child(child_dst)
        paths = fixed_paths(tiny_space, other, 2)
        assert info["arch_def"] == tiny_space.arch_def(other)
        torch.testing.assert_close(child.eval()(x), net(x, paths), rtol=1e-6, atol=1e-6)

        heavy = _randomise(build_child(tiny_space, tiny_space.heaviest(), num_classes=3), seed=6)
        torch.save({"state_dict": heavy.state_dict()}, tmp_path / "w_heaviest.pth")
        argv = ["hardcore", "convert", str(tmp_path / "w_heaviest.pth"), str(tmp_path / "heavy.safetensors")]
        assert main([*argv, "--space", str(space_file), "--kind", "supernet"]) == 0
        assert "keep their initialisation" in capsys.readouterr().out
        heavy_net = load_supernet(tmp_path / "heavy.safetensors").eval()
        torch.testing.assert_close(heavy_net(x, fixed_paths(tiny_space, tiny_space.heaviest(), 2)), heavy(x))
