"""The original HardCoRe-NAS latency table (``lut.pkl``) read into ours: descriptors, units, expected latency, refusal.

The test pickles are written here the way the original ``generate_latency_dict`` writes them: one dict of
``{descriptor: seconds}`` plus ``"general"``, with descriptors formatted as its ``extract_resolution_stride_dict``
formats them, for the original frame at 224x224 (its ``mobilenasnet`` arch_def: stages of 24, 40, 80, 112 and 192
channels with first strides 2, 2, 2, 1, 2; ReLU in the first two; 16 channels at 112x112 into the first stage).
"""

import json
import pickle

import numpy as np
import pytest

from miil.core.cli import main
from miil.core.errors import UserError
from miil.hardcore import (
    Architecture,
    BlockChoice,
    LatencyTable,
    LatencyTableError,
    SearchSpace,
    import_original_lut,
    original_descriptor,
    parse_original_descriptor,
)

ORIGINAL_STAGES = [(24, 2, 1), (40, 2, 1), (80, 2, 0), (112, 1, 0), (192, 2, 0)]  # (out channels, stride, ReLU)
EXP_RATIO, DW_K_SIZE, SE_RATIO = [3, 4, 6], [3, 5], [0, 0.25]  # the original's reduced exp ratios
GENERAL_S = 0.0021


def _descriptor(in_ch, out_ch, stride, res, er, k, se, relu):
    return (
        f"in_channels_{in_ch}_out_channels_{out_ch}_stride_{stride}_resolution_{res}_er_{er}_k_{k}_se_{se}_act_{relu}"
    )


