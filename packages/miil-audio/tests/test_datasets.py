"""Loaders for the corpora's published layouts, on the miniature copies of ``miil.audio.miniature``."""

import csv
import dataclasses

import numpy as np
import pytest
import soundfile as sf
import torch

from miil.audio import (
    AudioFolderDataset,
    AudioSetDataset,
    ESC50Dataset,
    InMemoryAudioDataset,
    SpeechCommandsDataset,
    UrbanSound8KDataset,
    fit_length,
    peak_normalize,
)
from miil.audio.data import DistributedWeightedSampler, EpochAwareSampler
from miil.audio.miniature import (
    AUDIOSET_CLASSES,
    ESC50_CLASSES,
    URBANSOUND8K_CLASSES,
    make_audioset,
    make_esc50,
    make_urbansound8k,
)
from miil.audio.recipes import RECIPES
from miil.audio.training import build_datasets
from miil.core.data import PathEscapeError, Skipped, UnreadableFileWarning
from miil.core.miniature import miniature_digest

from .conftest import sine


def _tone(path, freq, sr=44100, seconds=0.3):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, sine(freq, seconds, sr), sr)


def _write_csv(path, header, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)


def test_esc50_official_layout_folds(esc50_root):
    meta = list(csv.DictReader((esc50_root / "meta" / "esc50.csv").read_text().splitlines()))
    assert [r["filename"] for r in meta] == sorted(r["filename"] for r in meta)
    train = ESC50Dataset(esc50_root, fold=2, train=True, sample_rate=22050, seq_len=8192)
    test = ESC50Dataset(esc50_root, fold=2, train=False, sample_rate=22050, seq_len=8192)
    assert train.classes == [c for _, c, _ in ESC50_CLASSES] and train.target_ids == [t for t, _, _ in ESC50_CLASSES]
    assert len(train) == 20 and len(test) == 5
    assert all(f.name.startswith("2-") for f in test.files) and not any(f.name.startswith("2-") for f in train.files)
    # The published targets (21, 22, 30, 42, 48) are not contiguous: labels are their positions.
    assert sorted(test.targets) == [0, 1, 2, 3, 4]
    for path, label in zip(test.files, test.targets):
        assert int(path.stem.split("-")[-1]) == test.target_ids[label]
    x, y = test[2]
    assert x.shape == (1, 8192) and 0 <= y < 5
    whole = ESC50Dataset(esc50_root, fold=2, train=False)  # the paper's 114688 samples at 22.05 kHz: all 5 s
    x, _ = whole[2]
    assert x.shape == (1, 114688) and abs(float(x.abs().max()) - 0.95) < 1e-5  # peak-normalised
    assert torch.count_nonzero(x[0, 110250:]) == 0  # 5 s of audio, then zero padding
    info = sf.info(test.files[0])
    assert (info.samplerate, info.channels, info.frames, info.subtype) == (44100, 1, 220500, "PCM_16")
    with pytest.raises(ValueError, match="folds"):
        ESC50Dataset(esc50_root, fold=6, train=False)


def test_esc50_class_folder_layout_of_the_original(tmp_path):
    for fold in (1, 2):
        _tone(tmp_path / "crow" / f"{fold}-1-A-9.wav", 300)
        _tone(tmp_path / "wind" / f"{fold}-2-A-16.wav", 500)
    ds = ESC50Dataset(tmp_path, fold=1, train=False, sample_rate=16000, seq_len=4000)
    assert ds.classes == ["crow", "wind"] and sorted(ds.targets) == [0, 1]


def test_urbansound8k_layout(urbansound8k_root):
    ds = UrbanSound8KDataset(urbansound8k_root, fold=10, train=False, sample_rate=22050, seq_len=4096)
    assert ds.classes == [c for _, c, _ in URBANSOUND8K_CLASSES] and ds.target_ids == [0, 3, 6, 8, 9]
    assert len(ds) == 5 and sorted(ds.targets) == [0, 1, 2, 3, 4]
    assert len(UrbanSound8KDataset(urbansound8k_root, fold=10, train=True, seq_len=4096)) == 45
    formats = {(i.samplerate, i.channels, i.subtype) for i in map(sf.info, urbansound8k_root.rglob("*.wav"))}
    assert len(formats) > 3  # the uploads' rates, channel counts and sample formats vary
    every = UrbanSound8KDataset(urbansound8k_root, fold=None, train=False, sample_rate=22050, seq_len=4096)
    for i in range(len(every)):
        x, y = every[i]  # stereo, 8-, 24- and 32-bit, 8-96 kHz files all decode to one mono rate
        assert x.shape == (1, 4096) and torch.isfinite(x).all() and 0 <= y < 5


