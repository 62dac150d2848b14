"""Callers for the ARI load benchmark (bench/ari_calls.py), and what Asterisk says happened to them.

A caller is the first half of a Local channel that the benchmark originates into its own ARI
application; the second half dials the number into the dialplan, as a real call would: into
the runtime's application for the hotline, into plain dialplan for the baseline.  Once the
menu's prompt has begun the caller presses a key, stays on the line, and hangs up at its time.

The application also subscribes to each call's second half, whoever runs it, with an event
filter, and the reaction to a key is read from Asterisk's own event timestamps: the key press
(ChannelDtmfReceived) on the second half, then the next PlaybackStarted there (the runtime's next
prompt) or the next ChannelDialplan step (the baseline's `Playback`).  Timestamps have
millisecond resolution.  One subscription per call, not `subscribeAll`: with every channel's
events (the runtime's agents, snoops and recordings too) Asterisk itself answered the runtime
more slowly (500 calls at 25/s: key to prompt p50 5.5 s against 2.2 s, 329 against 500 complete).
"""
from __future__ import annotations

import asyncio
import datetime as dt
import time
from dataclasses import dataclass, field

from runtime.ari.client import AriClient, AriError, NotFound
from runtime.ari.events import EventStream

APP = "flowdesk-bench-callers"
# What a caller from the telephone network speaks (G.711 A-law, as in China). Without it ARI makes
# a Local channel in 192 kHz signed linear, and every sound played to it is resampled 24-fold.
CODEC = "alaw"
EVENTS = ("StasisStart", "ChannelDtmfReceived", "PlaybackStarted", "ChannelDialplan", "ChannelVarset",
          "ChannelDestroyed")


@dataclass(frozen=True)
class Ivr:
    """What is dialled and how its menu and its reaction to a key look in Asterisk's events."""
    name: str
    endpoint: str
    menu_uri: str | None = None   # the runtime's main menu sound; None: the dialplan's Background
    wants_agent: bool = False     # a complete call also reaches an agent

    def menu_starts(self, event: dict) -> bool:
        if self.menu_uri is None:
            return event["type"] == "ChannelDialplan" and event.get("dialplan_app", "").lower() == "background"
        return event["type"] == "PlaybackStarted" and event["playback"].get("media_uri") == self.menu_uri

    def reacts(self, event: dict) -> bool:
        return event["type"] == ("ChannelDialplan" if self.menu_uri is None else "PlaybackStarted")


@dataclass
class Call:
    id: str                        # the caller's half, in the benchmark's application
    callee: str                    # the half that dials the number (the runtime's call id)
    due: float                     # when it is dialled, then hung up (time.perf_counter)
    hang_up_at: float
    answered: asyncio.Event = field(default_factory=asyncio.Event)
    menu: asyncio.Event = field(default_factory=asyncio.Event)
    answered_at: float | None = None
    pressed: dt.datetime | None = None   # Asterisk's timestamps
    reacted: dt.datetime | None = None
    bridged: bool = False
    fallback: bool = False          # the runtime gave the call to the dialplan's fallback
    hung_up: bool = False           # by the caller, at its time
    dropped: bool = False           # the callee's half went before the caller hung up
    error: str | None = None

    @property
    def reaction_ms(self) -> float | None:
        if self.pressed is None or self.reacted is None:
            return None
        return (self.reacted - self.pressed).total_seconds() * 1000


def asterisk_time(event: dict) -> dt.datetime:
    return dt.datetime.strptime(event["timestamp"], "%Y-%m-%dT%H:%M:%S.%f%z")


def channel_of(event: dict) -> str | None:
    if "channel" in event:
        return event["channel"]["id"]
    target = (event.get("playback") or {}).get("target_uri", "")
    return target.partition(":")[2] if target.startswith("channel:") else None


