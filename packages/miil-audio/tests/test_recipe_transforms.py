"""Every recipe's data and training-batch augmentation, built by ``build_datasets`` and ``train_augment`` as ``train``
builds them, on real sounds.

Real recordings (the pygame-ce wheel's sounds, in WAV, FLAC, OGG and MP3 at 11.025 kHz) and spoken keywords
(espeak-ng voices, written at 22.05, 16 and 44.1 kHz, mono and stereo), shorter and longer than a clip, are read,
resampled, peak-normalised and cropped by the recipe's dataset, then batches go through the full augmentation
(per-clip signal and noise augmentations, batch resampling, and the mixes once mixing has started), each batch under
its own seed. The single-label rows read class folders (their corpora differ only in how files are listed); the
AudioSet row reads the AudioSet layout (segments CSV, label index, multi-hot targets). Clips are 16384 samples (the
augmentations' lengths are in seconds of the recipe's rate).
"""

import dataclasses
import importlib.util
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr
import torch

from miil.audio import RECIPES, build_datasets, train_augment
from miil.audio.augment.mix import MixTargets
from miil.audio.data.speech import keyword_dataset, make_speakers
from miil.core.testing import DrawPlan, failing_draws

SEQ_LEN = 16384
BATCH = 4
NAMES = sorted(RECIPES)
PLAN = DrawPlan(full=120, repeat=30)  # batches of 4 clips
PYGAME = {
    "impact": ["boom.wav", "car_door.wav", "punch.wav"],
    "ambience": ["house_lo.flac", "house_lo.ogg", "house_lo.mp3", "secosmic_lo.wav", "whiff.wav"],
}


def _write_sounds(folder_of, tmp: Path) -> list[tuple[Path, str]]:
    """Real sounds into ``folder_of(class)``: pygame's files as shipped, keywords at several rates and channels."""
    data = Path(next(iter(importlib.util.find_spec("pygame").submodule_search_locations))) / "examples" / "data"
    written = []
    for cls, names in PYGAME.items():
        for name in names:
            dst = folder_of(cls) / f"{cls}_{name.replace('.', '_')}{Path(name).suffix}"
            shutil.copy(data / name, dst)
            written.append((dst, cls))
    clips, _, _, rate = keyword_dataset(make_speakers(2, seed=1), words=("yes", "no", "stop"))
    for i, clip in enumerate(clips):
        if i % 3 == 1:  # stereo at 44.1 kHz
            wave, sr = np.stack([clip, 0.5 * clip], axis=1).repeat(2, axis=0), 2 * rate
        elif i % 3 == 2:  # 16 kHz, padded to 3 s with silence (longer than a clip)
            wave, sr = np.concatenate([soxr.resample(clip, rate, 16000), np.zeros(48000, np.float32)]), 16000
        else:
            wave, sr = clip, rate
        dst = folder_of("speech") / f"speech_{i}.{'flac' if i % 2 else 'wav'}"
        sf.write(dst, wave, sr)
        written.append((dst, "speech"))
    return written


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("audio-real")

    def class_folder(split):
        def make(cls):
            (root / split / cls).mkdir(parents=True, exist_ok=True)
            return root / split / cls

        return make

    _write_sounds(class_folder("train"), root)
    for alias in ("val", "validation"):  # the recipes' validation split names
        shutil.copytree(root / "train", root / alias)
    # the AudioSet layout: metadata CSVs, clips named Y<YTID>, multi-label segments
    meta, mids = root / "audioset" / "metadata", {"impact": "/m/0impact", "ambience": "/m/0amb", "speech": "/m/09x0r"}
    meta.mkdir(parents=True)
    (meta / "class_labels_indices.csv").write_text(
        "index,mid,display_name\n" + "".join(f'{i},{m},"{c}"\n' for i, (c, m) in enumerate(mids.items()))
    )
    for split in ("balanced_train_segments", "eval_segments"):
        clips = root / "audioset" / split
        clips.mkdir()
        rows = []
        for k, (path, cls) in enumerate(_write_sounds(lambda _c, d=clips: d, root)):
            ytid = f"clip{k:03d}"
            path.rename(clips / f"Y{ytid}{path.suffix}")
            labels = [mids[cls]] + ([mids["ambience"]] if k % 3 == 0 and cls != "ambience" else [])
            rows.append(f'{ytid}, 0.000, 10.000, "{",".join(labels)}"\n')
        (meta / f"{split}.csv").write_text("# YTID, start_seconds, end_seconds, positive_labels\n" + "".join(rows))
    return root


def _recipe(name, root):
    recipe = dataclasses.replace(RECIPES[name], seq_len=SEQ_LEN, strict=True, num_classes=0)
    if recipe.data_format == "audioset":
        return dataclasses.replace(recipe, data_root=str(root / "audioset"))
    return dataclasses.replace(recipe, data_format="folder", data_root=str(root))


@pytest.mark.parametrize("name", NAMES)
def test_recipe_data_and_batch_augmentation_on_real_sounds(name, data_root):
    recipe = _recipe(name, data_root)
    train, val = build_datasets(recipe)
    assert len(train) >= 14 and len(val) >= 14
    num_classes = len(train.classes)
    augment = train_augment(recipe)
    draws = PLAN.draws(recipe.augment_config(), recipe.sample_rate, recipe.multilabel)

    def draw(i):
        picks = torch.randint(0, len(train), (BATCH,)).tolist()
        x, y = torch.utils.data.default_collate([train[k] for k in picks])
        assert x.shape == (BATCH, 1, SEQ_LEN) and x.dtype == torch.float32
        # every other batch in the epoch before mixing starts, the others once it has
        augment.set_epoch(recipe.mix_start_epoch - 1 + i % 2)
        out, y_out, mix = augment((x, y))
        assert out.shape == x.shape and out.dtype == torch.float32, f"augmented batch {tuple(out.shape)} {out.dtype}"
        assert bool(torch.isfinite(out).all()), "non-finite samples after augmentation"
        assert float(out.abs().max()) <= 8.0, f"peak {float(out.abs().max()):.2f} after augmentation"
        assert torch.equal(y_out, y)
        if mix is not None:
            assert isinstance(mix, MixTargets) and bool(((mix.lam >= 0) & (mix.lam <= 1)).all())
            soft = mix.bce(num_classes, threshold=recipe.mix_threshold) if recipe.multilabel else mix.soft(num_classes)
            assert bool(torch.isfinite(soft).all()) and float(soft.min()) >= 0 and float(soft.max()) <= 1 + 1e-6
            if not recipe.multilabel:
                torch.testing.assert_close(soft.sum(1), torch.ones(BATCH))

    failures = failing_draws(draw, draws, seed=1000 * (1 + NAMES.index(name)))
    assert not failures, f"{name}: {len(failures)} of {draws} augmented batches failed, e.g. {failures[:3]}"
    for k in range(len(val)):
        x, y = val[k]
        assert x.shape == (1, SEQ_LEN) and bool(torch.isfinite(x).all()) and float(x.abs().max()) <= 0.95 + 1e-6
        if recipe.multilabel:
            assert y.shape == (num_classes,) and y.sum() >= 1
        else:
            assert 0 <= y < num_classes
