"""What a caller hears, as media URIs Asterisk can play.

Three kinds of sound reach a call:

- prompts a flow gives as text (`say "您好,欢迎致电"`): spoken by runtime.tts into a WAV file in the
  media directory, once per text, and played as `sound:<dir>/tts/<hash>`;
- sounds a flow names (`play "sounds/xinghai-jingle"`): a file the project ships under that name
  (`sounds/xinghai-jingle.wav` beside flows/) is copied into the media directory; any other name is
  one of Asterisk's own sounds (`play "queue-thankyou"`);
- queue announcements (place in line, expected wait): spoken text, like prompts.

Asterisk reads the files itself, so the media directory must be one it can see: `media_dir` is where
the runtime writes, `media_dir_in_asterisk` the same folder as Asterisk names it (they differ when
Asterisk runs in a chroot or on another host that mounts the folder).
"""
from __future__ import annotations

import asyncio
import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path

from compiler import ir
from runtime import tts
from runtime.engine import EngineOptions

# Sound file formats Asterisk plays, in the order a project's file is looked for.
SOUND_FORMATS = (".wav", ".gsm", ".ulaw", ".alaw", ".sln", ".g722")


@dataclass
class Media:
    media_dir: Path
    media_dir_in_asterisk: str
    project_dir: Path | None = None
    voice: str = tts.DEFAULT_VOICE

    async def say(self, text: str) -> str:
        """The URI of `text` spoken (made now if it is not cached; off the event loop)."""
        path = await asyncio.to_thread(tts.speak, text, self.media_dir / "tts", self.voice)
        return self._uri(path)

    def play(self, sound: str) -> str:
        """The URI of a sound a flow names: the project's own file if it ships one, else Asterisk's."""
        source = self._project_sound(sound)
        if source is None:
            return f"sound:{sound}"
        digest = hashlib.sha256(source.read_bytes()).hexdigest()[:16]
        target = self.media_dir / "sounds" / f"{source.stem}-{digest}{source.suffix}"
        if not target.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(target.name + ".partial")
            shutil.copyfile(source, partial)
            partial.replace(target)  # Asterisk never reads half a file
        return self._uri(target)

    def announcement(self, position: int | None, expected_wait_s: int | None) -> str:
        """What a waiting caller is told, in the language of the voice."""
        minutes = None if expected_wait_s is None else max(1, round(expected_wait_s / 60))
        if self.voice.startswith(("cmn", "zh", "yue")):
            parts = [f"您前面还有{position - 1}位客户" if position and position > 1 else "您是下一位",
                     f"预计等待{minutes}分钟" if minutes else ""]
            return "，".join(p for p in parts if p) + "，请稍候。"
        parts = [f"You are number {position} in line" if position else "",
                 f"the expected wait is about {minutes} minute{'s' if minutes != 1 else ''}" if minutes else ""]
        return ", ".join(p for p in parts if p) + ". Please hold."

    async def prepare(self, bundle: ir.Bundle, options: EngineOptions) -> int:
        """Speak every fixed prompt of the bundle now (at deploy), so no caller waits for the
        synthesizer; prompts with `{values}` in them are spoken when a call needs them."""
        texts = fixed_prompts(bundle) | {options.sorry_text, options.unknown_number_text}
        for text in sorted(texts):
            await self.say(text)
        return len(texts)

    def _project_sound(self, sound: str) -> Path | None:
        if self.project_dir is None or sound.startswith("/") or ".." in Path(sound).parts:
            return None
        base = self.project_dir / sound
        candidates = [base] if base.suffix in SOUND_FORMATS else [base.with_name(base.name + f) for f in SOUND_FORMATS]
        return next((path for path in candidates if path.is_file()), None)

    def _uri(self, path: Path) -> str:
        relative = path.relative_to(self.media_dir).with_suffix("")
        return f"sound:{self.media_dir_in_asterisk.rstrip('/')}/{relative.as_posix()}"


def fixed_prompts(bundle: ir.Bundle) -> set[str]:
    """The text of every say, menu and collect prompt that has no `{value}` in it."""
    texts = set()
    for flow in bundle.flows.values():
        for step in flow.steps:
            parts = getattr(step, "text", None) or getattr(step, "prompt", None)
            if isinstance(parts, list) and parts and all(p.expr is None for p in parts):
                text = "".join(p.text or "" for p in parts)
                if text.strip():
                    texts.add(text)
    return texts


def music_class(music: str) -> str:
    """A queue's `music "hold/vip"` names Asterisk's music-on-hold class `vip`."""
    return music.rstrip("/").rsplit("/", 1)[-1] or "default"
