"""Prompts written as text, spoken: telephone audio made with espeak-ng, cached by content.

A flow says "您好,欢迎致电" and nobody records it: `speak(text)` returns a WAV file of 8 kHz, 16-bit
mono (what Asterisk plays as `sound:`), made once per (voice, text) and kept under a name that is
the hash of both, so the same prompt is never synthesized twice and a changed prompt never plays
stale audio.  espeak-ng speaks Mandarin (`cmn`) and reads Latin letters and digits in it as well;
sox converts its output to the telephone rate.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

DEFAULT_VOICE = "cmn"
SAMPLE_RATE = 8000


class TtsError(Exception):
    """Speech could not be made; the message says why and what to install."""


def cache_key(text: str, voice: str = DEFAULT_VOICE) -> str:
    return hashlib.sha256(f"{voice}\n{text}".encode("utf-8")).hexdigest()[:32]


def speak(text: str, cache_dir: Path, voice: str = DEFAULT_VOICE) -> Path:
    """The WAV file for `text`, made if it is not in `cache_dir` yet."""
    target = Path(cache_dir) / f"{cache_key(text, voice)}.wav"
    if target.is_file():
        return target
    for tool in ("espeak-ng", "sox"):
        if shutil.which(tool) is None:
            raise TtsError(f"{tool} is not installed; run scripts/system-packages (Debian packages espeak-ng and sox)")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as work:
        raw, phone = Path(work) / "raw.wav", Path(work) / "phone.wav"
        _run(["espeak-ng", "-v", voice, "-w", str(raw), "--", text], f"espeak-ng could not speak {text[:30]!r}")
        _run(["sox", str(raw), "-r", str(SAMPLE_RATE), "-c", "1", "-b", "16", str(phone)], "sox could not convert the audio")
        os.replace(phone, target)  # whole files only: a reader never sees half a prompt
    return target


def _run(command: list[str], failure: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise TtsError(f"{failure}: {result.stderr.strip() or f'exit {result.returncode}'}")
