"""Audio datasets, clip preparation, samplers and synthesised speech for EAT (arXiv 2204.11479, Sec. 4)."""

from .clip import fit_length, peak_normalize
from .datasets import (
    AUDIO_EXTENSIONS,
    AudioClipDataset,
    AudioFolderDataset,
    AudioSetDataset,
    ESC50Dataset,
    InMemoryAudioDataset,
    SpeechCommandsDataset,
    UrbanSound8KDataset,
)
from .samplers import DistributedWeightedSampler, EpochAwareSampler
from .speech import KEYWORDS, EspeakSynthesizer, Speaker, keyword_dataset, make_speakers

__all__ = [
    "AUDIO_EXTENSIONS",
    "KEYWORDS",
    "AudioClipDataset",
    "AudioFolderDataset",
    "AudioSetDataset",
    "DistributedWeightedSampler",
    "ESC50Dataset",
    "EpochAwareSampler",
    "EspeakSynthesizer",
    "InMemoryAudioDataset",
    "Speaker",
    "SpeechCommandsDataset",
    "UrbanSound8KDataset",
    "fit_length",
    "keyword_dataset",
    "make_speakers",
    "peak_normalize",
]
