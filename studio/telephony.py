"""The live call centre inside the studio: calls on a real clock, and what each agent's desktop hears.

`DesktopHub` turns what a running `CallCenter` does into events for each agent's desktop:
`Reserved` the moment the ACD rings the agent (the screen pop), `Withdrawn` when that ring stops
unanswered, `Connected`, `Ended`, `WrapUp` (after-call work and when it ends), `StateChanged`
and `CallbackDue`.  It reads only the centre's `Media` items and its ACD's agent states, so any
edge can feed it: `observe(center, medias)` after each step.

`LiveCallCenter` is the simulated telephony: no audio, prompts take a fixed short time, keys are
pressed for the caller when the flow waits for them, and agents answer and hang up from the
desktop.  It runs the centre on the wall clock (an asyncio task sleeps until the next timer or
deadline) and writes the event log off the event loop.  Everything here runs on the event loop's
thread: route handlers call it from `async def`s.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import heapq
import itertools
import logging
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Union

from sqlalchemy import func
from sqlmodel import Session, select

from compiler import ir
from runtime import acd_actions as a
from runtime import commands as c
from runtime import engine
from runtime.callcenter import CallCenter, Crm, LogWriter, Media, MemoryCrm
from runtime.storage import Call, CallbackTask, CallEvent, EventLog
from runtime.times import utcnow

log = logging.getLogger("flowdesk.telephony")

# Each simulated prompt plays this long, so a demo call reaches the queue in a moment; pass
# runtime.simulator.prompt_ms for prompts as long as their text.
DEMO_PROMPT_MS = 300
NO_HTTP = "no outside systems in the simulated telephony"
WRITE_EVERY_S = 0.25
SUBSCRIBER_BACKLOG = 1000

# Why an agent is not ready; the desktop offers these.  (name, what the agent sees)
NOT_READY_REASONS: tuple[tuple[str, str], ...] = (
    ("break", "Break"), ("lunch", "Lunch"), ("meeting", "Meeting"), ("training", "Training"),
    ("coaching", "Coaching"), ("admin", "Paperwork"),
)
# How a call ended, picked by the agent during after-call work.  The DSL has no wrap-up codes,
# so the studio configures them here (LiveCallCenter(wrapup_codes=...)).
WRAPUP_CODES: tuple[tuple[str, str], ...] = (
    ("resolved", "Resolved on the call"), ("ticket", "Ticket opened"), ("callback", "Callback scheduled"),
    ("transferred", "Transferred"), ("complaint", "Complaint taken"), ("no_action", "No action needed"),
)


# ---------------------------------------------------------------------- what a desktop hears

@dataclass(frozen=True)
class Reserved:
    """The ACD rings this agent for a call: pop the caller's record.  `wall` is the server's
    time.time() when it was published (latency measurements)."""
    call_id: str
    caller: str
    queue: str | None
    waited_ms: int
    at: dt.datetime
    callback: bool = False
    wall: float = field(default_factory=time.time)


@dataclass(frozen=True)
class Withdrawn:
    """The ring stopped without the agent answering (caller hung up, ring timeout, decline)."""
    call_id: str
    at: dt.datetime


@dataclass(frozen=True)
class Connected:
    call_id: str
    caller: str
    at: dt.datetime


@dataclass(frozen=True)
class Ended:
    call_id: str
    at: dt.datetime


@dataclass(frozen=True)
class WrapUp:
    """After-call work for `call_id` until `until` (then the ACD makes the agent ready)."""
    call_id: str | None
    until: dt.datetime


@dataclass(frozen=True)
class StateChanged:
    state: str            # logged_out, ready, not_ready, ringing, on_call, wrap_up
    reason: str | None
    at: dt.datetime


@dataclass(frozen=True)
class CallbackDue:
    """A callback the agent scheduled is due: call `number` back."""
    number: str
    call_id: str | None
    at: dt.datetime


AgentEvent = Union[Reserved, Withdrawn, Connected, Ended, WrapUp, StateChanged, CallbackDue]


class TelephonyError(Exception):
    """An agent action that does not fit now (nothing ringing, not logged in); says what."""


@dataclass
class _Desk:
    state: str = "logged_out"
    reason: str | None = None
    call: Reserved | None = None          # the call ringing for or connected to the agent
    connected: bool = False
    last_call: str | None = None          # the call whose after-call work this is
    wrapup_until: dt.datetime | None = None


class DesktopHub:
    """Per-agent events from a call centre, as they happen, to every subscriber."""

    def __init__(self, bundle: ir.Bundle):
        self.bundle = bundle
        self.desks: dict[str, _Desk] = {name: _Desk() for name in bundle.agents}
        self._subscribers: dict[str, list[asyncio.Queue]] = {}
        # Told after each step, once the desks are up to date (the wallboard); a watcher's fault
        # is logged and never stops the calls.
        self.watchers: list[Callable[[], None]] = []

    def take_bundle(self, bundle: ir.Bundle) -> None:
        """A new version went live: its new agents get a desk; an agent no longer declared keeps
        theirs, so a call they are on still ends on their desktop."""
        self.bundle = bundle
        for name in bundle.agents:
            self.desks.setdefault(name, _Desk())

    def subscribe(self, agent: str) -> asyncio.Queue:
        queue: asyncio.Queue = asyncio.Queue(SUBSCRIBER_BACKLOG)
        self._subscribers.setdefault(agent, []).append(queue)
        return queue

    def unsubscribe(self, agent: str, queue: asyncio.Queue) -> None:
        queues = self._subscribers.get(agent, [])
        if queue in queues:
            queues.remove(queue)

    def publish(self, agent: str, event: AgentEvent) -> None:
        for queue in self._subscribers.get(agent, ()):
            if queue.full():  # a desktop that stopped reading loses its oldest news, not the newest
                queue.get_nowait()
            queue.put_nowait(event)

    def desk(self, agent: str) -> _Desk:
        return self.desks[agent]

    def observe(self, center: CallCenter, medias: Iterable[Media]) -> None:
        """After each step of the centre: its media items, then every agent's state."""
        for media in medias:
            command = media.command
            if isinstance(command, a.RingAgent) and command.agent in self.desks:
                self._reserved(center, media.at, command)
            elif isinstance(command, a.StopRinging) and command.agent in self.desks:
                desk = self.desks[command.agent]
                if desk.call is not None and desk.call.call_id == command.call_id and not desk.connected:
                    desk.call = None
                    self.publish(command.agent, Withdrawn(command.call_id, media.at))
        for agent, desk in self.desks.items():
            self._follow_call(center, agent, desk)
            self._follow_state(center, agent, desk)
        for watch in self.watchers:
            try:
                watch()
            except Exception:
                log.exception("a watcher of the call centre failed")

    def _reserved(self, center: CallCenter, at: dt.datetime, ring: a.RingAgent) -> None:
        call = center.calls.get(ring.call_id)
        caller = call.state.caller if call else ""
        visit = call.visit if call else None
        waited = int((at - visit.enqueued_at).total_seconds() * 1000) if visit else 0
        event = Reserved(ring.call_id, caller, visit.queue if visit else None, max(0, waited), at, ring.callback)
        desk = self.desks[ring.agent]
        desk.call, desk.connected = event, False
        self.publish(ring.agent, event)

    def _follow_call(self, center: CallCenter, agent: str, desk: _Desk) -> None:
        if desk.call is None:
            return
        call = center.calls.get(desk.call.call_id)
        talking = call is not None and call.state.wait == engine.CONNECTED and call.state.agent == agent
        if talking and not desk.connected:
            desk.connected = True
            self.publish(agent, Connected(desk.call.call_id, desk.call.caller, center.now))
        elif desk.connected and not talking:
            desk.last_call, desk.call, desk.connected = desk.call.call_id, None, False
            self.publish(agent, Ended(desk.last_call, center.now))

    def _follow_state(self, center: CallCenter, agent: str, desk: _Desk) -> None:
        state, reason = center.acd.agent_state(agent)
        if (state, reason) == (desk.state, desk.reason):
            return
        desk.state, desk.reason = state, reason
        self.publish(agent, StateChanged(state, reason, center.now))
        if state == "wrap_up":
            desk.wrapup_until = self._wrapup_until(center, desk.last_call)
            self.publish(agent, WrapUp(desk.last_call, desk.wrapup_until))
        else:
            desk.wrapup_until = None

    def _wrapup_until(self, center: CallCenter, call_id: str | None) -> dt.datetime:
        call = center.calls.get(call_id) if call_id else None
        if call is not None and call.visit is not None and call.visit.wrapup_ended_at is not None:
            return call.visit.wrapup_ended_at
        queue = center.bundle.queues.get(call.visit.queue) if call and call.visit else None
        return center.now + dt.timedelta(milliseconds=queue.wrapup_ms if queue else 0)


