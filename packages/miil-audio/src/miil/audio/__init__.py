"""miil-audio: EAT, end-to-end audio classification from raw waveforms, with its augmentations.

Paper: "End-to-End Audio Strikes Back: Boosting Augmentations Towards An Efficient Audio Classification Network",
Gazneli, Zimerman, Ridnik, Sharir, Noy, 2022 (arXiv 2204.11479).

- Model: :class:`EAT` (``eat_s``, ``eat_m``, ``create_eat``), built from :mod:`miil.audio.layers`.
- Augmentations (:mod:`miil.audio.augment`): seeded, batched torch transforms, and :class:`BatchAugment`, the
  whole pipeline as a training-batch transform.
- Losses: :class:`LabelSmoothingCrossEntropy`, :func:`mixed_label_bce`.
- Data (:mod:`miil.audio.data`): ESC-50, UrbanSound8K, SpeechCommands, AudioSet, class folders; audio I/O with
  resample-once caching (:class:`AudioReader`); espeak-ng keywords for offline demos.
- Recipes (:data:`RECIPES`), training through the core engine (:func:`train`), evaluation, original-checkpoint
  conversion (:func:`load_original_checkpoint`), the ``miil audio`` CLI and the demo.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from typing import TYPE_CHECKING

from miil.core.lazy import lazy_exports

__version__ = importlib.metadata.version("miil-audio")  # written once, in pyproject.toml

# name -> submodule; names are imported on first use (PEP 562), so `import` of the package loads no torch.
_EXPORTS = {
    "AugmentConfig": ".augment",
    "BatchAugment": ".augment",
    "bc_mixup": ".augment",
    "freq_mix": ".augment",
    "MIX_KINDS": ".augment",
    "MixTargets": ".augment",
    "NOISE_KINDS": ".augment",
    "phase_mix": ".augment",
    "RandomCyclicShift": ".augment",
    "RandomGain": ".augment",
    "RandomNoise": ".augment",
    "RandomPolarity": ".augment",
    "RandomResample": ".augment",
    "RandomSegmentGain": ".augment",
    "RandomTimeMask": ".augment",
    "RandomTimeShift": ".augment",
    "SIGNAL_KINDS": ".augment",
    "SincResampler": ".augment",
    "time_mix": ".augment",
    "WaveformAugment": ".augment",
    "config_from_original": ".convert",
    "convert_original_state_dict": ".convert",
    "load_original_checkpoint": ".convert",
    "original_num_heads": ".convert",
    "AudioClipDataset": ".data",
    "AudioFileDataset": ".data",
    "list_audio_inputs": ".data",
    "windows": ".data",
    "AudioFolderDataset": ".data",
    "AudioSetDataset": ".data",
    "ESC50Dataset": ".data",
    "fit_length": ".data",
    "InMemoryAudioDataset": ".data",
    "peak_normalize": ".data",
    "SpeechCommandsDataset": ".data",
    "UrbanSound8KDataset": ".data",
    "create_eat": ".eat",
    "EAT": ".eat",
    "EAT_CONFIGS": ".eat",
    "eat_m": ".eat",
    "eat_s": ".eat",
    "EATConfig": ".eat",
    "AudioReader": ".io",
    "load_audio": ".io",
    "resample_audio": ".io",
    "UnreadableAudioError": ".io",
    "AADownsample1d": ".layers",
    "DilatedResBlock1d": ".layers",
    "DownBlock1d": ".layers",
    "TransformerAggregator": ".layers",
    "LabelSmoothingCrossEntropy": ".losses",
    "mixed_label_bce": ".losses",
    "MixedLabelBCE": ".losses",
    "DATA_FORMATS": ".recipes",
    "EATRecipe": ".recipes",
    "RECIPES": ".recipes",
    "build_datasets": ".training",
    "build_model": ".training",
    "check_recipe_against_data": ".training",
    "evaluate": ".training",
    "evaluate_clips": ".training",
    "load_weights": ".training",
    "TrainedEAT": ".training",
    "load_pretrained": ".training",
    "load_run": ".training",
    "recalibrate_batchnorm": ".training",
    "train": ".training",
    "train_augment": ".training",
}

_SUBMODULES = {
    "augment",
    "commands",
    "convert",
    "data",
    "eat",
    "io",
    "kinds",
    "layers",
    "losses",
    "recipes",
    "training",
}

if TYPE_CHECKING:
    from .augment import (
        MIX_KINDS,
        NOISE_KINDS,
        SIGNAL_KINDS,
        AugmentConfig,
        BatchAugment,
        MixTargets,
        RandomCyclicShift,
        RandomGain,
        RandomNoise,
        RandomPolarity,
        RandomResample,
        RandomSegmentGain,
        RandomTimeMask,
        RandomTimeShift,
        SincResampler,
        WaveformAugment,
        bc_mixup,
        freq_mix,
        phase_mix,
        time_mix,
    )
    from .convert import config_from_original, convert_original_state_dict, load_original_checkpoint, original_num_heads
    from .data import (
        AudioClipDataset,
        AudioFileDataset,
        AudioFolderDataset,
        AudioSetDataset,
        ESC50Dataset,
        InMemoryAudioDataset,
        SpeechCommandsDataset,
        UrbanSound8KDataset,
        fit_length,
        list_audio_inputs,
        peak_normalize,
        windows,
    )
    from .eat import EAT, EAT_CONFIGS, EATConfig, create_eat, eat_m, eat_s
    from .io import AudioReader, UnreadableAudioError, load_audio, resample_audio
    from .layers import AADownsample1d, DilatedResBlock1d, DownBlock1d, TransformerAggregator
    from .losses import LabelSmoothingCrossEntropy, MixedLabelBCE, mixed_label_bce
    from .recipes import DATA_FORMATS, RECIPES, EATRecipe
    from .training import (
        TrainedEAT,
        build_datasets,
        build_model,
        check_recipe_against_data,
        evaluate,
        evaluate_clips,
        load_pretrained,
        load_run,
        load_weights,
        recalibrate_batchnorm,
        train,
        train_augment,
    )


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, _SUBMODULES)

__all__ = [
    "AADownsample1d",
    "AudioClipDataset",
    "AudioFileDataset",
    "AudioFolderDataset",
    "AudioReader",
    "AudioSetDataset",
    "AugmentConfig",
    "BatchAugment",
    "DATA_FORMATS",
    "DilatedResBlock1d",
    "DownBlock1d",
    "EAT",
    "EATConfig",
    "EATRecipe",
    "EAT_CONFIGS",
    "ESC50Dataset",
    "InMemoryAudioDataset",
    "LabelSmoothingCrossEntropy",
    "MIX_KINDS",
    "MixTargets",
    "MixedLabelBCE",
    "NOISE_KINDS",
    "RECIPES",
    "RandomCyclicShift",
    "RandomGain",
    "RandomNoise",
    "RandomPolarity",
    "RandomResample",
    "RandomSegmentGain",
    "RandomTimeMask",
    "RandomTimeShift",
    "SIGNAL_KINDS",
    "SincResampler",
    "SpeechCommandsDataset",
    "TrainedEAT",
    "TransformerAggregator",
    "UnreadableAudioError",
    "UrbanSound8KDataset",
    "WaveformAugment",
    "bc_mixup",
    "build_datasets",
    "build_model",
    "check_recipe_against_data",
    "config_from_original",
    "convert_original_state_dict",
    "create_eat",
    "eat_m",
    "eat_s",
    "evaluate",
    "evaluate_clips",
    "fit_length",
    "freq_mix",
    "list_audio_inputs",
    "load_audio",
    "load_original_checkpoint",
    "original_num_heads",
    "load_pretrained",
    "load_run",
    "load_weights",
    "mixed_label_bce",
    "peak_normalize",
    "phase_mix",
    "recalibrate_batchnorm",
    "resample_audio",
    "time_mix",
    "train",
    "train_augment",
    "windows",
]
