"""Pretend callers and agents' phones on the real Asterisk, for end-to-end tests.

A caller is the first half of a Local channel: the test originates `Local/NUMBER@flowdesk/n`, whose
second half dials NUMBER into the dialplan (and from there into the runtime's ARI application);
the first half sits in this module's own ARI application, `flowdesk-test-caller`, where the test
presses keys on it, records what it hears and hangs it up.  Agents' phones are the second halves
of the Local channels the runtime rings (`Local/EXTENSION@flowdesk-test-agents/n`): they arrive
ringing in the application `flowdesk-test-agents`, where the test answers or declines them.
"""
from __future__ import annotations

import array
import asyncio
import io
import itertools
import math
import os
import wave
from dataclasses import dataclass, field

from runtime.ari.client import AriClient, NotFound
from runtime.ari.events import EventStream

CALLERS_APP = "flowdesk-test-caller"
AGENTS_APP = "flowdesk-test-agents"
AGENT_DIAL = "Local/{extension}@flowdesk-test-agents/n"
_numbers = itertools.count(1)
_PROCESS = os.getpid()


@dataclass
class Caller:
    phones: "Phones"
    id: str             # our half of the Local channel
    runtime_id: str     # the half the runtime sees: its call id
    number: str
    answered: asyncio.Event = field(default_factory=asyncio.Event)
    ended: asyncio.Event = field(default_factory=asyncio.Event)

    async def press(self, digits: str) -> None:
        await self.phones.client.send_dtmf(self.id, digits, between_ms=150, duration_ms=120)

    async def hang_up(self) -> None:
        try:
            await self.phones.client.hangup(self.id)
        except NotFound:
            pass
        await asyncio.wait_for(self.ended.wait(), 10)

    async def record(self, name: str) -> None:
        """Record what this caller hears, from now until the call ends."""
        await self.phones.client.record(self.id, name, format="wav")


@dataclass
class AgentPhone:
    phones: "Phones"
    id: str
    extension: str
    ended: asyncio.Event = field(default_factory=asyncio.Event)

    async def answer(self) -> None:
        await self.phones.client.answer(self.id)

    async def hang_up(self) -> None:
        try:
            await self.phones.client.hangup(self.id)
        except NotFound:
            pass
        await asyncio.wait_for(self.ended.wait(), 10)


class Phones:
    """The test's own two ARI applications, on their own client."""

    def __init__(self, url: str, user: str, password: str):
        self.client = AriClient(url, user, password, CALLERS_APP)
        self.agent_client = AriClient(url, user, password, AGENTS_APP)
        self.callers: dict[str, Caller] = {}
        self.ringing: asyncio.Queue[AgentPhone] = asyncio.Queue()
        self.agent_phones: dict[str, AgentPhone] = {}
        self._streams = [EventStream(self.client, self._caller_event), EventStream(self.agent_client, self._agent_event)]
        self._tasks: list[asyncio.Task] = []

    async def __aenter__(self) -> "Phones":
        await self.client.open()
        await self.agent_client.open()
        self._tasks = [asyncio.create_task(stream.run()) for stream in self._streams]
        for stream in self._streams:
            await stream.wait_connected(10)
        return self

    async def __aexit__(self, *exc) -> None:
        for caller in self.callers.values():
            if not caller.ended.is_set():
                try:
                    await self.client.hangup(caller.id)
                except Exception:
                    pass
        for stream in self._streams:
            await stream.close()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.client.close()
        await self.agent_client.close()

    async def call(self, number: str, caller_number: str) -> Caller:
        """Dial `number` from `caller_number`; returns once Asterisk took the call."""
        n = next(_numbers)
        # Ids carry the process id: a run started seconds after another must not meet its channels,
        # which Asterisk may still be tearing down under the same names.
        caller = Caller(self, f"test-caller-{_PROCESS}-{n}", f"test-call-{_PROCESS}-{n}", caller_number)
        self.callers[caller.id] = caller
        await self.client.request("POST", f"/channels/{caller.id}", params={
            "endpoint": f"Local/{number}@flowdesk/n", "app": CALLERS_APP, "otherChannelId": caller.runtime_id,
            "callerId": f'"{caller_number}" <{caller_number}>', "timeout": 30}, idempotent=True)
        return caller

    async def agent_rings(self, timeout: float = 30) -> AgentPhone:
        return await asyncio.wait_for(self.ringing.get(), timeout)

    async def heard(self, name: str) -> float:
        """The loudness (RMS of 16-bit samples) of a recording this side made."""
        audio = await self.client.stored_recording_file(name)
        with wave.open(io.BytesIO(audio)) as w:
            assert w.getsampwidth() == 2, "expected 16-bit samples"
            samples = array.array("h", w.readframes(w.getnframes()))
        return math.sqrt(sum(s * s for s in samples) / len(samples)) if samples else 0.0

    def _caller_event(self, event: dict) -> None:
        caller = self.callers.get(event.get("channel", {}).get("id"))
        if caller is None:
            return
        if event["type"] == "StasisStart":
            caller.answered.set()
        elif event["type"] in ("StasisEnd", "ChannelDestroyed"):
            caller.ended.set()

    def _agent_event(self, event: dict) -> None:
        channel = event.get("channel", {})
        if event["type"] == "StasisStart":
            phone = AgentPhone(self, channel["id"], (event.get("args") or [""])[0])
            self.agent_phones[phone.id] = phone
            self.ringing.put_nowait(phone)
        elif event["type"] in ("StasisEnd", "ChannelDestroyed") and channel.get("id") in self.agent_phones:
            self.agent_phones[channel["id"]].ended.set()


async def until(condition, timeout: float = 30, what: str = "the condition") -> None:
    """Wait until `condition()` is true, checking every 50 ms."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(0.05)