def test_speech_commands_official_split(speech_commands_root):
    root = speech_commands_root
    train = SpeechCommandsDataset(root, split="train", seq_len=16384)
    val = SpeechCommandsDataset(root, split="validation", seq_len=16384)
    test = SpeechCommandsDataset(root, split="testing", seq_len=16384)
    assert train.classes == ["down", "no", "up", "yes"]  # _background_noise_ is not a class
    assert len(train) == 24 and len(val) == 4 and len(test) == 4
    speaker = {f.name.split("_")[0] for f in val.files}
    assert len(speaker) == 1 and not speaker & {f.name.split("_")[0] for f in train.files}  # held-out speaker
    listed = (root / "validation_list.txt").read_text().split()
    assert sorted(f"{f.parent.name}/{f.name}" for f in val.files) == sorted(listed)
    x, y = val[0]
    assert x.shape == (1, 16384) and val.classes[y] == val.files[0].parent.name
    lengths = {sf.info(f).frames for f in train.files}
    assert max(lengths) == 16000 and min(lengths) <= 16000  # 1 s clips at 16 kHz
    with pytest.raises(ValueError, match="split"):
        SpeechCommandsDataset(root, split="dev")


def test_audioset_segments_labels_and_missing_clips(tmp_path):
    root = make_audioset(tmp_path / "audioset", train_clips=4, eval_clips=6, missing_clips=1, seconds=2.0)
    meta = root / "metadata"
    files = (meta / "eval_segments.csv", root / "audio" / "eval_segments", meta / "class_labels_indices.csv")
    with pytest.warns(UserWarning, match="1 of the segments"):
        ds = AudioSetDataset(*files, train=False, seq_len=8192)
    assert ds.classes == [n for _, n, _ in AUDIOSET_CLASSES] and "Whoosh, swoosh, swish" in ds.classes
    assert len(ds) == 6 and len(ds.missing) == 1  # the missing clip stays, to be reported when read
    lines = [ln for ln in (meta / "eval_segments.csv").read_text().splitlines() if not ln.startswith("#")]
    mids = [m for m, _, _ in AUDIOSET_CLASSES]
    first = sorted(mids.index(m) for m in lines[0].split('"')[1].split(","))
    x, y = ds[0]
    assert x.shape == (1, 8192) and torch.nonzero(y).flatten().tolist() == first
    assert ds.missing == [lines[-1].split(",")[0]]
    gone = ds[len(ds) - 1]
    assert isinstance(gone, Skipped) and gone.reason == "missing" and ds.missing[0] in gone.file
    w = ds.sample_weights()
    assert w.shape == (6,) and (w > 0).all()
    with pytest.raises(FileNotFoundError, match=ds.missing[0]):
        AudioSetDataset(*files, train=False, strict=True)


def test_folder_dataset_skips_unreadable_files(tmp_path, keyword_folders):
    ds = AudioFolderDataset(keyword_folders / "train", sample_rate=8000, seq_len=4096)
    assert ds.classes == ["no", "stop", "yes"] and len(ds) == 18
    broken = keyword_folders / "train" / "no" / "zz_broken.wav"
    broken.write_bytes(b"not audio")
    try:
        ds = AudioFolderDataset(keyword_folders / "train", sample_rate=8000, seq_len=4096)
        with pytest.warns(UnreadableFileWarning, match="zz_broken"):
            skipped = ds[ds.files.index(broken)]
        assert skipped == Skipped(str(broken), skipped.reason) and skipped.reason.startswith("not a readable audio")
        assert ds.reader.count == 1
        strict = AudioFolderDataset(keyword_folders / "train", sample_rate=8000, seq_len=4096, strict=True)
        with pytest.raises(OSError, match="zz_broken"):
            strict[strict.files.index(broken)]
    finally:
        broken.unlink()
    with pytest.raises(ValueError, match="not among the classes"):
        AudioFolderDataset(keyword_folders / "train", sample_rate=8000, seq_len=4096, classes=["yes", "no"])


