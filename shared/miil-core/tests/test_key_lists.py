"""Key lists: parsing, placeholder state dicts, and the conversion check that the converter tests rely on."""

import pytest
import torch
import torch.nn as nn

from miil.core.key_lists import check_conversion, placeholder_state_dict, read_key_list


def _write(tmp_path, text):
    path = tmp_path / "keys.txt"
    path.write_text(text)
    return path


def test_read_and_placeholders(tmp_path):
    listed = read_key_list(
        _write(tmp_path, "# Original: x @ 1\n\nfc.weight\t[3, 4]\nfc.bias\t[3]\nbn.num_batches_tracked\t[]\n")
    )
    assert listed.header == ["Original: x @ 1"] and len(listed) == 3
    assert listed.with_prefix("module.") == {
        "module.fc.weight": (3, 4),
        "module.fc.bias": (3,),
        "module.bn.num_batches_tracked": (),
    }
    state = placeholder_state_dict(listed)
    assert all(t.is_meta for t in state.values()) and state["bn.num_batches_tracked"].dtype == torch.long
    real = placeholder_state_dict(listed, device="cpu", fill={"fc.bias": torch.ones(3)})
    assert real["fc.weight"].abs().sum() == 0 and real["fc.bias"].tolist() == [1.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="shape"):
        placeholder_state_dict(listed, fill={"fc.bias": torch.ones(4)})
    with pytest.raises(KeyError, match="not in the list"):
        placeholder_state_dict(listed, fill={"other": torch.ones(1)})


@pytest.mark.parametrize(
    "text", ["fc.weight [3, 4]\n", "fc.weight\t(3, 4)\n", "fc.weight\t[3]\nfc.weight\t[3]\n", "# only\n"]
)
def test_malformed_lists_are_refused(tmp_path, text):
    with pytest.raises(ValueError):
        read_key_list(_write(tmp_path, text))


def test_check_conversion_catches_drops_inventions_and_shapes():
    model = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))
    own = model.state_dict()
    source = [f"orig.{k}" for k in own if not k.endswith("num_batches_tracked")] + ["orig.filt"]
    good = {k: torch.zeros_like(v) for k, v in own.items()}
    check_conversion(source, good, model, dropped=["orig.filt"], added=["1.num_batches_tracked"])
    with pytest.raises(AssertionError, match="dropped or invented"):
        check_conversion(source, good, model, added=["1.num_batches_tracked"])  # the filter vanished unannounced
    with pytest.raises(AssertionError, match="1 missing"):
        check_conversion(source, {k: v for k, v in good.items() if k != "0.bias"}, model, dropped=["orig.filt"])
    with pytest.raises(AssertionError, match="shape mismatches"):
        check_conversion(source, {**good, "0.bias": torch.zeros(4)}, model, dropped=["orig.filt"], added=["x"])
    with pytest.raises(AssertionError, match="does not have"):
        check_conversion(source, good, model, dropped=["orig.nothing"], added=["1.num_batches_tracked", "x"])
