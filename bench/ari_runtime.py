"""The runtime side of the ARI load benchmark (bench/ari_calls.py), in a process of its own so
that its CPU time is its own.

    .venv/bin/python bench/ari_runtime.py --agents 1000 --work DIR

It serves the example hotline on the sandbox Asterisk's application `flowdesk`, built the way
`flowdesk serve` builds it (flowdesk.serve.build_edge), with three differences a benchmark needs:
the project's agents are replaced by `--agents` made-up ones who serve every queue and are all
logged in and ready, and their phones are `Local/{extension}@flowdesk-auto-agents/n`, which
answer by themselves after a second; the clock starts on Monday 2026-11-23 at 10:00 in Shanghai,
so the service hours are open; every fixed prompt is spoken before the first call, so the
speech synthesizer is not in the figures.

It prints one JSON line when it is ready ({"ready": true, "menu_uri": ...}: the sound the main
menu plays, so callers know when to press) and, after SIGTERM or SIGINT, once the calls in
progress have finished their work (recordings fetched), one JSON line with what it measured:
for each key press Asterisk reported on a caller's channel, the time until the runtime made its
next request for that call (ms); its CPU seconds and peak memory since it was ready; faults.
"""
from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import logging
import re
import resource
import signal
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.calls import hotline_with_agents  # noqa: E402
from flowdesk.config import Config  # noqa: E402
from flowdesk.serve import ServeSettings, build_edge, start_clock  # noqa: E402
from runtime.ari.client import AriClient  # noqa: E402
from runtime.storage import sqlite_url  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
APP = "flowdesk"                                    # where the sandbox's [flowdesk] context sends calls
AGENT_DIAL = "Local/{extension}@flowdesk-auto-agents/n"
OPENING = "2026-11-23 10:00"                        # a Monday morning: the service hours are open
MEDIA_IN_ASTERISK = "/var/lib/flowdesk/media"


class KeyToRequest:
    """The AriEdge trace hook: per call, from a key press on the caller's channel (the event
    routed to the call) to the next request the call centre made for that call."""

    def __init__(self):
        self.pressed: dict[str, float] = {}
        self.ms: list[float] = []
        self.event_lag_ms: list[float] = []  # Asterisk's timestamp of the key to its arrival here
        self.first_requests: Counter[str] = Counter()

    def __call__(self, kind: str, call_id: str, item) -> None:
        if kind == "event":
            if item.get("type") == "ChannelDtmfReceived" and item["channel"]["id"] == call_id:
                self.pressed.setdefault(call_id, time.perf_counter())
                sent = dt.datetime.strptime(item["timestamp"], "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()
                self.event_lag_ms.append((time.time() - sent) * 1000)
        elif call_id in self.pressed:
            self.ms.append((time.perf_counter() - self.pressed.pop(call_id)) * 1000)
            self.first_requests[type(item).__name__] += 1


class TimedAriClient(AriClient):
    """The runtime's ARI client, timing each request: how long Asterisk takes to answer under load."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.ms: dict[str, list[float]] = defaultdict(list)
        self.in_flight = self.most_in_flight = 0

    async def request(self, method: str, path: str, **kwargs):
        kind = f"{method} {'/'.join(part if part.isalpha() else '*' for part in path.split('/')[1:])}"
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        began = time.perf_counter()
        try:
            return await super().request(method, path, **kwargs)
        finally:
            self.in_flight -= 1
            self.ms[kind].append((time.perf_counter() - began) * 1000)


class Complaints(logging.Handler):
    """Counts the runtime's warnings and errors, with the error that caused each, so the report
    can say what went wrong; call ids and agent names are blanked so that like counts with like."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.seen: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            text += f": {type(error).__name__}: {error}"
        text = re.sub(r"agent\d+", "AGENT", re.sub(r"bench-[0-9a-f]+-h\d+-\d+", "CALL", text))
        self.seen[f"{record.levelname} {text[:160]}"] += 1


def settings(args: argparse.Namespace) -> ServeSettings:
    return ServeSettings(ari=args.url, user=args.user, password=args.password, app=APP, agent_dial=AGENT_DIAL,
                         outbound_dial="Local/{number}@flowdesk-transfer",
                         media_dir=args.asterisk_root / MEDIA_IN_ASTERISK.lstrip("/"),
                         media_dir_in_asterisk=MEDIA_IN_ASTERISK, recordings=args.work / "recordings",
                         records=None, agents="ready")


def menu_text(bundle) -> str:
    step = next(s for s in bundle.flows["hotline"].steps if getattr(s, "id", None) == "main_menu")
    return "".join(part.text or "" for part in step.prompt)


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def serve(args: argparse.Namespace) -> dict:
    bundle = hotline_with_agents(args.agents)
    config = Config(project=ROOT, database_url=sqlite_url(args.work / "calls.db"), environment="test")
    serve_settings = settings(args)
    edge = build_edge(bundle, serve_settings, config,
                      TimedAriClient(serve_settings.ari, serve_settings.user, serve_settings.password, APP),
                      start_clock(OPENING, "Asia/Shanghai"))
    edge.trace = trace = KeyToRequest()
    complaints = Complaints()
    logging.getLogger("flowdesk").addHandler(complaints)
    await edge.media.prepare(bundle, edge.center.options)
    menu_uri = await edge.media.say(menu_text(bundle))
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    running = asyncio.create_task(edge.run())
    await edge.stream.wait_connected(30)
    cpu_before = cpu_seconds()
    print(json.dumps({"ready": True, "menu_uri": menu_uri}), flush=True)
    await stop.wait()
    await finish_calls(edge, args.drain)
    cpu = cpu_seconds() - cpu_before
    lanes_left = len(edge.lanes)
    await edge.close()
    running.cancel()
    await asyncio.gather(running, return_exceptions=True)
    return {"key_to_request_ms": trace.ms, "first_requests": dict(trace.first_requests),
            "key_event_lag_ms": trace.event_lag_ms, "requests_ms": edge.client.ms,
            "most_requests_in_flight": edge.client.most_in_flight,
            "presses_unanswered": len(trace.pressed), "cpu_s": cpu,
            "max_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "faults": edge.faults, "lanes_left": lanes_left, "complaints": dict(complaints.seen.most_common(12))}


async def finish_calls(edge, timeout: float) -> None:
    """Wait until the calls still in progress are done (their recordings fetched), up to `timeout`."""
    deadline = time.monotonic() + timeout
    while edge.lanes and time.monotonic() < deadline:
        await asyncio.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, required=True)
    parser.add_argument("--work", type=Path, required=True, help="a folder for the event log and recordings")
    parser.add_argument("--asterisk-root", type=Path, required=True, help="the sandbox's root directory")
    parser.add_argument("--url", default="http://127.0.0.1:8088/ari")
    parser.add_argument("--user", default="flowdesk")
    parser.add_argument("--password", default="flowdesk")
    parser.add_argument("--drain", type=float, default=30.0, help="seconds to let calls finish after the stop signal")
    parser.add_argument("--without-recording", action="store_true",
                        help="what if the hotline did not record its calls: the `record` step does nothing")
    args = parser.parse_args()
    if args.without_recording:
        from runtime import commands
        from runtime.ari import outbound
        outbound._ACTIONS[commands.StartRecording] = lambda edge, lane, command: asyncio.sleep(0)
    logging.basicConfig(level=logging.WARNING, format="runtime %(levelname)s %(name)s: %(message)s")
    print(json.dumps(asyncio.run(serve(args))), flush=True)


if __name__ == "__main__":
    main()
