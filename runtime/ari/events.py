"""Events from Asterisk: the one WebSocket that brings them, and what each one is about.

Asterisk sends an application's events over one WebSocket and keeps none while it is down, so
the stream reconnects by itself and tells its owner each time, who then asks Asterisk how things
stand (`on_connect(reconnected=True)`). Its reader only parses and hands over: a slow or failing
handler must never hold up the events of the other calls.
"""
from __future__ import annotations

import asyncio
import json
import logging
import random
from typing import Awaitable, Callable
from urllib.parse import urlencode

import aiohttp

from runtime.ari.client import AriClient, describe

log = logging.getLogger("flowdesk.ari")

DROPS = (aiohttp.ClientError, OSError, asyncio.TimeoutError)


def resource_ids(event: dict) -> list[str]:
    """The ids an event is about, most specific first, for routing it to its call: channel.id,
    peer.id, playback.id, recording.name, bridge.id, then the channel or bridge a playback or
    recording is on ("channel:ID" / "bridge:ID" in its target_uri)."""
    ids = [
        (event.get("channel") or {}).get("id"),
        (event.get("peer") or {}).get("id"),
        (event.get("playback") or {}).get("id"),
        (event.get("recording") or {}).get("name"),
        (event.get("bridge") or {}).get("id"),
    ]
    for media in ("playback", "recording"):
        ids.append(target_id((event.get(media) or {}).get("target_uri", "")))
    return list(dict.fromkeys(i for i in ids if i))


def target_id(target_uri: str) -> str | None:
    kind, _, resource = target_uri.partition(":")
    return resource if kind in ("channel", "bridge") and resource else None


def jittered(delay: float) -> float:
    """Somewhere in the upper half of `delay`, so many runtimes do not reconnect in step."""
    return random.uniform(delay / 2, delay)


class EventStream:
    """One WebSocket for the application, read by one task that never blocks: each event is handed
    to `on_event(event_dict)`, a plain, fast, synchronous callable (the adapter puts it in a per-call
    queue). It reconnects after a drop with exponential backoff (0.2 s doubling to 5 s, with jitter)
    and after each (re)connection awaits `on_connect(reconnected)` so the caller can reconcile:
    Asterisk does not buffer events while the socket is down. The socket is not read while
    on_connect runs, so it should be quick. `connected` is set once on_connect has returned and
    cleared while the socket is down."""

    def __init__(self, client: AriClient, on_event: Callable[[dict], None],
                 on_connect: Callable[[bool], Awaitable[None]] | None = None, *,
                 backoff_start: float = 0.2, backoff_max: float = 5.0, subscribe_all: bool = False,
                 heartbeat: float | None = 10.0):
        self.client = client
        self.on_event = on_event
        self.on_connect = on_connect
        self.backoff_start, self.backoff_max = backoff_start, backoff_max
        self.subscribe_all = subscribe_all
        self.heartbeat = heartbeat  # pings find a connection that died without a word
        self.connected = asyncio.Event()
        self.connections = 0
        self.websocket: aiohttp.ClientWebSocketResponse | None = None  # the open socket, None while down
        self._closing = False
        self._reader: asyncio.Task | None = None

    @property
    def url(self) -> str:
        query = {"app": self.client.app, **({"subscribeAll": "true"} if self.subscribe_all else {})}
        base = self.client.url.replace("http://", "ws://", 1).replace("https://", "wss://", 1)
        return f"{base}/events?{urlencode(query)}"

    async def run(self) -> None:
        """Stay connected until close()."""
        if self._closing:
            return
        self._reader = asyncio.create_task(self._stay_connected())
        try:
            await self._reader
        except asyncio.CancelledError:
            if not self._closing or asyncio.current_task().cancelling():
                raise

    async def wait_connected(self, timeout: float) -> None:
        await asyncio.wait_for(self.connected.wait(), timeout)

    async def close(self) -> None:
        self._closing = True
        if self._reader is not None and not self._reader.done():
            self._reader.cancel()
            await asyncio.wait([self._reader])

    async def _stay_connected(self) -> None:
        delay = self.backoff_start
        while True:
            connections = self.connections
            await self._listen_once()
            if self.connections > connections:
                delay = self.backoff_start
            await asyncio.sleep(jittered(delay))
            delay = min(delay * 2, self.backoff_max)

    async def _listen_once(self) -> None:
        """One connection, from connecting until it drops (or cannot be made)."""
        try:
            async with self.client.session.ws_connect(self.url, headers=self.client.headers,
                                                      heartbeat=self.heartbeat) as websocket:
                self.websocket = websocket
                self.connections += 1
                await self._connected(reconnected=self.connections > 1)
                await self._read(websocket)
            log.warning("ARI events of %s: the connection closed (%s); reconnecting",
                        self.client.app, websocket.exception() or f"code {websocket.close_code}")
        except DROPS as error:
            log.warning("ARI events of %s: %s; reconnecting", self.client.app, describe(error))
        finally:
            self.websocket = None
            self.connected.clear()

    async def _connected(self, reconnected: bool) -> None:
        log.info("ARI events of %s: connected%s", self.client.app, " again" if reconnected else "")
        if self.on_connect is not None:
            try:
                await self.on_connect(reconnected)
            except Exception:
                log.exception("ARI events of %s: on_connect failed", self.client.app)
        self.connected.set()

    async def _read(self, websocket: aiohttp.ClientWebSocketResponse) -> None:
        """Until the socket closes or fails; nothing here waits for anything but the next message."""
        async for message in websocket:
            if message.type == aiohttp.WSMsgType.TEXT:
                self._deliver(message.data)
            elif message.type == aiohttp.WSMsgType.ERROR:
                return

    def _deliver(self, text: str) -> None:
        try:
            event = json.loads(text)
            if event.get("type") == "ApplicationReplaced":
                log.error("ARI events of %s: another connection took the application over", self.client.app)
            self.on_event(event)
        except Exception:
            log.exception("ARI event not handled: %.300s", text)
