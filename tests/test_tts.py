"""Prompts written as text become telephone audio, once per text."""
from __future__ import annotations

import wave

import pytest

from runtime.tts import SAMPLE_RATE, TtsError, cache_key, speak


def test_chinese_text_becomes_8khz_mono_audio(tmp_path):
    path = speak("您好,欢迎致电星海通信客服热线。", tmp_path)
    with wave.open(str(path), "rb") as audio:
        assert (audio.getframerate(), audio.getnchannels(), audio.getsampwidth()) == (SAMPLE_RATE, 1, 2)
        seconds = audio.getnframes() / audio.getframerate()
    assert 1.0 < seconds < 15.0
    assert path.name == f"{cache_key('您好,欢迎致电星海通信客服热线。')}.wav"


def test_the_same_text_is_made_once_and_another_text_again(tmp_path):
    first = speak("余额 58.20 元", tmp_path)
    made = first.stat().st_mtime_ns
    assert speak("余额 58.20 元", tmp_path) == first and first.stat().st_mtime_ns == made
    assert speak("余额 58.30 元", tmp_path) != first
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([first.name, f"{cache_key('余额 58.30 元')}.wav"])


def test_a_missing_synthesizer_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr("runtime.tts.shutil.which", lambda tool: None if tool == "espeak-ng" else "/usr/bin/" + tool)
    with pytest.raises(TtsError, match="espeak-ng is not installed; run scripts/system-packages"):
        speak("你好", tmp_path)
    assert list(tmp_path.iterdir()) == []
