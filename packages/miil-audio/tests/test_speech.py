import numpy as np
import pytest

from miil.audio.data.speech import EspeakSynthesizer, Speaker, make_speakers


def test_espeak_speaks_words_with_distinct_voices():
    synth = EspeakSynthesizer()
    assert synth.sample_rate == 22050
    a = synth.synthesize("left", voice="en+m3", rate=150, pitch=40)
    b = synth.synthesize("left", voice="en+f2", rate=150, pitch=70)
    c = synth.synthesize("left", voice="en+m3", rate=150, pitch=40)
    assert a.dtype == np.float32 and 0.15 < len(a) / 22050 < 1.0 and 0.05 < np.abs(a).max() <= 1.0
    # espeak-ng carries some state from one utterance to the next: the same request gives nearly the same clip
    assert abs(len(a) - len(c)) < 0.02 * len(a)
    assert len(a) != len(b) or not np.allclose(a, b)
    slow = synth.synthesize("left", voice="en+m3", rate=90, pitch=40)
    assert len(slow) > 1.3 * len(a)
    with pytest.raises(ValueError, match="no voice"):
        synth.synthesize("left", voice="xx-nonexistent")


def test_speakers_are_reproducible_and_distinct():
    a, b = make_speakers(12, seed=4), make_speakers(12, seed=4)
    assert a == b and len({(s.accent, s.variant) for s in a}) == 12
    assert str(Speaker("en", "m1", 150, 50)) == "en+m1@150wpm/p50"
