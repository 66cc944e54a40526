"""Audio datasets, clip preparation, samplers and synthesised speech for EAT (arXiv 2204.11479, Sec. 4)."""

from .clip import fit_length, peak_normalize, windows
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
from .files import AudioFileDataset, list_audio_inputs
from .samplers import DistributedWeightedSampler, EpochAwareSampler
from .speech import KEYWORDS, EspeakSynthesizer, Speaker, keyword_dataset, make_speakers

__all__ = [
    "AUDIO_EXTENSIONS",
    "KEYWORDS",
    "AudioClipDataset",
    "AudioFileDataset",
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
    "list_audio_inputs",
    "make_speakers",
    "peak_normalize",
    "windows",
]
