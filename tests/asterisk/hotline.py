"""The example hotline running on the sandbox Asterisk, in the test's own event loop.

`hotline(...)` starts an `AriEdge` for the compiled example project on the application `flowdesk`
(where the sandbox's dialplan sends every number), with agents' phones dialled as Local channels
into the test's agents application, and a clock that starts on a Monday at 10:00 in Shanghai (the
hotline's service hours) and runs at real speed, so the tests do not depend on the time of day.
"""
from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
from collections import defaultdict
from pathlib import Path
from zoneinfo import ZoneInfo

from compiler import compile_project
from runtime import commands as c
from runtime.ari.adapter import AriEdge, EdgeSettings
from runtime.ari.client import AriClient
from runtime.ari.media import Media
from runtime.callcenter import CallCenter, MemoryCrm
from runtime.engine import EngineOptions
from runtime.storage import EventLog, sqlite_url
from phones import AGENT_DIAL, Phones

PROJECT = Path(__file__).resolve().parents[2]
HOTLINE = "4008001000"  # env.HOTLINE of the test environment
START = dt.datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))

_bundle = None


def bundle():
    global _bundle
    if _bundle is None:
        result = compile_project([str(PROJECT / "flows"), str(PROJECT / "schemas")], environment="test")
        assert result.bundle is not None, result.diagnostics
        _bundle = result.bundle
    return _bundle


class Clock:
    """The centre's clock: real speed from `start`; `skip` jumps ahead, for waits of minutes."""

    def __init__(self, start: dt.datetime = START):
        self.start, self.began = start, time.monotonic()

    def __call__(self) -> dt.datetime:
        return self.start + dt.timedelta(seconds=time.monotonic() - self.began)

    def skip(self, edge: AriEdge, seconds: float) -> None:
        self.start += dt.timedelta(seconds=seconds)
        edge.flush()  # wakes the edge's clock to fire what fell due


class Trace:
    """What the runtime did for each call: the prompts it spoke and the events it got."""

    def __init__(self):
        self.said: dict[str, list[str]] = defaultdict(list)
        self.requests: dict[str, list] = defaultdict(list)
        self.events: dict[str, list[dict]] = defaultdict(list)

    def __call__(self, kind: str, call_id: str, item) -> None:
        if kind == "request":
            self.requests[call_id].append(item)
            if isinstance(item, c.Say):
                self.said[call_id].append(item.text)
        else:
            self.events[call_id].append(item)

    def heard(self, call_id: str, text: str) -> bool:
        return any(text in said for said in self.said[call_id])


def media_for(root: Path) -> Media:
    """Prompts written inside the sandbox's root, where its Asterisk reads them."""
    return Media(root / "var/lib/flowdesk/media", "/var/lib/flowdesk/media", project_dir=PROJECT)


@contextlib.asynccontextmanager
async def hotline(asterisk, tmp_path: Path, *, agents=("li_na",), records=None, settings: dict | None = None,
                  start: dt.datetime = START):
    clock = Clock(start)
    center = CallCenter(bundle(), epoch=clock(), crm=MemoryCrm(bundle(), records or {}),
                        options=EngineOptions(secrets=lambda name: f"token-{name}"))
    for agent in agents:
        center.login(agent, clock())
    trace = Trace()
    edge = AriEdge(AriClient(asterisk.url, asterisk.user, asterisk.password, "flowdesk"), center,
                   media_for(asterisk.root),
                   EdgeSettings(agent_dial=AGENT_DIAL, recordings_dir=tmp_path / "recordings", **(settings or {})),
                   event_log=EventLog(sqlite_url(tmp_path / "calls.db")), now=clock, trace=trace)
    running = asyncio.create_task(edge.run())
    await edge.stream.wait_connected(10)
    try:
        yield edge
    finally:
        await edge.close()
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)


def run(coro, timeout: float = 240):
    """Run a test's scenario coroutine, failing it after `timeout` seconds."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


def phones_for(asterisk) -> Phones:
    return Phones(asterisk.url, asterisk.user, asterisk.password)


def log_of(tmp_path: Path) -> EventLog:
    """The event log `hotline(...)` wrote for the test."""
    return EventLog(sqlite_url(tmp_path / "calls.db"))


def state(edge: AriEdge, call_id: str):
    call = edge.center.calls.get(call_id)
    return call.state if call is not None else None


def waiting(edge: AriEdge, call_id: str, wait: str, flow: str | None = None):
    """A condition: the call waits for `wait` (engine.MENU, QUEUE...), in `flow` if given."""
    def check() -> bool:
        s = state(edge, call_id)
        return s is not None and s.wait == wait and (flow is None or s.flow == flow)
    return check
