"""The converter against a small re-statement of the original ``SoundNetRaw`` layout (seq-first transformer,
``start``/``down``/``down2``/``tf`` names, per-channel blur buffers), written here from the paper's description."""

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from miil.audio import (
    EAT,
    EATConfig,
    config_from_original,
    convert_original_state_dict,
    load_original_checkpoint,
    original_num_heads,
)
from miil.core.errors import UserError
from miil.core.io import KeyMappingError


class _Blur(nn.Module):
    def __init__(self, channels, stride):
        super().__init__()
        k = 2 * stride + 1
        half = torch.arange(1, k // 2 + 2, dtype=torch.float32)
        taps = torch.cat([half, half.flip(0)[1:]])
        self.register_buffer("filt", (taps / taps.sum()).view(1, 1, -1).repeat(channels, 1, 1))
        self.k, self.stride = k, stride

    def forward(self, x):
        x = F.pad(x, (self.k // 2, self.k // 2), mode="reflect")
        return F.conv1d(x, self.filt, stride=self.stride, groups=x.shape[1])


class _Down(nn.Module):
    def __init__(self, c, d):
        super().__init__()
        self.down = nn.Sequential(
            nn.ReflectionPad1d((d + 1) // 2),
            nn.Conv1d(c, 2 * c, d + 1, bias=False),
            nn.BatchNorm1d(2 * c),
            nn.LeakyReLU(0.2),
            _Blur(2 * c, d),
        )

    def forward(self, x):
        return self.down(x)


class _Res(nn.Module):
    def __init__(self, c, dil, k=15):
        super().__init__()
        self.block_t = nn.Sequential(
            nn.ReflectionPad1d(dil * (k // 2)),
            nn.Conv1d(c, c, k, dilation=dil, groups=c, bias=False),
            nn.BatchNorm1d(c),
            nn.LeakyReLU(0.2),
        )
        self.block_f = nn.Sequential(nn.Conv1d(c, c, 1, bias=False), nn.BatchNorm1d(c), nn.LeakyReLU(0.2))
        self.shortcut = nn.Conv1d(c, c, 1)

    def forward(self, x):
        return self.shortcut(x) + self.block_f(x) + self.block_t(x)


class _Agg(nn.Module):
    def __init__(self, tokens, emb, layers, heads, ff, classes):
        super().__init__()
        layer = nn.TransformerEncoderLayer(emb, heads, ff, 0.1, activation="gelu")  # seq-first, post-norm
        self.transformer_enc = nn.TransformerEncoder(layer, layers, norm=nn.LayerNorm(emb), enable_nested_tensor=False)
        self.cls_token = nn.Parameter(torch.randn(1, 1, emb))
        self.pos_embed = nn.Parameter(torch.randn(1, tokens + 1, emb))
        self.fc = nn.Linear(emb, classes)

    def forward(self, x):
        x = x.permute(0, 2, 1)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], 1) + self.pos_embed
        return self.fc(self.transformer_enc(x.transpose(0, 1))[0])


class ReferenceEAT(nn.Module):
    def __init__(self, nf=4, emb=16, layers=2, heads=2, ff=32, factors=(2, 2), classes=5, tokens=64):
        super().__init__()
        self.start = nn.Sequential(
            nn.ReflectionPad1d(3), nn.Conv1d(1, nf, 7, bias=False), nn.BatchNorm1d(nf), nn.LeakyReLU(0.2)
        )
        down = []
        for i, f in enumerate(factors):
            down.append(_Down(nf, f))
            nf *= 2
            if i % 2 == 0:
                down.append(_Res(nf, 1))
        self.down = nn.Sequential(*down)
        down2 = []
        for f in (2, 2):
            down2 += [_Res(nf, 3**j) for j in range(3)] + [_Down(nf, f)]
            nf *= 2
        self.down2 = nn.Sequential(*down2)
        self.project = nn.Conv1d(nf, emb, 1)
        self.tf = _Agg(tokens, emb, layers, heads, ff, classes)

    def forward(self, x):
        return self.tf(self.project(self.down2(self.down(self.start(x)))))


def _randomised_reference(seed=0, **kw):
    torch.manual_seed(seed)
    ref = ReferenceEAT(**kw)
    with torch.no_grad():
        for name, t in ref.state_dict().items():
            if name.endswith("filt") or name.endswith("num_batches_tracked"):
                continue
            if name.endswith("running_var"):
                t.uniform_(0.5, 2.0)
            else:
                t.normal_(0, 0.2)
    return ref.eval()


def test_converted_original_gives_identical_outputs():
    ref = _randomised_reference()
    sd = ref.state_dict()
    cfg, classes, seq_len = config_from_original(sd, num_heads=2)
    assert cfg == EATConfig(base_channels=4, embed_dim=16, mlp_dim=32, depth=2, num_heads=2, ds_factors=(2, 2))
    assert (classes, seq_len) == (5, 1024)
    ours = EAT(num_classes=classes, seq_len=seq_len, config=cfg)
    ours.load_state_dict(convert_original_state_dict(sd, model=ours), strict=True)
    ours.eval()
    x = torch.randn(3, 1, 1024)
    with torch.no_grad():
        assert torch.allclose(ours(x), ref(x), atol=1e-5, rtol=1e-4)


def test_original_checkpoint_files_load_strictly(tmp_path):
    ref = _randomised_reference(seed=1, factors=(4, 4), emb=128, heads=8, layers=1, ff=64, tokens=64)
    dp = {f"module.{k}": v for k, v in ref.state_dict().items()}  # saved from DataParallel
    torch.save({"model_dict": dp, "opt_dict": {"state": {}}, "steps": 7}, tmp_path / "chkpnt.pt")
    torch.save(ref.state_dict(), tmp_path / "best_model.pt")
    x = torch.randn(2, 1, 4096)
    for name in ("chkpnt.pt", "best_model.pt"):
        model = load_original_checkpoint(tmp_path / name).eval()  # 8 heads read from the width-128 config
        assert model.config.num_heads == 8 and model.config.ds_factors == (4, 4)
        with torch.no_grad():
            assert torch.allclose(model(x), ref(x), atol=1e-5, rtol=1e-4)


def test_conversion_refuses_incomplete_or_foreign_weights():
    ref = _randomised_reference()
    sd = ref.state_dict()
    cfg, classes, seq_len = config_from_original(sd, num_heads=2)
    ours = EAT(num_classes=classes, seq_len=seq_len, config=cfg)
    broken = {k: v for k, v in sd.items() if k != "project.bias"}
    with pytest.raises(KeyMappingError, match="project.bias"):
        convert_original_state_dict(broken, model=ours)
    with pytest.raises(KeyMappingError, match="extra.weight"):
        convert_original_state_dict({**sd, "extra.weight": torch.zeros(1)}, model=ours)
    bad_blur = dict(sd)
    bad_blur["down.0.down.4.filt"] = torch.ones_like(sd["down.0.down.4.filt"])
    with pytest.raises(ValueError, match="blur"):
        convert_original_state_dict(bad_blur, model=ours)
    with pytest.raises(UserError, match="num_heads=N"):
        config_from_original(sd)  # width 16 is no published config
    with pytest.raises(KeyError, match="SoundNetRaw"):
        config_from_original({"conv.weight": torch.zeros(1)})


# The head of the yaml the original trainer dumps (``yaml.dump(args)`` of its argparse namespace), trimmed.
_ARGS_YML = """!!python/object:argparse.Namespace
amp: true
ds_factors:
- 2
- 2
emb_dim: {emb}
load_path: null
n_head: {heads}
n_layers: 2
save_path: !!python/object/apply:pathlib.PosixPath
- runs
"""


def test_head_count_is_read_from_the_original_runs_args(tmp_path):
    ref = _randomised_reference(seed=3, heads=4)  # width 16: not a published EAT size
    torch.save(ref.state_dict(), tmp_path / "best_model.pt")
    with pytest.raises(UserError, match=r"best_model\.pt.*--num-heads N"):
        load_original_checkpoint(tmp_path / "best_model.pt")
    (tmp_path / "args.yml").write_text(_ARGS_YML.format(emb=16, heads=4))
    assert original_num_heads(tmp_path / "best_model.pt", embed_dim=16) == 4
    model = load_original_checkpoint(tmp_path / "best_model.pt").eval()
    assert model.config.num_heads == 4
    x = torch.randn(2, 1, 1024)
    with torch.no_grad():
        assert torch.allclose(model(x), ref(x), atol=1e-5, rtol=1e-4)
    assert load_original_checkpoint(tmp_path / "best_model.pt", num_heads=2).config.num_heads == 2  # given wins
    (tmp_path / "args.yml").write_text(_ARGS_YML.format(emb=32, heads=4))
    with pytest.raises(UserError, match="another run"):
        load_original_checkpoint(tmp_path / "best_model.pt")
    with pytest.raises(UserError, match="does not divide"):
        config_from_original(ref.state_dict(), num_heads=3)