# ---------------------------------------------------------------------- the simulated telephony

@dataclass(order=True)
class _Callback:
    at: dt.datetime
    seq: int
    agent: str = field(compare=False)
    number: str = field(compare=False)
    call_id: str | None = field(compare=False)


class LiveCallCenter:
    """A call centre for the bundle on the wall clock, with simulated calls and agents at desktops."""

    def __init__(self, bundle: ir.Bundle, *, crm: Crm | None = None, event_log: EventLog | None = None,
                 clock: Callable[[], dt.datetime] = utcnow, prompt_ms: Callable[[c.Say | c.Play], int] | None = None,
                 wrapup_codes: tuple[tuple[str, str], ...] = WRAPUP_CODES,
                 not_ready_reasons: tuple[tuple[str, str], ...] = NOT_READY_REASONS):
        self.bundle = bundle
        self.clock = clock
        self.crm = crm if crm is not None else MemoryCrm(bundle)
        self.event_log = event_log
        self.center = CallCenter(bundle, epoch=clock(), crm=self.crm, http=lambda request: NO_HTTP,
                                 prompt_ms=prompt_ms or (lambda command: DEMO_PROMPT_MS),
                                 options=engine.SIMULATION_OPTIONS, test=True)
        self.log_writer = LogWriter(self.center, event_log, WRITE_EVERY_S)
        self.hub = DesktopHub(bundle)
        self.wrapup_codes = dict(wrapup_codes)
        self.not_ready_reasons = dict(not_ready_reasons)
        self.callbacks: list[_Callback] = []
        self._keys: dict[str, str] = {}       # call id -> keys the caller still means to press
        self._ids = itertools.count(1)
        self._wake: asyncio.Event | None = None
        self._tasks: list[asyncio.Task] = []

    # ------------------------------------------------------------------ running

    async def start(self) -> None:
        """Run the clock and the event-log writer until `stop()`."""
        self._wake = asyncio.Event()
        await asyncio.to_thread(self.load_callbacks)
        self._tasks = [asyncio.create_task(self._run_clock()), asyncio.create_task(self.log_writer.run())]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        await self.log_writer.finish()

    def step(self) -> None:
        """Let the clock catch up, press the callers' keys that are due, tell the desktops."""
        now = self.clock()
        self.center.advance(now)
        self._press_keys(now)
        self._due_callbacks(now)
        self.hub.observe(self.center, self.center.take_outbox())
        if self._wake is not None:
            self._wake.set()

    def next_due(self) -> dt.datetime | None:
        times = [t for t in (self.center.next_due(), self.callbacks[0].at if self.callbacks else None) if t]
        return min(times) if times else None

    async def _run_clock(self) -> None:
        while True:
            due = self.next_due()
            timeout = None if due is None else max(0.0, (due - self.clock()).total_seconds())
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except asyncio.TimeoutError:
                pass
            try:
                self.step()
            except Exception:  # a faulty step must not stop the clock for every other call
                log.exception("the simulated telephony failed a step")
            self._wake.clear()

    def publish(self, bundle: ir.Bundle, crm: Crm | None = None) -> None:
        """A new version went live: calls from now on run `bundle` (with `crm`, the CRM for its
        entities); calls already running finish on the version they started with.  The ACD takes
        its queues and agents (runtime.acd.Acd.reconfigure) and new agents get a desk."""
        self.center.publish(bundle, crm)
        self.bundle = bundle
        if crm is not None:
            self.crm = crm
        self.hub.take_bundle(bundle)

    def write_rows(self) -> None:
        """Write the event log rows now (tests, shutdown)."""
        self.log_writer.write_now()

    # ------------------------------------------------------------------ callers

    def place_call(self, caller: str, dialed: str | None = None, *, keys: str = "", flow: str | None = None) -> str:
        """A simulated caller dials `dialed` (or goes straight into `flow`); `keys` are pressed one
        by one whenever the flow waits for a key.  Returns the call id."""
        if flow is None and dialed not in self.bundle.numbers:
            known = ", ".join(sorted(self.bundle.numbers)) or "none"
            raise TelephonyError(f"no flow answers {dialed!r}; the numbers are: {known}")
        if flow is not None and flow not in self.bundle.flows:
            raise TelephonyError(f"there is no flow {flow!r}")
        bad = [key for key in keys if key not in engine.KEYS]
        if bad:
            raise TelephonyError(f"{bad[0]!r} is not a telephone key (0-9, * and #)")
        call_id = f"sim-{int(time.time())}-{next(self._ids)}"
        self._keys[call_id] = keys
        self.center.start_call(call_id, caller=caller, dialed=dialed, flow=flow, at=self._now())
        self.step()
        return call_id

    def caller_hangs_up(self, call_id: str) -> None:
        self.center.caller_hangs_up(call_id, self._now())
        self._keys.pop(call_id, None)
        self.step()

    def _press_keys(self, now: dt.datetime) -> None:
        for call_id in [k for k, keys in self._keys.items() if keys]:
            call = self.center.calls.get(call_id)
            while call is not None and self._keys.get(call_id) and call.state.wait in (engine.MENU, engine.COLLECT):
                key, self._keys[call_id] = self._keys[call_id][0], self._keys[call_id][1:]
                self.center.press(call_id, key, now)
        for call_id in [k for k, keys in self._keys.items() if not keys or k not in self.center.calls]:
            del self._keys[call_id]

    # ------------------------------------------------------------------ agents

    def login(self, agent: str, *, ready: bool = False) -> None:
        """Log the agent in (not ready, reason "login", unless `ready`); nothing if already in."""
        if self._state(agent) == "logged_out":
            self.center.login(agent, self._now(), ready=ready)
        self.step()

    def logout(self, agent: str) -> None:
        state = self._state(agent)
        if state in ("ringing", "on_call"):
            raise TelephonyError("finish the call before logging out")
        self.center.logout(agent, self._now())
        self.step()

    def ready(self, agent: str) -> None:
        state = self._state(agent)
        if state == "logged_out":
            raise TelephonyError(f"{agent} is not logged in to the telephony")
        if state == "ringing":
            raise TelephonyError("a call is ringing: answer it or decline it")
        self.center.set_ready(agent, self._now())
        self.step()

    def not_ready(self, agent: str, reason: str) -> None:
        if reason not in self.not_ready_reasons:
            raise TelephonyError(f"{reason!r} is not a reason for a break; the reasons are: "
                                 f"{', '.join(self.not_ready_reasons)}")
        if self._state(agent) == "logged_out":
            raise TelephonyError(f"{agent} is not logged in to the telephony")
        self.center.set_not_ready(agent, reason, self._now())
        self.step()

    def answer(self, agent: str) -> str:
        call_id = self.center.ringing.get(self._known(agent))
        if call_id is None:
            raise TelephonyError("no call is ringing for you")
        self.center.agent_answers(agent, self._now())
        self.step()
        return call_id

    def decline(self, agent: str) -> None:
        if self.center.ringing.get(self._known(agent)) is None:
            raise TelephonyError("no call is ringing for you")
        self.center.agent_declines(agent, self._now())
        self.step()

    def hangup(self, agent: str) -> str:
        """The agent leaves the call they are on; after-call work follows."""
        desk = self.hub.desk(self._known(agent))
        if desk.call is None or not desk.connected:
            raise TelephonyError("you are not on a call")
        call_id = desk.call.call_id
        self.center.agent_hangs_up(call_id, self._now())
        self.step()
        return call_id

    def wrap_up_done(self, agent: str) -> None:
        """End after-call work early: ready again (or the break asked for during the call)."""
        if self._state(agent) != "wrap_up":
            raise TelephonyError("you are not in after-call work")
        self.center.set_ready(agent, self._now())
        self.step()

    def state(self, agent: str) -> tuple[str, str | None]:
        return self.center.acd.agent_state(self._known(agent))

    # ------------------------------------------------------------------ what the agent records

    def record_wrapup(self, agent: str, call_id: str, code: str) -> None:
        """The wrap-up code the agent picked, kept in the call's history (call_events)."""
        if code not in self.wrapup_codes:
            raise TelephonyError(f"{code!r} is not a wrap-up code; the codes are: {', '.join(self.wrapup_codes)}")
        self._call_event(call_id, "WrapUpCode", {"agent": agent, "code": code})

    def schedule_callback(self, agent: str, number: str, at: dt.datetime, call_id: str | None = None,
                          reason: str = "promised on a call") -> None:
        """The agent promises to call `number` back at `at`: a callback task in the event log
        (runtime.storage.CallbackTask, requested by the agent) and a CallbackDue on their desktop then."""
        if at.tzinfo is None:
            raise TelephonyError("the callback time needs a time zone")
        if at <= self._now():
            raise TelephonyError("the callback time is in the past")
        if not number.strip() or any(ch not in "0123456789+-* #" for ch in number):
            raise TelephonyError(f"{number!r} is not a telephone number")
        self._known(agent)
        if self.event_log is not None:
            self.write_rows()  # the call's row first: the task refers to it
            with Session(self.event_log.engine) as session:
                if call_id and session.get(Call, call_id) is None:
                    raise TelephonyError(f"there is no call {call_id!r}")
                session.add(CallbackTask(number=number.strip(), call_id=call_id, reason=reason,
                                         requested_at=self._now(), due_at=at, requested_by=agent))
                session.commit()
        self._remind(agent, number.strip(), at, call_id)
        self.step()

    def load_callbacks(self) -> int:
        """Remind agents of the open callbacks they promised that are not due yet (after a restart)."""
        if self.event_log is None:
            return 0
        now, count = self._now(), 0
        for task in self.event_log.callbacks("open"):
            due = task.due_at if task.due_at is None or task.due_at.tzinfo else task.due_at.replace(tzinfo=dt.timezone.utc)
            if task.requested_by in self.bundle.agents and due is not None and due > now:
                self._remind(task.requested_by, task.number, due, task.call_id)
                count += 1
        return count

    def _remind(self, agent: str, number: str, at: dt.datetime, call_id: str | None) -> None:
        heapq.heappush(self.callbacks, _Callback(at, next(self._ids), agent, number, call_id))

    def _due_callbacks(self, now: dt.datetime) -> None:
        while self.callbacks and self.callbacks[0].at <= now:
            due = heapq.heappop(self.callbacks)
            self.hub.publish(due.agent, CallbackDue(due.number, due.call_id, due.at))

    def _call_event(self, call_id: str, name: str, data: dict) -> None:
        if self.event_log is None:
            return
        self.write_rows()  # the call's own rows first: the event refers to its call
        with Session(self.event_log.engine) as session:
            last = session.exec(select(func.max(CallEvent.seq)).where(CallEvent.call_id == call_id)).one()
            if last is None and session.get(Call, call_id) is None:
                raise TelephonyError(f"there is no call {call_id!r}")
            session.add(CallEvent(call_id=call_id, seq=(last or 0) + 1, at=self._now(), kind="agent",
                                  name=name, data=data))
            session.commit()

    # ------------------------------------------------------------------ helpers

    def _now(self) -> dt.datetime:
        return max(self.clock(), self.center.now)

    def _known(self, agent: str) -> str:
        if agent not in self.bundle.agents:
            raise TelephonyError(f"there is no agent {agent!r}")
        return agent

    def _state(self, agent: str) -> str:
        return self.center.acd.agent_state(self._known(agent))[0]
