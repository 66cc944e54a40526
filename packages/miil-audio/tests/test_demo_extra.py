"""Without miil-audio's ``demo`` extra (pygame-ce, espeakng-loader) the demo data says which extra to install."""

import sys

import pytest

from miil.audio import demo
from miil.audio.data.speech import EspeakSynthesizer
from miil.core.cli import run_demos
from miil.core.errors import EXIT_USER_ERROR, MissingExtraError


def test_background_sounds_without_pygame_name_the_demo_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "pygame", None)  # how an uninstalled package looks to the import system
    with pytest.raises(MissingExtraError, match=r"background sounds .* pip install 'miil-audio\[demo\]'"):
        demo._backgrounds(16000)


def test_background_sounds_come_from_the_installed_pygame_wheel():
    clips = demo._backgrounds(16000)
    assert len(clips) == len(demo.BACKGROUNDS) and all(len(c) > 1000 for c in clips)


def test_speech_without_espeakng_loader_names_the_demo_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "espeakng_loader", None)
    with pytest.raises(MissingExtraError, match=r"speech synthesis .* pip install 'miil-audio\[demo\]'"):
        EspeakSynthesizer._load()


def test_miil_demo_audio_without_the_extra_says_which_extra_to_install(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "pygame", None)
    monkeypatch.setitem(sys.modules, "espeakng_loader", None)
    monkeypatch.setattr(EspeakSynthesizer, "_state", None)  # a synthesizer loaded by an earlier test
    assert run_demos(["audio"]) == EXIT_USER_ERROR
    err = capsys.readouterr().err
    assert err.startswith("miil demo audio: error: ") and "needs the 'demo' extra of miil-audio" in err
    assert "pip install 'miil-audio[demo]'" in err and "Traceback" not in err
