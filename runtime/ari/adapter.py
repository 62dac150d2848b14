"""The Asterisk edge: real calls in an ARI application, run by the call centre.

`AriEdge` connects a `runtime.callcenter.CallCenter` to Asterisk.  Asterisk's events become the
centre's inputs (runtime.ari.inbound) and the centre's requests become ARI requests
(runtime.ari.outbound); the engine and the ACD never see ARI.  Three tasks run beside the calls'
lanes (runtime.ari.lanes): the event stream's reader, the clock that fires the centre's timers on
time, and the writer that moves the event log to the database off the event loop.

When the event socket comes back after a drop, or the runtime starts while calls are already in
the application, `reconcile` compares what Asterisk has with what the centre knows: calls whose
channel is gone are ended, playbacks that finished unseen are finished, calls that were waiting
in a queue before a restart are adopted again from the state saved on their channel, and any
other channel goes to the dialplan's fallback: a caller never waits in silence.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from runtime import http_client
from runtime.ari import inbound, outbound
from runtime.ari.client import AriClient, AriError
from runtime.ari.events import EventStream, resource_ids
from runtime.ari.lanes import SAVED_STATE, Lane
from runtime.ari.media import Media
from runtime.callcenter import CallCenter, LogWriter
from runtime.engine import CallState
from runtime.events import HttpFailed, HttpReply
from runtime.storage import EventLog

log = logging.getLogger("flowdesk.ari")
CLOSE_WAIT_S = 3.0  # how long a stop waits for the event socket and the tasks to wind down


@dataclass
class EdgeSettings:
    """How this Asterisk reaches agents and numbers; the bundle does not say."""
    agent_dial: str = "PJSIP/{extension}"           # {extension}, {agent}
    outbound_dial: str = "Local/{number}@flowdesk-transfer"  # callbacks dial the customer so
    fallback_context: str = "flowdesk-fallback"     # extension s, priority 1
    transfer_context: str = "flowdesk-transfer"     # extension: the number, priority 1
    recordings_dir: Path = Path(".flowdesk/recordings")
    voicemail_max_s: int = 120


@dataclass
class AriEdge:
    client: AriClient
    center: CallCenter
    media: Media
    settings: EdgeSettings = field(default_factory=EdgeSettings)
    event_log: EventLog | None = None
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.timezone.utc)
    # Told of each event routed to a call ("event", call id, the ARI event) and each request the
    # centre makes for it ("request", call id, the command), as they happen: tests, benchmarks, tracing.
    trace: Callable[[str, str, object], None] | None = None
    # Given what the call centre asked for at each flush (rings, stopped rings, bridges...), after
    # it went to the lanes: the studio's agent desktops pop on RingAgent without waiting for ARI.
    on_media: Callable[[list], None] | None = None

    def __post_init__(self) -> None:
        self.lanes: dict[str, Lane] = {}
        self.owners: dict[str, str] = {}    # channel/playback/bridge/recording id -> call id
        self.numbers: dict[str, str] = {}   # call id -> caller's number, while the ACD may call back
        self.stream = EventStream(self.client, self.on_event, self.reconcile)
        self.center.http_async = self._http
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self.log_writer = LogWriter(self.center, self.event_log)
        self.faults = 0

    # ------------------------------------------------------------------ running

    async def run(self) -> None:
        """Serve calls until `close()`."""
        await self.client.open()
        self._tasks = [asyncio.create_task(coro) for coro in (self.stream.run(), self._clock(), self.log_writer.run())]
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def close(self) -> None:
        """Stop serving.  The event log's last rows are written before the event socket is closed,
        and a socket slow to close (Asterisk answering the close late) does not hold the stop."""
        for task in self._tasks + [lane.task for lane in self.lanes.values() if lane.task]:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=CLOSE_WAIT_S)
        await self.log_writer.finish()
        try:
            await asyncio.wait_for(self.stream.close(), CLOSE_WAIT_S)
        except asyncio.TimeoutError:
            log.warning("the ARI event socket did not close within %s s; leaving it", CLOSE_WAIT_S)
        await self.client.close()

    # ------------------------------------------------------------------ routing

    def on_event(self, event: dict) -> None:
        """The reader's callback: put the event in its call's lane, at once."""
        call_id = next((self.owners[rid] for rid in resource_ids(event) if rid in self.owners), None)
        if call_id is None and event.get("type") == "StasisStart":
            call_id = event["channel"]["id"]
            self.own(call_id, call_id)
        if call_id is not None:
            if self.trace is not None:
                self.trace("event", call_id, event)
            self.lane(call_id).put("ari", event)

    def own(self, resource_id: str, call_id: str) -> None:
        self.owners[resource_id] = call_id

    def lane(self, call_id: str) -> Lane:
        lane = self.lanes.get(call_id)
        if lane is None:
            lane = self.lanes[call_id] = Lane(call_id)
            lane.task = asyncio.create_task(self._work(lane))
        return lane

    async def _work(self, lane: Lane) -> None:
        while True:
            kind, item = await lane.inbox.get()
            try:
                await self._handle(lane, kind, item)
            except Exception as error:  # a fault of the edge must not leave the caller in silence
                log.exception("call %s: %s failed", lane.call_id, kind)
                await self.fallback(lane, f"{type(error).__name__}: {error}")
            self.flush()
            if lane.idle:
                self._retire(lane)
                return

    async def _handle(self, lane: Lane, kind: str, item) -> None:
        if kind == "ari":
            await inbound.handle(self, lane, item)
        elif kind == "media":
            if self.trace is not None:
                self.trace("request", lane.call_id, item.command)
            await outbound.perform(self, lane, item.command)
        elif kind == "event":
            self.center.deliver(lane.call_id, item)
        elif kind == "sync":
            await inbound.resync(self, lane, item)

    def flush(self) -> None:
        """Hand what the call centre asked for to the lanes of the calls it is for."""
        medias = self.center.take_outbox()
        for media in medias:
            self.lane(media.call_id).put("media", media)
        self._wake.set()
        if self.on_media is not None:
            try:
                self.on_media(medias)
            except Exception:  # a watcher's fault must not stop the calls
                log.exception("the edge's on_media watcher failed")

    def _retire(self, lane: Lane) -> None:
        self.lanes.pop(lane.call_id, None)
        if lane.caller and self.center.acd.call_state(lane.call_id) is not None:
            self.numbers[lane.call_id] = lane.caller  # a callback is pending
        else:
            self.numbers.pop(lane.call_id, None)
        for rid in [rid for rid, owner in self.owners.items() if owner == lane.call_id]:
            del self.owners[rid]

    # ------------------------------------------------------------------ faults

    async def fallback(self, lane: Lane, reason: str) -> None:
        """The call cannot go on here: the dialplan's fallback takes the caller (an apology or a
        plain Asterisk queue), and the call's record ends with the reason."""
        self.faults += 1
        self.center.drop(lane.call_id, reason, self.now())
        if lane.caller_gone:
            return
        await outbound.leave_hold(self, lane)
        await outbound.release_agent(self, lane)
        await outbound.silence(self, lane)
        try:
            await self.client.continue_in_dialplan(lane.call_id, context=self.settings.fallback_context,
                                                   extension="s", priority=1)
        except AriError:
            try:
                await self.client.hangup(lane.call_id)
            except AriError:
                pass

    # ------------------------------------------------------------------ reconciliation

    async def reconcile(self, reconnected: bool) -> None:
        """After each (re)connection: Asterisk does not replay the events missed meanwhile."""
        app = await self.client.application()
        present = set(app.get("channel_ids", []))
        for lane in list(self.lanes.values()):
            lane.put("sync", present)
        strangers = sorted(present - set(self.owners))
        if strangers:  # off the reader: the socket is not read until this returns
            self._tasks.append(asyncio.create_task(self._take_over_all(strangers)))

    async def _take_over_all(self, channel_ids: list[str]) -> None:
        """Callers first; then the runtime's own legs of their calls (named after the call)."""
        bridged = await self._bridged_channels()
        legs = [channel_id for channel_id in channel_ids if Lane.leg_of(channel_id)]
        for channel_id in [c for c in channel_ids if c not in legs] + legs:
            try:
                if channel_id in legs:
                    await self._take_over_leg(channel_id)
                else:
                    await self._take_over(channel_id, bridged)
            except AriError as error:
                log.warning("channel %s found after a restart could not be taken over: %s", channel_id, error)

    async def _take_over_leg(self, channel_id: str) -> None:
        """The recording of an adopted call goes on; an agent's phone ringing for a call nobody
        runs any more is hung up (the ACD rings again for adopted callers)."""
        call_id, role = Lane.leg_of(channel_id)
        lane = self.lanes.get(call_id)
        if role == "snoop" and lane is not None and lane.started:
            lane.snoop = channel_id
            self.own(channel_id, call_id)
            self.own(f"call-{call_id}", call_id)
            lane.recordings[f"call-{call_id}"] = "call"
        elif not (role == "agent" and lane is not None and lane.orphan):
            await self.client.hangup(channel_id)

    async def _bridged_channels(self) -> dict[str, list[str]]:
        out = {}
        for bridge in await self.client.list_bridges():
            for channel_id in bridge.get("channels", []):
                out[channel_id] = [bridge["id"], *bridge.get("channels", [])]
        return out

    async def _take_over(self, channel_id: str, bridged: dict[str, list[str]]) -> None:
        """A channel in the application that this runtime does not know: it was there before."""
        if channel_id in bridged:  # a conversation in progress: let it finish
            bridge_id, *channels = bridged[channel_id]
            lane = self.lane(bridged[channel_id][1])
            lane.orphan, lane.bridge = True, bridge_id
            for other in channels:
                self.own(other, lane.call_id)
            self.own(bridge_id, lane.call_id)
            return
        saved = await self._saved_state(channel_id)
        lane = self.lane(channel_id)
        self.own(channel_id, channel_id)
        if saved is None:  # its StasisEnd, when the dialplan has it, retires the lane
            await self.fallback(lane, "the runtime restarted while this call was in its flow")
            return
        state = CallState.from_dict(saved["state"])
        lane.caller, lane.dialed, lane.started = state.caller, state.dialed, True
        self.center.adopt(state, queue=saved["queue"], priority=saved.get("priority", 0), at=self.now())
        lane.record = self.center.calls[channel_id].record
        self.flush()

    async def _saved_state(self, channel_id: str) -> dict | None:
        try:
            text = await self.client.get_var(channel_id, SAVED_STATE)
            return json.loads(text) if text else None
        except (AriError, ValueError):
            return None

    async def save_state(self, lane: Lane, queue: str, priority: int) -> None:
        """Keep a waiting call's state on its channel: a restarted runtime adopts it from there."""
        call = self.center.calls.get(lane.call_id)
        if call is None:
            return
        state = call.state.to_dict()
        state["history"] = []
        await self.client.set_var(lane.call_id, SAVED_STATE,
                                  json.dumps({"state": state, "queue": queue, "priority": priority}))

    # ------------------------------------------------------------------ time, outside systems, the log

    async def _clock(self) -> None:
        """Fire the centre's timers and deadlines when they fall due."""
        while True:
            due = self.center.next_due()
            timeout = None if due is None else max(0.0, (due - self.now()).total_seconds())
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except asyncio.TimeoutError:
                pass
            self.center.advance(self.now())
            self.flush()
            self._wake.clear()

    def _http(self, call_id: str, request) -> None:
        """A flow's http step: sent on the shared session; the reply joins the call's lane."""
        async def send() -> None:
            reply = await http_client.send(self.client.session, request)
            at = self.now()
            event = HttpFailed(at=at, reason=reply) if isinstance(reply, str) else \
                HttpReply(at=at, status=reply[0], body=reply[1])
            if call_id in self.lanes:
                self.lanes[call_id].put("event", event)
        asyncio.get_running_loop().create_task(send())

