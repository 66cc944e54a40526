"""Tests for miil.core.io: safe checkpoint loading, atomic writes, state-dict extraction and strict remapping."""

from __future__ import annotations

import argparse
import os
import pickle
import shlex
from collections import OrderedDict

import pytest
import torch
from safetensors import safe_open
from torch import nn

from miil.core.io import (
    KeyMappingError,
    UnsafeCheckpointError,
    atomic_torch_save,
    atomic_write_bytes,
    atomic_write_text,
    extract_state_dict,
    load_checkpoint,
    load_into,
    remap_state_dict,
    save_safetensors,
)


class _RunsShellOnLoad:
    """Unpickling this would run a shell command that creates a marker file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f"touch {shlex.quote(self.marker)}",)


def _small_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4, 2))


def _leftovers(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


# ----------------------------------------------------------------------------------------------- writing / loading


def test_safetensors_round_trip_with_tied_and_sliced_tensors(tmp_path):
    weight = torch.randn(5, 3)
    base = torch.arange(20.0)
    sd = {"emb.weight": weight, "head.weight": weight, "slice": base[4:10], "t": base.view(4, 5).t()}
    path = tmp_path / "deep" / "model.safetensors"
    save_safetensors(sd, path, metadata={"format": "pt", "source": "test"})
    loaded = load_checkpoint(path)
    assert set(loaded) == set(sd)
    for k, v in sd.items():
        assert torch.equal(loaded[k], v)
    with safe_open(path, "pt") as f:
        assert f.metadata() == {"format": "pt", "source": "test"}
    assert _leftovers(path.parent) == []
    with pytest.raises(TypeError, match="metadata"):
        save_safetensors(sd, path, metadata={"epochs": 3})
    with pytest.raises(TypeError, match="'bad'"):
        save_safetensors({"bad": [1, 2]}, tmp_path / "x.safetensors")
    assert not (tmp_path / "x.safetensors").exists() and _leftovers(tmp_path) == []


def test_atomic_writes_replace_and_clean_up(tmp_path):
    target = tmp_path / "a" / "b" / "file.txt"
    atomic_write_text(target, "first")
    atomic_write_text(target, "second ✓")
    assert target.read_text(encoding="utf-8") == "second ✓"
    atomic_write_bytes(tmp_path / "blob.bin", b"\x00\x01")
    assert (tmp_path / "blob.bin").read_bytes() == b"\x00\x01"
    ckpt = tmp_path / "c" / "ckpt.pt"
    atomic_torch_save({"w": torch.ones(3)}, ckpt)
    assert torch.equal(load_checkpoint(ckpt)["w"], torch.ones(3))
    umask = os.umask(0)
    os.umask(umask)
    assert (ckpt.stat().st_mode & 0o777) == (0o666 & ~umask)

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        atomic_torch_save({"x": Unpicklable()}, ckpt)
    assert torch.equal(load_checkpoint(ckpt)["w"], torch.ones(3))  # the old file is intact
    for folder in (target.parent, tmp_path, ckpt.parent):
        assert _leftovers(folder) == []


def test_plain_tensor_checkpoint_loads(tmp_path):
    path = tmp_path / "plain.pth"
    sd = OrderedDict(a=torch.randn(2, 2), b=torch.tensor([1, 2]))
    torch.save({"epoch": 3, "state_dict": sd, "best": 0.5}, path)
    ckpt = load_checkpoint(path)
    assert ckpt["epoch"] == 3 and torch.equal(ckpt["state_dict"]["a"], sd["a"])
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        load_checkpoint(tmp_path / "missing.pth")


def test_malicious_pickle_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "payload": _RunsShellOnLoad(marker)}, path)
    with pytest.raises(UnsafeCheckpointError, match="evil.pth") as info:
        load_checkpoint(path)
    message = str(info.value)
    assert "arbitrary Python objects" in message and "system" in message and "safetensors" in message
    assert not marker.exists()
    raw = tmp_path / "raw.pkl"
    raw.write_bytes(pickle.dumps(_RunsShellOnLoad(marker), protocol=2))
    assert b"system" in raw.read_bytes() and b"system" in path.read_bytes()  # the payloads are really there
    with pytest.raises(UnsafeCheckpointError, match=r"raw\.pkl holds arbitrary Python objects"):
        load_checkpoint(raw)
    assert not marker.exists()


def test_checkpoint_with_other_objects_is_refused(tmp_path):
    import fractions

    path = tmp_path / "with_object.pth.tar"
    torch.save({"model": {"w": torch.zeros(2)}, "lr": fractions.Fraction(1, 10)}, path)
    with pytest.raises(UnsafeCheckpointError, match=r"with_object\.pth\.tar.*fractions\.Fraction"):
        load_checkpoint(path)


def test_corrupt_files_name_the_path(tmp_path):
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"\xff" * 16)
    with pytest.raises(RuntimeError, match="broken.safetensors"):
        load_checkpoint(broken)
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    with pytest.raises(RuntimeError, match=r"empty\.pt: .*empty or cut short"):
        load_checkpoint(empty)


# ----------------------------------------------------------------------------------------------- state dicts


def test_extract_state_dict_from_containers():
    sd = {"conv.weight": torch.zeros(1), "fc.bias": torch.ones(1)}
    ddp = {f"module.{k}": v for k, v in sd.items()}
    assert extract_state_dict(sd) == sd
    assert extract_state_dict({"epoch": 1, "state_dict": ddp, "optimizer": {"state": {}}}) == sd
    assert extract_state_dict({"model": {"model": sd}, "state_dict": {"x": torch.zeros(1)}}) == sd
    assert list(extract_state_dict({"model_state": sd, "module": {"a": torch.zeros(1)}})) == list(sd)
    assert list(extract_state_dict({"ema": sd, "state_dict": {"z": torch.zeros(1)}}, key="ema")) == list(sd)
    partial = {"module.a": torch.zeros(1), "b": torch.zeros(1)}
    assert list(extract_state_dict(partial)) == ["module.a", "b"]  # only stripped when every key has it
    with pytest.raises(KeyError, match=r"'ema'.*\['epoch', 'state_dict'\]"):
        extract_state_dict({"epoch": 1, "state_dict": sd}, key="ema")
    with pytest.raises(ValueError, match=r"top-level keys: \['epoch', 'optimizer'\]"):
        extract_state_dict({"epoch": 1, "optimizer": {"lr": 0.1}})


def test_remap_success_with_groups_and_drop():
    source = {
        "backbone.layer1.weight": torch.zeros(2, 3),
        "backbone.layer1.bias": torch.zeros(2),
        "head.fc.weight": torch.zeros(4, 2),
        "aux.weight": torch.zeros(1),
    }
    rules = [(r"backbone\.layer(\d+)\.(.*)", r"body.l\1.\2"), (r"head\.fc\.(.*)", r"fc.\1"), (r".*", r"never")]
    expected = {"body.l1.weight": (2, 3), "body.l1.bias": torch.Size([2]), "fc.weight": torch.zeros(4, 2)}
    out = remap_state_dict(source, rules, expected=expected, drop=[r"aux\..*"])
    assert list(out) == ["body.l1.weight", "body.l1.bias", "fc.weight"]
    assert out["fc.weight"] is source["head.fc.weight"]
    identity = remap_state_dict(source, [(r"(.*)", r"\1")], expected=list(source))
    assert identity == source
    by_callable = remap_state_dict(source, lambda k: k.upper(), drop=[r"head\..*"])
    assert list(by_callable) == ["BACKBONE.LAYER1.WEIGHT", "BACKBONE.LAYER1.BIAS", "AUX.WEIGHT"]


def test_remap_reports_every_problem():
    source = {f"blocks.{i}.w": torch.zeros(3) for i in range(25)}
    source.update({"a.weight": torch.zeros(2, 2), "b.weight": torch.zeros(2, 2), "c.weight": torch.zeros(5)})
    rules = [(r"[ab]\.weight", "shared.weight"), (r"c\.(.*)", r"out.\1")]
    expected = {"shared.weight": (2, 2), "out.weight": (4,), "head.bias": (2,)}
    with pytest.raises(KeyMappingError) as info:
        remap_state_dict(source, rules, expected=expected)
    err = info.value
    message = str(err)
    assert len(err.unmapped) == 25 and "25 unmapped source keys" in message and "... and 5 more" in message
    assert "blocks.0.w" in message and "blocks.24.w" not in message
    assert err.missing == ["head.bias"] and "1 missing keys" in message
    assert err.collisions == {"shared.weight": ["a.weight", "b.weight"]}
    assert "shared.weight <- a.weight, b.weight" in message
    assert err.shape_mismatches == [("out.weight (from c.weight)", (5,), (4,))]
    assert "got [5], expected [4]" in message and isinstance(err, KeyError)
    with pytest.raises(KeyMappingError, match=r"1 unexpected keys.*\n\s+extra") as info:
        remap_state_dict({"w": torch.zeros(1), "extra": torch.zeros(1)}, [(r"(.*)", r"\1")], expected=["w"])
    assert info.value.unexpected == ["extra"] and not info.value.missing and not info.value.unmapped
    ok = remap_state_dict({"c.weight": torch.zeros(5)}, rules, expected={"out.weight": (4,)}, shapes=False)
    assert list(ok) == ["out.weight"]


def test_remap_rejects_bad_rules():
    with pytest.raises(ValueError, match=r"invalid regex '\('"):
        remap_state_dict({"a": torch.zeros(1)}, [("(", "x")])
    with pytest.raises(TypeError, match="pair"):
        remap_state_dict({"a": torch.zeros(1)}, [("a",)])


def test_load_into_lists_mismatches():
    net = _small_net()
    sd = {k: v.clone() for k, v in net.state_dict().items()}
    fresh = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4, 2))
    load_into(fresh, sd)
    assert torch.equal(fresh[0].weight, net[0].weight)
    broken = dict(sd)
    broken.pop("3.bias")
    broken["extra.weight"] = torch.zeros(1)
    broken["3.weight"] = torch.zeros(3, 4)
    with pytest.raises(KeyMappingError) as info:
        load_into(fresh, broken)
    err = info.value
    assert err.missing == ["3.bias"] and err.unexpected == ["extra.weight"]
    assert err.shape_mismatches == [("3.weight", (3, 4), (2, 4))]
    assert "cannot load the state dict into Sequential" in str(err)


def test_full_conversion_flow(tmp_path):
    """A DDP checkpoint -> extract -> remap onto a model -> safetensors -> load_into."""
    net = _small_net()
    legacy = {f"module.net.{k}": v for k, v in net.state_dict().items()}
    torch.save({"epoch": 10, "state_dict": legacy}, tmp_path / "legacy.pth")
    sd = extract_state_dict(load_checkpoint(tmp_path / "legacy.pth"))
    target = _small_net()
    for p in target.parameters():
        nn.init.zeros_(p)
    converted = remap_state_dict(sd, [(r"net\.(.*)", r"\1")], expected=target)
    save_safetensors(converted, tmp_path / "converted.safetensors")
    load_into(target, load_checkpoint(tmp_path / "converted.safetensors"))
    x = torch.randn(2, 3, 3, 3)
    net.eval()
    target.eval()
    assert torch.equal(net(x), target(x))


# ----------------------------------------------------------------------------------------------- untrusted files


class _Payload:
    """A pickle that would create a file when unpickled: what a malicious checkpoint or LUT carries."""

    def __init__(self, target):
        self.target = str(target)

    def __reduce__(self):
        return (open, (self.target, "w"))


@pytest.mark.parametrize("suffix", [".pt", ".pth", ".pkl", ".pickle", ".npy"])
def test_load_file_refuses_code_carrying_pickles(tmp_path, suffix):
    import pickle

    import numpy as np

    from miil.core.errors import UserError
    from miil.core.io import load_file

    target = tmp_path / "created-by-payload"
    path = tmp_path / f"evil{suffix}"
    if suffix == ".npy":
        np.save(path, np.array([_Payload(target)], dtype=object), allow_pickle=True)
    elif suffix in (".pt", ".pth"):
        torch.save({"model": {"w": torch.zeros(2)}, "extra": _Payload(target)}, path)
    else:
        path.write_bytes(pickle.dumps({"general": 0.1, "block": _Payload(target)}))
    assert not target.exists()
    with pytest.raises(UserError, match=str(path.name)):
        load_file(path, what="latency table")
    assert not target.exists()


def test_load_file_reads_plain_files(tmp_path):
    import pickle

    import numpy as np

    from miil.core.errors import UserError
    from miil.core.io import load_file, save_safetensors

    save_safetensors({"w": torch.ones(2)}, tmp_path / "w.safetensors")
    torch.save({"w": torch.ones(3)}, tmp_path / "w.pth")
    (tmp_path / "lut.pkl").write_bytes(pickle.dumps({"a": 1.5e-3, "general": 2e-4}))
    (tmp_path / "tree.json").write_text('{"class_list": ["n1"]}')
    np.save(tmp_path / "vec.npy", np.ones((2, 3), dtype=np.float32))
    assert load_file(tmp_path / "w.safetensors")["w"].tolist() == [1.0, 1.0]
    assert load_file(tmp_path / "w.pth")["w"].shape == (3,)
    assert load_file(tmp_path / "lut.pkl") == {"a": 1.5e-3, "general": 2e-4}
    assert load_file(tmp_path / "tree.json")["class_list"] == ["n1"]
    assert load_file(tmp_path / "vec.npy").shape == (2, 3)
    for bad, message in ((tmp_path / "nope.pt", "does not exist"), (tmp_path, "is a folder"), (tmp_path / "x.exe", "")):
        if bad.name == "x.exe":
            bad.write_bytes(b"MZ")
            message = "unknown file type"
        with pytest.raises(UserError, match=message):
            load_file(bad)


def test_original_training_checkpoints_with_their_argparse_namespace_load(tmp_path):
    # USI's, HardCoRe-NAS's and DINO's training scripts save {"state_dict": ..., "args": argparse.Namespace(...)}.
    path = tmp_path / "checkpoint.pth.tar"
    torch.save({"state_dict": {"w": torch.ones(2)}, "args": argparse.Namespace(lr=0.1, arch="vit_small")}, path)
    obj = load_checkpoint(path)
    assert obj["args"].arch == "vit_small" and obj["state_dict"]["w"].tolist() == [1.0, 1.0]