def test_clip_helpers_and_random_crops():
    x = torch.arange(10.0)
    assert fit_length(x, 6).tolist() == [2, 3, 4, 5, 6, 7]  # centre
    assert fit_length(x, 12).tolist()[-2:] == [0, 0]
    crops = {
        tuple(fit_length(x, 4, random_crop=True, generator=torch.Generator().manual_seed(s)).tolist())
        for s in range(20)
    }
    assert len(crops) > 3
    assert peak_normalize(np.array([0.1, -0.5]), 0.95).tolist() == pytest.approx([0.19, -0.95])
    assert peak_normalize(np.zeros(3)).tolist() == [0, 0, 0]
    ds = InMemoryAudioDataset([np.ones(20, np.float32)], [[0, 2]], classes=["a", "b", "c"], seq_len=8, multilabel=True)
    assert ds[0][1].tolist() == [1, 0, 1]


def test_weighted_sampler_is_reproducible_and_sharded():
    weights = torch.tensor([1.0, 0.0, 3.0, 1.0])
    full = DistributedWeightedSampler(weights, num_samples=4000, seed=3)
    draws = list(full)
    assert 1 not in draws and abs(draws.count(2) / 4000 - 0.6) < 0.05
    full.set_epoch(1)
    assert list(full) != draws
    full.set_epoch(0)
    assert list(full) == draws
    shards = [list(DistributedWeightedSampler(weights, num_samples=4000, rank=r, world_size=2, seed=3)) for r in (0, 1)]
    assert shards[0] == draws[0::2] and shards[1] == draws[1::2]
    with pytest.raises(ValueError):
        DistributedWeightedSampler([0.0, 0.0])
    seen = []
    wrapped = EpochAwareSampler(full, hooks=[seen.append])
    wrapped.set_epoch(4)
    assert seen == [4] and full.epoch == 4 and len(wrapped) == 4000


@pytest.mark.parametrize(
    "recipe, fixture, sizes",
    [
        ("esc50-eat-s", "esc50_root", (20, 5)),
        ("urbansound8k-eat-s", "urbansound8k_root", (45, 5)),
        ("speechcommands-v2-35-eat-s", "speech_commands_root", (24, 4)),
        ("audioset-eat-m", "audioset_root", (8, 4)),
    ],
)
def test_recipes_find_the_official_layouts(recipe, fixture, sizes, request):
    root = request.getfixturevalue(fixture)
    config = dataclasses.replace(RECIPES[recipe], data_root=str(root), seq_len=4096)
    train, val = build_datasets(config)
    assert (len(train), len(val)) == sizes and train.classes == val.classes
    x, _ = val[0]
    assert x.shape == (1, 4096)


@pytest.mark.parametrize(
    "make, small",
    [(make_esc50, {"takes": 1, "seconds": 0.5}), (make_urbansound8k, {"max_seconds": 1.5})],
    ids=lambda v: getattr(v, "__name__", ""),
)
def test_miniatures_are_deterministic_by_seed(make, small, tmp_path):
    a, b = make(tmp_path / "a", seed=3, **small), make(tmp_path / "b", seed=3, **small)
    assert miniature_digest(a) == miniature_digest(b) != miniature_digest(make(tmp_path / "c", seed=4, **small))


def test_label_file_paths_stay_inside_the_data_root(tmp_path, esc50_root):
    """An ESC-50 metadata row naming a file outside the root (``../../../usr/share/sounds/...``) is refused, not read;
    the same for UrbanSound8K and the Speech Commands lists."""
    import shutil

    root = tmp_path / "ESC-50-master"
    shutil.copytree(esc50_root, root)
    meta = root / "meta" / "esc50.csv"
    lines = meta.read_text().splitlines()
    first = lines[1].split(",")
    lines.append(",".join(["../../../usr/share/sounds/alsa/Front_Center.wav", *first[1:]]))
    meta.write_text("\n".join(lines) + "\n")
    with pytest.raises(PathEscapeError, match="climbs out"):
        ESC50Dataset(root, fold=1, train=False)
    lists = tmp_path / "speech"
    (lists / "yes").mkdir(parents=True)
    sf.write(lists / "yes" / "a_nohash_0.wav", sine(300, 0.2, 16000), 16000)
    (lists / "validation_list.txt").write_text("/abs.wav\nyes/a_nohash_0.wav\n")
    (lists / "testing_list.txt").write_text("")
    with pytest.raises(PathEscapeError, match="absolute"):
        SpeechCommandsDataset(lists, split="validation")


def test_folds_by_split_names(esc50_root, urbansound8k_root):
    explicit = ESC50Dataset(esc50_root, fold=1, train=True, folds=[2, 3], seq_len=4096)
    assert len(explicit) == 10 and {f.name.split("-")[0] for f in explicit.files} == {"2", "3"}
    with pytest.raises(ValueError, match="folds"):
        UrbanSound8KDataset(urbansound8k_root, fold=1, train=True, folds=[11])
