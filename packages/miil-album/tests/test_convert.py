"""Strict conversion of the original PETA checkpoint layout: identical outputs, every key accounted for."""

import re

import pytest
import torch
from timm.models.tresnet import TResNet

from miil.album import (
    PETA,
    AlbumTransformer,
    convert_peta_aggregator_state_dict,
    convert_peta_state_dict,
    load_peta_aggregator_checkpoint,
    load_peta_checkpoint,
    peta_classes,
)
from miil.core.io import KeyMappingError

TINY_TRESNET = dict(layers=[1, 1, 1, 1], width_factor=0.125)


def _tiny_peta(pos_embed: bool = True, seed: int = 0) -> PETA:
    torch.manual_seed(seed)
    model = PETA(
        TResNet,
        backbone_kwargs=TINY_TRESNET,
        num_classes=4,
        depth=2,
        num_heads=4,
        ffn_dim=32,
        pos_embed=pos_embed,
        max_images=6,
    )
    return randomize_batchnorm(model).eval()


@torch.no_grad()
def randomize_batchnorm(model: torch.nn.Module) -> torch.nn.Module:
    """Non-trivial BatchNorm state, with weights as InPlaceABN yields them (|w| + 1e-5 > 0, exactly)."""
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.weight.copy_(torch.rand_like(module.weight).add(0.5).abs().add(1e-5))
            module.bias.normal_(0, 0.1)
            module.running_mean.normal_(0, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    return model


def _has_aa(model: PETA, block_key: str) -> bool:
    module = model.backbone.model.get_submodule(block_key)
    aa = getattr(module, "aa", None)
    return isinstance(aa, torch.nn.Module) and not isinstance(aa, torch.nn.Identity)


def _original_layout(model: PETA) -> dict[str, torch.Tensor]:
    """Our weights under the original fTResNet + TAggregate key names (InPlaceABN: w_orig with |w_orig|+1e-5 = w)."""
    out = {}
    for key, value in model.state_dict().items():
        if key.endswith("num_batches_tracked"):
            continue  # InPlaceABN keeps no counter
        if key.startswith("backbone.model.body."):
            rest = key[len("backbone.model.") :]
            m = re.fullmatch(r"(.*\.)?(conv\d+|downsample\.\d+)\.(conv|bn)\.(.+)", rest)
            if m is None:  # squeeze-excitation convs keep their names
                out[rest] = value.clone()
                continue
            prefix, name, part, leaf = m.groups()
            prefix = prefix or ""
            idx = "0" if part == "conv" else "1"
            module_key = f"{prefix}{name}"
            nested = name.startswith("conv") and _has_aa(model, module_key)
            new = f"{prefix}{name}.0.{idx}.{leaf}" if nested else f"{prefix}{name}.{idx}.{leaf}"
            if part == "bn" and leaf == "weight":
                value = value - 1e-5
            out[new] = value.clone()
        elif key.startswith("head."):
            out["head.fc." + key[len("head.") :]] = value.clone()
        elif key.startswith("aggregator.layers."):
            out["aggregate.transformer_enc.layers." + key[len("aggregator.layers.") :]] = value.clone()
        elif key.startswith("aggregator.norm."):
            out["aggregate.transformer_enc.norm." + key[len("aggregator.norm.") :]] = value.clone()
        else:
            out["aggregate." + key[len("aggregator.") :]] = value.clone()
    if "aggregate.pos_embed" not in out:  # the original always stores it
        out["aggregate.pos_embed"] = torch.randn(1, model.aggregator.max_images + 1, model.aggregator.dim)
    return out


def _album():
    torch.manual_seed(7)
    images = torch.rand(2, 5, 3, 32, 32)
    mask = torch.tensor([[True] * 5, [True, True, True, False, False]])
    return images, mask


@pytest.mark.parametrize("pos_embed", [True, False])
def test_converted_original_checkpoint_gives_identical_outputs(pos_embed, tmp_path):
    reference = _tiny_peta(pos_embed)
    original = _original_layout(reference)
    assert "body.layer2.0.conv1.0.0.weight" in original and "body.conv1.1.running_var" in original
    assert "aggregate.transformer_enc.layers.1.self_attn.in_proj_weight" in original
    path = tmp_path / "peta_tiny.pth"
    torch.save({"model": original, "idx_to_class": {0: "Birthday", 1: "Show", 2: "Zoo", 3: "Cruise"}}, path)
    fresh = _tiny_peta(pos_embed, seed=1)
    classes = load_peta_checkpoint(path, fresh)
    assert classes == ["Birthday", "Show", "Zoo", "Cruise"]
    images, mask = _album()
    with torch.no_grad():
        expected, att_expected = reference(images, mask, return_attention=True)
        got, att_got = fresh(images, mask, return_attention=True)
    assert torch.equal(got, expected) and torch.equal(att_got, att_expected)


def test_ddp_prefix_and_classes_helper():
    reference = _tiny_peta()
    original = {f"module.{k}": v for k, v in _original_layout(reference).items()}
    fresh = _tiny_peta(seed=2)
    assert load_peta_checkpoint({"model": original}, fresh) is None
    for key, value in reference.state_dict().items():
        torch.testing.assert_close(fresh.state_dict()[key], value, rtol=0, atol=0, msg=key)
    assert peta_classes({"idx_to_class": {"1": "b", "0": "a"}}) == ["a", "b"]


def test_conversion_is_strict():
    model = _tiny_peta()
    original = _original_layout(model)
    extra = dict(original, **{"aggregate.unknown": torch.zeros(1)})
    with pytest.raises(KeyMappingError, match="aggregate.unknown"):
        convert_peta_state_dict(extra, model)
    missing = {k: v for k, v in original.items() if "layers.1.linear2.bias" not in k}
    with pytest.raises(KeyMappingError, match="linear2.bias"):
        convert_peta_state_dict(missing, model)
    wrong = dict(original, **{"head.fc.weight": torch.zeros(7, model.aggregator.dim)})
    with pytest.raises(KeyMappingError, match="head.weight"):
        convert_peta_state_dict(wrong, model)
    not_tresnet = PETA("test_resnet", num_classes=4, depth=1, num_heads=4, ffn_dim=8)
    with pytest.raises(TypeError, match="TResNet"):
        convert_peta_state_dict(original, not_tresnet)


class _OriginalAggregate(torch.nn.Module):
    """The original PETA ``TAggregate`` in its key layout: CLS, positions (stored even when unused), PyTorch's
    sequence-first post-norm encoder with a final norm; ``forward`` as the original's (positions optional)."""

    def __init__(self, clip_length: int, dim: int, depth: int, use_positions: bool):
        super().__init__()
        layer = torch.nn.TransformerEncoderLayer(d_model=dim, nhead=4, dim_feedforward=24)
        norm = torch.nn.LayerNorm(dim)
        self.transformer_enc = torch.nn.TransformerEncoder(layer, depth, norm=norm, enable_nested_tensor=False)
        self.cls_token = torch.nn.Parameter(torch.randn(1, 1, dim))
        self.pos_embed = torch.nn.Parameter(torch.randn(1, clip_length + 1, dim))
        self.use_positions = use_positions

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.cat((self.cls_token.expand(x.shape[0], -1, -1), x), dim=1)
        if self.use_positions:
            x = x + self.pos_embed
        return self.transformer_enc(x.transpose(0, 1))[0]


@pytest.mark.parametrize("pos_embed", [True, False])
def test_original_aggregator_alone_gives_identical_outputs(pos_embed, tmp_path):
    torch.manual_seed(11)
    original = _OriginalAggregate(clip_length=6, dim=16, depth=2, use_positions=pos_embed).eval()
    assert "transformer_enc.layers.1.self_attn.out_proj.weight" in original.state_dict()
    path = tmp_path / "aggregate.pth"
    torch.save({"model": original.state_dict()}, path)
    module = AlbumTransformer(16, depth=2, num_heads=4, ffn_dim=24, pos_embed=pos_embed, max_images=6).eval()
    load_peta_aggregator_checkpoint(path, module)
    embeddings = torch.randn(3, 6, 16)
    with torch.no_grad():
        torch.testing.assert_close(module(embeddings), original(embeddings), atol=1e-5, rtol=1e-5)
    # The aggregator part of a full original checkpoint converts the same way.
    prefixed = {f"aggregate.{k}": v for k, v in original.state_dict().items()}
    assert convert_peta_aggregator_state_dict(prefixed, module).keys() == module.state_dict().keys()


def test_original_aggregator_alone_is_strict():
    original = _OriginalAggregate(clip_length=6, dim=16, depth=2, use_positions=True).state_dict()
    module = AlbumTransformer(16, depth=2, num_heads=4, ffn_dim=24, pos_embed=True, max_images=6)
    with pytest.raises(KeyMappingError, match=r"missing.*\n\s+layers\.0\.norm2\.bias"):
        convert_peta_aggregator_state_dict(
            {k: v for k, v in original.items() if k != "transformer_enc.layers.0.norm2.bias"}, module
        )
    with pytest.raises(KeyMappingError, match="body.conv1"):
        convert_peta_aggregator_state_dict({**original, "body.conv1.0.weight": torch.zeros(1)}, module)
    longer = AlbumTransformer(16, depth=2, num_heads=4, ffn_dim=24, pos_embed=True, max_images=8)
    with pytest.raises(KeyMappingError, match="shape"):  # PETA's positions are not interpolated
        convert_peta_aggregator_state_dict(original, longer)
    with pytest.raises(TypeError, match="AlbumTransformer"):
        convert_peta_aggregator_state_dict(original, torch.nn.Linear(2, 2))