def _block_inputs():
    """(stage, position) -> (in channels, out channels, stride, input resolution, ReLU) of the original frame."""
    out, in_ch, res = {}, 16, 112
    for s, (out_ch, stride, relu) in enumerate(ORIGINAL_STAGES):
        out[s, 0] = (in_ch, out_ch, stride, res, relu)
        out[s, 1] = (out_ch, out_ch, 1, res // stride, relu)
        in_ch, res = out_ch, res // stride
    return out


def _original_lut() -> dict:
    rng = np.random.default_rng(0)
    lut = {}
    for (_, _), (in_ch, out_ch, stride, res, relu) in _block_inputs().items():
        for er in EXP_RATIO:
            for k in DW_K_SIZE:
                for se in SE_RATIO:
                    lut[_descriptor(in_ch, out_ch, stride, res, er, k, se, relu)] = float(rng.uniform(1e-4, 2e-3))
    # An entry of the original's extended space (exp ratio 2.5), which ours does not have.
    lut[_descriptor(16, 24, 2, 112, 2.5, 3, 0, 1)] = 5e-4
    lut["general"] = GENERAL_S
    return lut


# A child given as the original's (exp ratio, kernel, SE ratio) per block of each stage.
CHILD = [
    [(3, 5, 0), (3, 5, 0.25)],
    [(3, 5, 0), (6, 5, 0.25), (4, 3, 0)],
    [(6, 5, 0.25), (6, 5, 0.25)],
    [(6, 3, 0.25), (4, 5, 0), (3, 3, 0.25), (6, 5, 0)],
    [(6, 5, 0.25), (6, 5, 0.25), (3, 3, 0)],
]


def _original_expected_seconds(lut: dict) -> float:
    """The original's expected latency of CHILD: the LUT entries of its blocks plus "general"."""
    geometry = _block_inputs()
    total = lut["general"]
    for s, blocks in enumerate(CHILD):
        for j, (er, k, se) in enumerate(blocks):
            total += lut[_descriptor(*geometry[s, min(j, 1)][:4], er, k, se, geometry[s, 0][4])]
    return total


@pytest.fixture
def lut_file(tmp_path):
    path = tmp_path / "lut.pkl"
    path.write_bytes(pickle.dumps(_original_lut()))
    return path


def test_descriptors_parse_as_the_original_writes_them():
    block = parse_original_descriptor("in_channels_24_out_channels_40_stride_2_resolution_56_er_6_k_5_se_0.25_act_1")
    assert (block.in_channels, block.out_channels, block.stride, block.resolution) == (24, 40, 2, 56)
    assert (block.expansion, block.kernel, block.se_ratio, block.relu) == (6.0, 5, 0.25, True)
    assert parse_original_descriptor(_descriptor(16, 24, 2, 112, 2.5, 3, 0, 0)).expansion == 2.5
    with pytest.raises(ValueError, match="not a block descriptor"):
        parse_original_descriptor("in_channels_24_out_channels_40")


def test_every_cell_of_the_paper_space_has_the_originals_descriptor():
    space = SearchSpace()
    names = {original_descriptor(space, s, p, c) for s in range(5) for p in range(2) for c in range(12)}
    assert names == set(_original_lut()) - {"general", _descriptor(16, 24, 2, 112, 2.5, 3, 0, 1)}


def test_imported_table_predicts_the_originals_expected_latency(lut_file, tmp_path):
    lut = _original_lut()
    space = SearchSpace()
    table = import_original_lut(lut_file, space)
    arch = Architecture(
        tuple(tuple(space.option_index(BlockChoice(er, k, se > 0)) for er, k, se in stage) for stage in CHILD)
    )
    expected_ms = 1e3 * _original_expected_seconds(lut)
    assert table.latency(arch) == pytest.approx(expected_ms, rel=1e-12)
    assert table.fixed_ms == {"stem": pytest.approx(1e3 * GENERAL_S), "head": 0.0}
    assert table.device["ignored_entries"] == 1  # the extended-space entry
    reloaded = LatencyTable.load(table.save(tmp_path / "lut.json"))
    assert reloaded.latency(arch) == pytest.approx(expected_ms, rel=1e-12)


def test_gpu_tables_are_per_batch(lut_file):
    one = import_original_lut(lut_file)
    four = import_original_lut(lut_file, gpu_batch_size=4)
    np.testing.assert_allclose(four.block_ms, one.block_ms / 4)
    assert four.fixed_ms == one.fixed_ms  # "general" is per sample on every target


def test_a_missing_block_is_named_in_the_originals_format(tmp_path):
    lut = _original_lut()
    missing = _descriptor(80, 112, 1, 14, 6, 5, 0.25, 0)
    del lut[missing]
    path = tmp_path / "lut.pkl"
    path.write_bytes(pickle.dumps(lut))
    with pytest.raises(LatencyTableError, match=f"lacks {missing} \\(stage 3, first block"):
        import_original_lut(path)


@pytest.mark.parametrize(
    ("content", "match"),
    [([1.0, 2.0], "is a list"), ({"x": 1.0}, "without a 'general' entry"), ({"general": "fast"}, "not seconds")],
)
def test_pickles_that_are_not_original_tables_are_refused(tmp_path, content, match):
    path = tmp_path / "lut.pkl"
    path.write_bytes(pickle.dumps(content))
    with pytest.raises(LatencyTableError, match=match):
        import_original_lut(path)


def test_miil_hardcore_import_lut(lut_file, tmp_path, capsys):
    out = tmp_path / "out" / "lut.json"
    assert main(["hardcore", "import-lut", str(lut_file), str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["units"] == "ms per sample" and len(data["blocks"]) == 5 * 2 * 12
    assert "wrote" in capsys.readouterr().out


class _CreatesAFile:
    """A pickle payload: unpickling it calls open(path, "w"), which creates the file."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_a_malicious_pickle_is_refused_and_creates_nothing(tmp_path):
    marker = tmp_path / "pwned"
    payload = pickle.dumps({"general": 0.002, "x": _CreatesAFile(marker)})
    pickle.loads(payload).pop("x").close()  # the payload is live: plain unpickling runs it
    assert marker.exists()
    marker.unlink()

    path, out = tmp_path / "lut.pkl", tmp_path / "lut.json"
    path.write_bytes(payload)
    with pytest.raises(UserError, match="will not be unpickled"):
        import_original_lut(path)
    try:
        status = main(["hardcore", "import-lut", str(path), str(out)])
    except UserError:
        status = 2  # the CLI prints a user error as one line and exits 2 once the core catches it
    assert status == 2
    assert not marker.exists() and not out.exists()
