"""Loaders for the corpora's published layouts, on tiny files written here (real speech and tones)."""

import csv

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
from miil.core.data import UnreadableFileWarning

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


def test_esc50_official_layout_folds(tmp_path):
    rows = []
    for fold in range(1, 6):
        for target, cat in enumerate(["dog", "rain", "siren"]):
            name = f"{fold}-1000{target}-A-{target}.wav"
            _tone(tmp_path / "audio" / name, 200 + 100 * target)
            rows.append([name, fold, target, cat, "False", "1000", "A"])
    _write_csv(
        tmp_path / "meta" / "esc50.csv", ["filename", "fold", "target", "category", "esc10", "src_file", "take"], rows
    )
    train = ESC50Dataset(tmp_path, fold=2, train=True, sample_rate=22050, seq_len=8192)
    test = ESC50Dataset(tmp_path, fold=2, train=False, sample_rate=22050, seq_len=8192)
    assert train.classes == ["dog", "rain", "siren"] and len(train) == 12 and len(test) == 3
    assert all(f.name.startswith("2-") for f in test.files) and not any(f.name.startswith("2-") for f in train.files)
    x, y = test[2]
    assert x.shape == (1, 8192) and y == 2
    assert abs(float(x.abs().max()) - 0.95) < 1e-5  # peak-normalised
    assert torch.count_nonzero(x[0, 6700:]) == 0  # 0.3 s at 22.05 kHz, zero-padded
    with pytest.raises(ValueError, match="folds"):
        ESC50Dataset(tmp_path, fold=6, train=False)


def test_esc50_class_folder_layout_of_the_original(tmp_path):
    for fold in (1, 2):
        _tone(tmp_path / "crow" / f"{fold}-1-A-9.wav", 300)
        _tone(tmp_path / "wind" / f"{fold}-2-A-16.wav", 500)
    ds = ESC50Dataset(tmp_path, fold=1, train=False, sample_rate=16000, seq_len=4000)
    assert ds.classes == ["crow", "wind"] and sorted(ds.targets) == [0, 1]


def test_urbansound8k_layout(tmp_path):
    rows = []
    for fold in range(1, 11):
        for cid, cls in [(0, "air_conditioner"), (3, "dog_bark")]:
            name = f"{100 + fold}-{cid}-0-0.wav"
            _tone(tmp_path / "audio" / f"fold{fold}" / name, 300 + cid * 50, sr=48000)
            rows.append([name, 100 + fold, 0, 0.3, 1, fold, cid, cls])
    # UrbanSound8K labels 10 classes; a subset appears in this tiny copy
    _write_csv(
        tmp_path / "metadata" / "UrbanSound8K.csv",
        ["slice_file_name", "fsID", "start", "end", "salience", "fold", "classID", "class"],
        rows,
    )
    ds = UrbanSound8KDataset(tmp_path, fold=10, train=False, sample_rate=22050, seq_len=4096)
    assert len(ds) == 2 and ds.classes == ["air_conditioner", "dog_bark"]
    assert len(UrbanSound8KDataset(tmp_path, fold=10, train=True, seq_len=4096)) == 18
    x, _ = ds[0]
    assert x.shape == (1, 4096)


def test_speech_commands_official_split(tmp_path, keywords):
    clips, labels, names, sr, words = keywords
    rel = []
    for i, (clip, label) in enumerate(zip(clips, labels)):
        path = tmp_path / words[label] / f"spk{i:02d}_nohash_0.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, clip, sr)
        rel.append(f"{words[label]}/{path.name}")
    (tmp_path / "_background_noise_").mkdir()
    sf.write(tmp_path / "_background_noise_" / "white.wav", np.zeros(100, dtype=np.float32), sr)
    (tmp_path / "validation_list.txt").write_text("\n".join(rel[:3]) + "\n")
    (tmp_path / "testing_list.txt").write_text("\n".join(rel[3:6]) + "\n")
    train = SpeechCommandsDataset(tmp_path, split="train", seq_len=16384)
    val = SpeechCommandsDataset(tmp_path, split="validation", seq_len=16384)
    assert train.classes == sorted(words) and len(train) == len(clips) - 6 and len(val) == 3
    x, y = val[0]
    assert x.shape == (1, 16384) and val.classes[y] == val.files[0].parent.name
    assert sorted(f"{f.parent.name}/{f.name}" for f in val.files) == sorted(rel[:3])
    with pytest.raises(ValueError, match="split"):
        SpeechCommandsDataset(tmp_path, split="dev")


def test_audioset_segments_labels_and_missing_clips(tmp_path):
    _write_csv(
        tmp_path / "class_labels_indices.csv",
        ["index", "mid", "display_name"],
        [[0, "/m/09x0r", "Speech"], [1, "/m/0bt9lr", "Dog"], [2, "/m/07yv9", "Vehicle"]],
    )
    lines = [
        "# Segments csv created Sun Mar  5 10:54:31 2017",
        "# num_ytids=4, num_segs=4, num_unique_labels=3, num_positive_labels=5",
        "# YTID, start_seconds, end_seconds, positive_labels",
        '--PJHxphWEs, 30.000, 40.000, "/m/09x0r,/m/0bt9lr"',
        'a_b-c, 0.000, 10.000, "/m/07yv9"',
        'gone123, 0.000, 10.000, "/m/09x0r"',
        'unlabel, 0.000, 10.000, "/m/zzzz"',
    ]
    (tmp_path / "eval.csv").write_text("\n".join(lines) + "\n")
    _tone(tmp_path / "clips" / "Y--PJHxphWEs.flac", 300, sr=32000)
    _tone(tmp_path / "clips" / "sub" / "a_b-c_0.wav", 400)
    with pytest.warns(UserWarning, match="1 of the segments"):
        ds = AudioSetDataset(
            tmp_path / "eval.csv", tmp_path / "clips", tmp_path / "class_labels_indices.csv", train=False, seq_len=8192
        )
    assert len(ds) == 2 and ds.missing == ["gone123"] and ds.unlabelled == 1
    x, y = ds[0]
    assert x.shape == (1, 8192) and y.tolist() == [1.0, 1.0, 0.0]
    w = ds.sample_weights()
    assert torch.allclose(w, torch.tensor([1.0 + 1.0, 1.0], dtype=torch.float64))
    with pytest.raises(FileNotFoundError, match="gone123"):
        AudioSetDataset(
            tmp_path / "eval.csv", tmp_path / "clips", tmp_path / "class_labels_indices.csv", train=False, strict=True
        )


def test_folder_dataset_skips_unreadable_files(tmp_path, keyword_folders):
    ds = AudioFolderDataset(keyword_folders / "train", sample_rate=8000, seq_len=4096)
    assert ds.classes == ["no", "stop", "yes"] and len(ds) == 18
    broken = keyword_folders / "train" / "no" / "zz_broken.wav"
    broken.write_bytes(b"not audio")
    try:
        ds = AudioFolderDataset(keyword_folders / "train", sample_rate=8000, seq_len=4096)
        with pytest.warns(UnreadableFileWarning, match="zz_broken"):
            assert ds[ds.files.index(broken)] is None
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
