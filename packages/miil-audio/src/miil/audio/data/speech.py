"""Spoken keywords synthesised offline with the espeak-ng library bundled in the ``espeakng-loader`` wheel.

Real speech for demos and tests without downloads (see the project's DATA notes): espeak-ng's formant synthesiser
speaks any word with many voice variants (male, female, whisper, croak, ...), English accents, speaking rates and
pitches. :func:`keyword_dataset` builds a small SpeechCommands-style set from it, where each *speaker* is one
(accent, variant, rate, pitch) combination; splitting by speaker gives a held-out test of unseen voices.

The library is called through ``ctypes`` in synchronous mode: ``espeak_Synth`` returns once the callback has
received all 16-bit samples. espeak-ng keeps global state, so every call goes through one process-wide lock; that
state also carries from one utterance to the next (a repeated request differs by a few samples), so a data set is
reproducible when it is built by the same sequence of calls in a fresh process, as the demo does.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from miil.core.extras import require

__all__ = ["EspeakSynthesizer", "Speaker", "keyword_dataset", "make_speakers", "KEYWORDS"]

# The ten SpeechCommands core words.
KEYWORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
ACCENTS = ("en", "en-us", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-us-nyc")
VARIANTS = (
    "m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5", "croak", "klatt", "klatt2", "klatt3",
    "whisper", "Alex", "Andy", "Annie", "adam", "aunty", "boris", "david", "grandma", "grandpa", "linda", "max",
    "michel", "paul", "quincy", "robert", "steph", "travis", "victor", "zac",
)  # fmt: skip

_SYNCHRONOUS = 2  # espeak_AUDIO_OUTPUT: AUDIO_OUTPUT_SYNCHRONOUS
_PARAM_RATE, _PARAM_VOLUME, _PARAM_PITCH, _PARAM_RANGE = 1, 2, 3, 4
_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


@dataclass(frozen=True)
class Speaker:
    """One synthetic speaker: an accent, a voice variant, a rate (words/min) and a base pitch (0-99)."""

    accent: str
    variant: str
    rate: int
    pitch: int

    @property
    def voice(self) -> str:
        return f"{self.accent}+{self.variant}"

    def __str__(self) -> str:
        return f"{self.voice}@{self.rate}wpm/p{self.pitch}"


class EspeakSynthesizer:
    """Text to 16-bit speech with the bundled libespeak-ng (one shared instance per process).

    Raises:
        MissingExtraError: The ``espeakng-loader`` wheel (miil-audio's ``demo`` extra) is not installed.
        RuntimeError: Its library cannot be loaded.
    """

    _lock = threading.Lock()
    _state: tuple[ctypes.CDLL, int, object] | None = None

    def __init__(self) -> None:
        with self._lock:
            if EspeakSynthesizer._state is None:
                EspeakSynthesizer._state = self._load()
        self._lib, self.sample_rate, _ = EspeakSynthesizer._state
        self._chunks: list[np.ndarray] = []

    @staticmethod
    def _load() -> tuple[ctypes.CDLL, int, object]:
        with require("espeakng_loader", distribution="miil-audio", extra="demo", purpose="speech synthesis"):
            import espeakng_loader
        lib_path, data_path = espeakng_loader.get_library_path(), espeakng_loader.get_data_path()
        try:
            lib = ctypes.CDLL(lib_path)
        except OSError as err:
            raise RuntimeError(f"cannot load the espeak-ng library {lib_path}: {err}") from err
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint, ctypes.c_uint,
            ctypes.c_void_p, ctypes.c_void_p,
        ]  # fmt: skip
        rate = lib.espeak_Initialize(_SYNCHRONOUS, 0, str(Path(data_path)).encode(), 0)
        if rate <= 0:
            raise RuntimeError(f"espeak-ng failed to initialise with data from {data_path} (returned {rate})")

        def collect(wav, n, _events):
            if n > 0 and EspeakSynthesizer._sink is not None:
                EspeakSynthesizer._sink.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
            return 0

        callback = _CALLBACK(collect)  # kept alive in _state: the library holds a raw pointer to it
        lib.espeak_SetSynthCallback(callback)
        return lib, rate, callback

    _sink: list[np.ndarray] | None = None

    def synthesize(self, text: str, *, voice: str = "en", rate: int = 175, pitch: int = 50, pitch_range: int = 50):
        """Speak ``text``; returns float32 samples in [-1, 1] at :attr:`sample_rate` (22.05 kHz).

        Args:
            text: What to say.
            voice: espeak-ng voice name, ``language[+variant]`` (e.g. "en-us+f2").
            rate: Speaking rate in words per minute (80-450).
            pitch: Base pitch (0-99).
            pitch_range: Pitch variation (0-99; 0 is monotone).
        """
        with self._lock:
            lib = self._lib
            if lib.espeak_SetVoiceByName(voice.encode()) != 0:
                raise ValueError(f"espeak-ng has no voice {voice!r}")
            for param, value in ((_PARAM_RATE, rate), (_PARAM_PITCH, pitch), (_PARAM_RANGE, pitch_range)):
                lib.espeak_SetParameter(param, int(value), 0)
            lib.espeak_SetParameter(_PARAM_VOLUME, 100, 0)
            EspeakSynthesizer._sink = chunks = []
            data = text.encode() + b"\0"
            status = lib.espeak_Synth(data, len(data), 0, 0, 0, 0, None, None)
            EspeakSynthesizer._sink = None
        if status != 0:
            raise RuntimeError(f"espeak-ng failed to speak {text!r} with voice {voice!r} (error {status})")
        if not chunks:
            return np.zeros(0, dtype=np.float32)
        return (np.concatenate(chunks).astype(np.float32) / 32768.0).astype(np.float32)


def make_speakers(count: int, *, seed: int = 0) -> list[Speaker]:
    """``count`` distinct random speakers (accent x variant x rate x pitch), reproducible from ``seed``.

    Args:
        count: Number of speakers.
        seed: Random seed.
    """
    rng = np.random.default_rng(seed)
    speakers: dict[tuple, Speaker] = {}
    while len(speakers) < count:
        sp = Speaker(
            accent=str(rng.choice(ACCENTS)),
            variant=str(rng.choice(VARIANTS)),
            rate=int(rng.integers(120, 230)),
            pitch=int(rng.integers(20, 80)),
        )
        speakers.setdefault((sp.accent, sp.variant), sp)
    return list(speakers.values())


def keyword_dataset(
    speakers: Sequence[Speaker], *, words: Sequence[str] = KEYWORDS
) -> tuple[list[np.ndarray], list[int], list[str], int]:
    """Every word spoken by every speaker.

    Args:
        speakers: The voices (see :func:`make_speakers`).
        words: The keywords; the label of a clip is the word's index.

    Returns:
        ``(clips, labels, speaker_names, sample_rate)``, clips as float32 arrays at the synthesiser's rate.
    """
    synth = EspeakSynthesizer()
    clips, labels, names = [], [], []
    for sp in speakers:
        for label, word in enumerate(words):
            clips.append(synth.synthesize(word, voice=sp.voice, rate=sp.rate, pitch=sp.pitch))
            labels.append(label)
            names.append(str(sp))
    return clips, labels, names, synth.sample_rate