class Callers:
    """The benchmark's application: it places the calls and watches both halves of each."""

    def __init__(self, url: str, user: str, password: str):
        self.client = AriClient(url, user, password, APP)
        self.stream = EventStream(self.client, self.on_event, self._filter)
        self.ivr: Ivr | None = None
        self.calls: dict[str, Call] = {}    # both halves' ids -> the call
        self.up = self.peak = 0             # callers answered and not gone
        self._task: asyncio.Task | None = None

    async def __aenter__(self) -> "Callers":
        await self.client.open()
        self._task = asyncio.create_task(self.stream.run())
        await self.stream.wait_connected(10)
        return self

    async def __aexit__(self, *exc) -> None:
        await self.stream.close()
        await asyncio.gather(self._task, return_exceptions=True)
        await self.client.close()

    async def _filter(self, reconnected: bool) -> None:
        """Only the events the benchmark reads: less for Asterisk to send, less for us to parse."""
        if reconnected:
            print(f"warning: the event socket of {APP} dropped and reconnected; events were missed", flush=True)
        await self.client.request("PUT", f"/applications/{APP}/eventFilter",
                                  body={"allowed": [{"type": kind} for kind in EVENTS]})

    def expect(self, ivr: Ivr, calls: list[Call]) -> None:
        self.ivr, self.up, self.peak = ivr, 0, 0
        self.calls = {key: call for call in calls for key in (call.id, call.callee)}

    # ------------------------------------------------------------------ Asterisk's side

    def on_event(self, event: dict) -> None:
        channel = channel_of(event)
        call = self.calls.get(channel)
        if call is None:
            return
        if channel == call.id:
            self._caller_event(call, event)
        else:
            self._callee_event(call, event)

    def _caller_event(self, call: Call, event: dict) -> None:
        if event["type"] == "StasisStart":
            call.answered_at = time.perf_counter()
            call.answered.set()
            self.up += 1
            self.peak = max(self.peak, self.up)
        elif event["type"] == "ChannelDestroyed" and call.answered_at is not None:
            self.up -= 1

    def _callee_event(self, call: Call, event: dict) -> None:
        kind = event["type"]
        if kind == "ChannelDtmfReceived" and call.pressed is None:
            call.pressed = asterisk_time(event)
        elif call.pressed is not None and call.reacted is None and self.ivr.reacts(event):
            call.reacted = asterisk_time(event)
        elif not call.menu.is_set() and self.ivr.menu_starts(event):
            call.menu.set()
        elif kind == "ChannelVarset" and event["variable"] == "BRIDGEPEER" and event["value"]:
            call.bridged = True  # Asterisk names the other party when the call joins a two-party bridge
        elif kind == "ChannelDialplan" and event["channel"]["dialplan"]["context"] == "flowdesk-fallback":
            call.fallback = True
        elif kind == "ChannelDestroyed" and not call.hung_up:
            call.dropped = True

    # ------------------------------------------------------------------ the caller's side

    async def place(self, call: Call, number_from: str, key: str, key_delay: float) -> None:
        """Dial at the call's time, press `key` once the menu has begun, hang up at its time.
        The dial is not retried: a retry of a dial that Asterisk made late would be refused (409)."""
        await asyncio.sleep(max(0.0, call.due - time.perf_counter()))
        try:
            await self.client.request("POST", f"/channels/{call.id}", params={
                "endpoint": self.ivr.endpoint, "app": APP, "otherChannelId": call.callee,
                "callerId": f'"{number_from}" <{number_from}>', "timeout": 30, "formats": CODEC})
            await self.client.subscribe(f"channel:{call.callee}")
            await self._until(call.answered, call, "not answered")
            await self._until(call.menu, call, "the menu did not begin")
            await asyncio.sleep(key_delay)
            await self.client.send_dtmf(call.id, key)
        except AriError as error:
            call.error = f"{error.method} {error.path.split('/')[1]}: {error.status or ''} {error.message}"[:80]
        except asyncio.TimeoutError as reason:
            call.error = str(reason)
        await asyncio.sleep(max(0.0, call.hang_up_at - time.perf_counter()))
        call.hung_up = True
        try:
            await self.client.hangup(call.id)
        except NotFound:
            pass
        except AriError as error:
            call.error = call.error or f"hang-up: {error.status or ''} {error.message}"[:80]

    @staticmethod
    async def _until(event: asyncio.Event, call: Call, what: str) -> None:
        try:
            await asyncio.wait_for(event.wait(), max(0.1, call.hang_up_at - time.perf_counter()))
        except asyncio.TimeoutError:
            raise asyncio.TimeoutError(what) from None
