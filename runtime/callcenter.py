"""The call centre: many calls through the flow engine and the ACD, on one clock.

`CallCenter` is what an edge (the terminal simulator, flow test files, the what-if simulator, the
Asterisk adapter) drives.  It owns each call's engine state, the ACD, the timers both ask for,
and the event log rows; it answers the engine's questions to the CRM and to outside systems
through the adapters it is given; and it hands the edge what only the edge can do, as `Media`
items in `outbox`: speak, play, put on hold (`CallQueued`), ring an agent, bridge, transfer, record,
hang up.

Time is the edge's: every input carries `at`, and `advance(until)` fires what falls due before
then, in order (timers, prompts the centre finishes by itself, ACD deadlines).  Nothing here reads
a clock, so a simulated day runs in a moment and a test can ask for 17:59 on 31 December.

Each call keeps the bundle it started with, to its end, when a new bundle is `publish`ed.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import heapq
import itertools
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Protocol

from compiler import ir
from runtime import acd_actions as a
from runtime import commands as c
from runtime import engine
from runtime import events as e
from runtime.acd import Acd
from runtime.storage import AgentState, Call, CallbackTask, CallEvent, QueueVisit, Voicemail
from runtime.values import record_matches


class Crm(Protocol):
    def lookup(self, entity: str, equals: dict, where: ir.Expr | None, follow: tuple[str, ...]) -> dict | None: ...
    def create(self, entity: str, fields: dict) -> dict: ...
    def update(self, entity: str, record_id: Any, fields: dict) -> dict: ...


class MemoryCrm:
    """Records kept in memory: for tests, the simulators and demos.  Ids count from 1 per entity."""

    def __init__(self, bundle: ir.Bundle, records: dict[str, list[dict]] | None = None):
        self.bundle = bundle
        self.tables: dict[str, dict[Any, dict]] = {}
        self.created: list[tuple[str, dict]] = []
        self.updated: list[tuple[str, dict]] = []
        for entity, rows in (records or {}).items():
            for row in rows:
                self._store(entity, dict(row))

    def _store(self, entity: str, row: dict) -> dict:
        table = self.tables.setdefault(entity, {})
        if row.get("id") is None:
            row["id"] = max((k for k in table if isinstance(k, int)), default=0) + 1
        table[row["id"]] = row
        return row

    def lookup(self, entity, equals, where, follow):
        for row in self.tables.get(entity, {}).values():
            if record_matches(equals, where, row):
                return self._followed(entity, dict(row), follow)
        return None

    def _followed(self, entity: str, row: dict, follow: tuple[str, ...]) -> dict:
        """Give reference fields named in `follow` as the records they point at."""
        fields = {f.name: f for f in self.bundle.entities[entity].fields} if entity in self.bundle.entities else {}
        for path in sorted(follow, key=len):
            head, _, rest = path.partition(".")
            target = fields.get(head)
            if target is None or target.target is None or isinstance(row.get(head), dict):
                continue
            referenced = self.tables.get(target.target, {}).get(row.get(head))
            if referenced is not None:
                row[head] = self._followed(target.target, dict(referenced), tuple(p for p in [rest] if p))
        return row

    def create(self, entity, fields):
        fields = {k: (v["id"] if isinstance(v, dict) and "id" in v else v) for k, v in fields.items()}
        defaults = {f.name: f.default for f in self.bundle.entities[entity].fields if f.default is not None}
        row = self._store(entity, {**defaults, **fields})
        self.created.append((entity, dict(row)))
        return dict(row)

    def update(self, entity, record_id, fields):
        row = self.tables.get(entity, {}).get(record_id)
        if row is None:
            raise KeyError(f"there is no {entity} {record_id}")
        row.update({k: (v["id"] if isinstance(v, dict) and "id" in v else v) for k, v in fields.items()})
        self.updated.append((entity, dict(row)))
        return dict(row)


# An outside system: (method, url, headers, body) -> HttpReply/HttpFailed fields, or None for no reply.
HttpClient = Callable[[c.HttpRequest], "tuple[int, Any] | str | None"]


@dataclass(frozen=True)
class Media:
    """Something only the edge can do for a call (or an agent's phone)."""
    call_id: str
    at: dt.datetime
    command: Any  # a runtime.commands edge command, or an ACD RingAgent/StopRinging/Bridge/CallBack/Announce


@dataclass
class _Call:
    state: engine.CallState
    bundle: ir.Bundle
    visit: QueueVisit | None = None
    record: Call | None = None
    voicemail: Voicemail | None = None
    events: int = 0


@dataclass(order=True)
class _Due:
    at: dt.datetime
    seq: int
    call_id: str = field(compare=False)
    event: Any = field(compare=False)  # the engine event to deliver, or None for ACD deadlines


class CallCenter:
    def __init__(self, bundle: ir.Bundle, *, epoch: dt.datetime, crm: Crm | None = None,
                 http: HttpClient | None = None, prompt_ms: Callable[[c.Say | c.Play], int] | None = None,
                 options: engine.EngineOptions = engine.DEFAULT_OPTIONS, log_events: bool = True, test: bool = False):
        """`log_events`: keep every event and command of every call as call_events rows (the call's
        history and flow coverage); without it only calls, queue visits and agent states are kept."""
        self.bundle = bundle
        self.epoch = epoch
        self.now = epoch
        self.crm = crm if crm is not None else MemoryCrm(bundle)
        self.http = http
        # An edge that answers later instead: it is given the call id and delivers the reply itself.
        self.http_async: Callable[[str, c.HttpRequest], None] | None = None
        self.prompt_ms = prompt_ms  # None: the edge reports PromptFinished itself
        self.options = options
        self.log_events = log_events
        self.test = test
        self.acd = Acd.from_bundle(bundle)
        self.calls: dict[str, _Call] = {}
        self.outbox: list[Media] = []
        self.rows: list = []            # event log rows not yet written
        self.ringing: dict[str, str] = {}   # agent -> call rung by the ACD or a transfer
        self.transfers: dict[str, str] = {}  # agent -> call, for TransferToAgent
        self._due: list[_Due] = []
        self._seq = itertools.count()
        self._cancelled: set[tuple[str, str]] = set()

    # ------------------------------------------------------------------ inputs from the edge

    def publish(self, bundle: ir.Bundle, crm: Crm | None = None) -> None:
        """New calls use `bundle`; calls already running finish on the one they started with.  The
        ACD takes the bundle's queues and agents (Acd.reconfigure); `crm`: the CRM for the new
        bundle's entities, for every call from now on."""
        self.acd.reconfigure(bundle.queues, bundle.agents)
        self.bundle = bundle
        if crm is not None:
            self.crm = crm

    def login(self, agent: str, at: dt.datetime, *, ready: bool = True) -> None:
        self._tick(at)
        self._acd(self.acd.login(self._ms(at), agent, ready=ready))

    def logout(self, agent: str, at: dt.datetime) -> None:
        self._tick(at)
        self._acd(self.acd.logout(self._ms(at), agent))

    def set_ready(self, agent: str, at: dt.datetime) -> None:
        self._tick(at)
        self._acd(self.acd.set_ready(self._ms(at), agent))

    def set_not_ready(self, agent: str, reason: str, at: dt.datetime) -> None:
        self._tick(at)
        self._acd(self.acd.set_not_ready(self._ms(at), agent, reason))

    def start_call(self, call_id: str, *, caller: str, at: dt.datetime, dialed: str | None = None,
                   flow: str | None = None) -> None:
        """A call arrives on a dialled number, or (tests, the simulator) straight into a flow."""
        self._tick(at)
        if flow is not None:
            state, commands = engine.start_flow(self.bundle, flow, call_id, dialed=dialed or "", caller=caller,
                                                at=at, options=self.options)
        else:
            state, commands = engine.start_call(self.bundle, call_id, dialed=dialed or "", caller=caller, at=at,
                                                options=self.options)
        call = _Call(state=state, bundle=self.bundle)
        call.record = Call(id=call_id, bundle_hash=self.bundle.hash, flow=state.flow or flow or "", caller=caller,
                           dialed=dialed or "", started_at=at, test=self.test)
        self.calls[call_id] = call
        self.rows.append(call.record)
        self._commands(call_id, commands, at)

    def press(self, call_id: str, keys: str, at: dt.datetime) -> None:
        for key in keys:
            self.deliver(call_id, e.DigitPressed(at=at, digit=key))

    def prompt_finished(self, call_id: str, prompt_id: str, at: dt.datetime) -> None:
        self.deliver(call_id, e.PromptFinished(at=at, prompt_id=prompt_id))

    def caller_hangs_up(self, call_id: str, at: dt.datetime) -> None:
        call = self.calls.get(call_id)
        if call is None or call.state.ended and call.state.wait == engine.ENDED:
            return
        self._tick(at)
        if call.visit is not None and call.visit.outcome == "answered" and call.visit.talk_ended_at is None:
            self._acd(self.acd.end_talk(self._ms(at), call_id))
        else:
            self._acd(self.acd.hangup(self._ms(at), call_id))
        self.deliver(call_id, e.CallerHungUp(at=at))

    def agent_answers(self, agent: str, at: dt.datetime) -> None:
        """The agent picks up the call ringing on their phone."""
        self._tick(at)
        call_id = self.ringing.pop(agent, None)
        if call_id is None:
            return
        if self.transfers.pop(agent, None) == call_id:
            self.deliver(call_id, e.AgentAnswered(at=at, agent=agent))
        else:
            self._acd(self.acd.answer(self._ms(at), call_id))

    def agent_declines(self, agent: str, at: dt.datetime, reason: str = "declined") -> None:
        """The agent's phone refused the call or could not be reached (busy, offline): the ACD
        moves on as after a ring without answer; a transfer to that agent fails."""
        self._tick(at)
        call_id = self.ringing.pop(agent, None)
        if call_id is None:
            return
        if self.transfers.pop(agent, None) == call_id:
            self._acd(self.acd.set_ready(self._ms(at), agent))
            self.deliver(call_id, e.TransferFailed(at=at, reason=reason))
        else:
            self._acd(self.acd.decline(self._ms(at), call_id, reason))

    def adopt(self, state: engine.CallState, *, queue: str, priority: int, at: dt.datetime,
              bundle: ir.Bundle | None = None) -> None:
        """Take over a call that was already waiting in `queue` when this centre started (the
        runtime restarted while the caller held): it waits again, from where its flow was."""
        self._tick(at)
        call = _Call(state=state, bundle=bundle or self.bundle)
        call.record = Call(id=state.call_id, bundle_hash=state.bundle_hash, flow=state.flow or "", caller=state.caller,
                           dialed=state.dialed, started_at=state.started_at, test=self.test)
        self.calls[state.call_id] = call
        self.rows.append(call.record)
        self._acd(self.acd.enqueue(self._ms(at), state.call_id, queue, priority=priority))

    def drop(self, call_id: str, reason: str, at: dt.datetime) -> None:
        """The edge cannot carry the call on (it went to the telephone system's fallback): the
        call leaves the queue and the agents, and its record ends with `error`."""
        call = self.calls.get(call_id)
        if call is None or call.state.wait == engine.ENDED:
            return
        self._tick(at)
        self._acd(self.acd.hangup(self._ms(at), call_id))
        call.state.wait, call.state.ended = engine.ENDED, "error"
        if self.log_events:
            self._log(call_id, call, at, "command", "RuntimeFault", {"flow": call.state.flow, "step_id": call.state.step,
                                                                    "message": reason})
        self._ended(call_id, call, c.CallEnded(reason="error"), at)

    def agent_hangs_up(self, call_id: str, at: dt.datetime) -> None:
        """The agent leaves the conversation (the caller may go on to the survey)."""
        self._tick(at)
        self._acd(self.acd.end_talk(self._ms(at), call_id))
        self.deliver(call_id, e.AgentLeft(at=at))

    def deliver(self, call_id: str, event: e.Event) -> None:
        """Any engine event for a call (HTTP replies and the like from an asynchronous edge)."""
        self._tick(event.at)
        call = self.calls.get(call_id)
        if call is None:
            return
        call.state, commands = engine.handle(call.bundle, call.state, event, options=self.options)
        if self.log_events:
            self._log(call_id, call, event.at, "event", type(event).__name__, e.to_dict(event))
        self._commands(call_id, commands, event.at)

    def advance(self, until: dt.datetime) -> None:
        """Let time pass: fire every timer, prompt end and ACD deadline due up to `until`, in order."""
        while True:
            acd_next = self.acd.next_deadline()
            acd_at = self._at(acd_next) if acd_next is not None else None
            due_at = self._due[0].at if self._due else None
            candidates = [t for t in (acd_at, due_at) if t is not None and t <= until]
            if not candidates:
                break
            moment = min(candidates)
            self.now = max(self.now, moment)
            if acd_at is not None and acd_at == moment:
                self._acd(self.acd.advance(acd_next))
                continue
            due = heapq.heappop(self._due)
            key = (due.call_id, getattr(due.event, "timer_id", None) or getattr(due.event, "prompt_id", ""))
            if key in self._cancelled:
                self._cancelled.discard(key)
                continue
            self.deliver(due.call_id, due.event)
        self.now = max(self.now, until)

    def next_due(self) -> dt.datetime | None:
        acd_next = self.acd.next_deadline()
        times = [self._due[0].at] if self._due else []
        if acd_next is not None:
            times.append(self._at(acd_next))
        return min(times) if times else None

    def forget_ended(self) -> int:
        """Drop the calls that have ended (their rows are already in `rows`); a long-running centre
        calls this from time to time so memory follows the calls in progress, not all calls ever."""
        ended = [call_id for call_id, call in self.calls.items() if call.state.wait == engine.ENDED]
        for call_id in ended:
            del self.calls[call_id]
        return len(ended)

    def take_outbox(self) -> list[Media]:
        out, self.outbox = self.outbox, []
        return out

    def take_rows(self) -> list:
        out, self.rows = self.rows, []
        return out

    # ------------------------------------------------------------------ engine commands

    def _commands(self, call_id: str, commands: Iterable, at: dt.datetime) -> None:
        call = self.calls[call_id]
        for command in commands:
            handler = _COMMANDS.get(type(command))
            if handler is not None:
                handler(self, call_id, call, command, at)
            if self.log_events:
                self._log(call_id, call, at, "command", type(command).__name__, c.to_dict(command))

    def _edge(self, call_id, call, command, at) -> None:
        self.outbox.append(Media(call_id, at, command))

    def _voicemail(self, call_id, call, command, at) -> None:
        """The caller leaves a message (the edge records it); with `callback`, an agent owes them a call."""
        call.voicemail = Voicemail(call_id=call_id, box=command.box, caller=call.record.caller, left_at=at)
        self.rows.append(call.voicemail)
        if command.callback:
            self.rows.append(CallbackTask(number=call.record.caller, call_id=call_id, reason=f"voicemail {command.box}",
                                          requested_at=at))
        self.outbox.append(Media(call_id, at, command))

    def _prompt(self, call_id, call, command, at) -> None:
        self.outbox.append(Media(call_id, at, command))
        if self.prompt_ms is not None:
            self._schedule(call_id, at + dt.timedelta(milliseconds=self.prompt_ms(command)),
                           e.PromptFinished(at=at, prompt_id=command.prompt_id))

    def _stop_prompt(self, call_id, call, command, at) -> None:
        self.outbox.append(Media(call_id, at, command))
        self._cancelled.add((call_id, command.prompt_id))

    def _timer(self, call_id, call, command, at) -> None:
        self._schedule(call_id, at + dt.timedelta(milliseconds=command.ms), e.TimerFired(at=at, timer_id=command.timer_id))

    def _cancel_timer(self, call_id, call, command, at) -> None:
        self._cancelled.add((call_id, command.timer_id))

    def _lookup(self, call_id, call, command, at) -> None:
        try:
            record = self.crm.lookup(command.entity, command.equals, command.where, command.follow)
            self.deliver(call_id, e.LookupResult(at=at, record=record))
        except Exception as error:  # the CRM is outside the engine: its failure is the call's fallback
            self.deliver(call_id, e.StorageFailed(at=at, reason=str(error)))

    def _write(self, call_id, call, command, at) -> None:
        try:
            if isinstance(command, c.CreateRecord):
                record = self.crm.create(command.entity, command.fields)
            else:
                record = self.crm.update(command.entity, command.record_id, command.fields)
            self.deliver(call_id, e.RecordWritten(at=at, record_id=record.get("id"), record=record))
        except Exception as error:
            self.deliver(call_id, e.StorageFailed(at=at, reason=str(error)))

    def _http(self, call_id, call, command, at) -> None:
        if self.http_async is not None:
            return self.http_async(call_id, command)
        if self.http is None:
            return self.deliver(call_id, e.HttpFailed(at=at, reason="no outside systems are reachable here"))
        reply = self.http(command)
        if reply is None:
            return  # no reply: the engine's own timer takes the call on
        if isinstance(reply, str):
            return self.deliver(call_id, e.HttpFailed(at=at, reason=reply))
        status, body = reply
        self.deliver(call_id, e.HttpReply(at=at, status=status, body=body))

    def _enqueue(self, call_id, call, command, at) -> None:
        self._acd(self.acd.enqueue(self._ms(at), call_id, command.queue, priority=command.priority,
                                   preferred=command.prefer_agent, prefer_for_ms=command.prefer_for_ms))

    def _transfer_agent(self, call_id, call, command, at) -> None:
        agent = command.agent
        if agent not in self.bundle.agents or self.acd.agent_state(agent)[0] != "ready":
            return  # busy or away: the engine's timer takes the no-answer path
        self._acd(self.acd.set_not_ready(self._ms(at), agent, "transfer"))
        self.ringing[agent] = call_id
        self.transfers[agent] = call_id
        self.outbox.append(Media(call_id, at, a.RingAgent(call_id=call_id, agent=agent, timeout_ms=command.timeout_ms)))

    def _cancel_transfer(self, call_id, call, command, at) -> None:
        agent = command.agent
        if self.transfers.pop(agent, None) is not None:
            self.ringing.pop(agent, None)
            self.outbox.append(Media(call_id, at, a.StopRinging(call_id=call_id, agent=agent)))
            self._acd(self.acd.set_ready(self._ms(at), agent))

    def _ended(self, call_id, call, command, at) -> None:
        if call.record is not None:
            call.record.ended_at, call.record.end_reason = at, command.reason
            call.record.last_step = call.state.step
            call.record.agent = call.state.agent
            call.record.queue = call.state.queue
            self.rows.append(call.record)

    # ------------------------------------------------------------------ ACD actions

    def _acd(self, actions: list) -> None:
        for action in actions:
            handler = _ACD.get(type(action))
            if handler is not None:
                handler(self, action)

    def _acd_ring(self, action: a.RingAgent) -> None:
        self.ringing[action.agent] = action.call_id
        self.outbox.append(Media(action.call_id, self.now, action))

    def _acd_stop(self, action: a.StopRinging) -> None:
        if self.ringing.get(action.agent) == action.call_id:
            self.ringing.pop(action.agent)
        self.outbox.append(Media(action.call_id, self.now, action))

    def _acd_bridge(self, action: a.Bridge) -> None:
        self.outbox.append(Media(action.call_id, self.now, action))
        self.deliver(action.call_id, e.AgentAnswered(at=self.now, agent=action.agent))

    def _acd_media(self, action) -> None:
        self.outbox.append(Media(action.call_id, self.now, action))

    def _acd_overflow(self, action: a.Overflow) -> None:
        self._close_visit(action.call_id, "callback" if action.kind == "callback" else "overflow", self._at(action.at))
        if action.kind == "queue" and action.target:
            call = self.calls.get(action.call_id)
            if call is not None:
                call.visit = QueueVisit(call_id=action.call_id, queue=action.target, enqueued_at=self._at(action.at))
                self.rows.append(call.visit)
        self.deliver(action.call_id, e.QueueOverflow(at=self._at(action.at), kind=action.kind, target=action.target))

    def _acd_queued(self, action: a.CallQueued) -> None:
        self.outbox.append(Media(action.call_id, self.now, action))  # the edge puts the caller on hold
        call = self.calls.get(action.call_id)
        if call is not None:
            call.visit = QueueVisit(call_id=action.call_id, queue=action.queue, priority=action.priority,
                                    enqueued_at=self._at(action.at))
            self.rows.append(call.visit)

    def _acd_answered(self, action: a.CallAnswered) -> None:
        call = self.calls.get(action.call_id)
        if call is not None and call.visit is not None:
            call.visit.outcome, call.visit.agent, call.visit.left_at = "answered", action.agent, self._at(action.at)
            self.rows.append(call.visit)

    def _acd_abandoned(self, action: a.CallAbandoned) -> None:
        self._close_visit(action.call_id, "abandoned", self._at(action.at))

    def _acd_talk_ended(self, action: a.CallEnded) -> None:
        call = self.calls.get(action.call_id)
        if call is not None and call.visit is not None:
            call.visit.talk_ended_at = self._at(action.at)
            wrapup = self.bundle.queues[action.queue].wrapup_ms if action.queue in self.bundle.queues else 0
            call.visit.wrapup_ended_at = call.visit.talk_ended_at + dt.timedelta(milliseconds=wrapup)
            self.rows.append(call.visit)

    def _acd_agent_state(self, action: a.AgentStateChanged) -> None:
        self.rows.append(AgentState(agent=action.agent, state=action.state, reason=action.reason,
                                    at=self._at(action.at)))

    def _close_visit(self, call_id: str, outcome: str, at: dt.datetime) -> None:
        call = self.calls.get(call_id)
        if call is not None and call.visit is not None and call.visit.outcome is None:
            call.visit.outcome, call.visit.left_at = outcome, at
            self.rows.append(call.visit)

    # ------------------------------------------------------------------ helpers

    def _tick(self, at: dt.datetime) -> None:
        """Whatever fell due before an input happens before it."""
        if at > self.now:
            self.advance(at)

    def _schedule(self, call_id: str, at: dt.datetime, event) -> None:
        heapq.heappush(self._due, _Due(at, next(self._seq), call_id, _at(event, at)))

    def _ms(self, at: dt.datetime) -> int:
        return int((at - self.epoch).total_seconds() * 1000)

    def _at(self, ms: int) -> dt.datetime:
        return self.epoch + dt.timedelta(milliseconds=ms)

    def _log(self, call_id: str, call: _Call, at: dt.datetime, kind: str, name: str, data: dict) -> None:
        call.events += 1
        self.rows.append(CallEvent(call_id=call_id, seq=call.events, at=at, kind=kind, name=name, data=data))


def _at(event, at: dt.datetime):
    """The event as delivered when it falls due (its `at` is the due time)."""
    return type(event)(**{**{f: getattr(event, f) for f in event.__slots__}, "at": at})


_COMMANDS: dict[type, Callable] = {
    c.Answer: CallCenter._edge, c.Say: CallCenter._prompt, c.Play: CallCenter._prompt,
    c.StopPrompt: CallCenter._stop_prompt, c.StartTimer: CallCenter._timer, c.CancelTimer: CallCenter._cancel_timer,
    c.Lookup: CallCenter._lookup, c.CreateRecord: CallCenter._write, c.UpdateRecord: CallCenter._write,
    c.HttpRequest: CallCenter._http, c.Enqueue: CallCenter._enqueue, c.TransferToNumber: CallCenter._edge,
    c.TransferToAgent: CallCenter._transfer_agent, c.CancelTransfer: CallCenter._cancel_transfer,
    c.StartRecording: CallCenter._edge, c.Voicemail: CallCenter._voicemail, c.Hangup: CallCenter._edge,
    c.CallEnded: CallCenter._ended,
}

_ACD: dict[type, Callable] = {
    a.RingAgent: CallCenter._acd_ring, a.StopRinging: CallCenter._acd_stop, a.Bridge: CallCenter._acd_bridge,
    a.CallBack: CallCenter._acd_media, a.Announce: CallCenter._acd_media, a.Overflow: CallCenter._acd_overflow,
    a.CallQueued: CallCenter._acd_queued, a.CallAnswered: CallCenter._acd_answered,
    a.CallAbandoned: CallCenter._acd_abandoned, a.CallEnded: CallCenter._acd_talk_ended,
    a.AgentStateChanged: CallCenter._acd_agent_state,
}


class LogWriter:
    """Writes a running call centre's event-log rows off the event loop, every `every_s` seconds,
    and forgets the calls that ended.  `run()` is the loop; `finish()` (after the loop was
    cancelled) lets a write in progress end and writes what is left, so no row is lost on a stop."""

    def __init__(self, center: CallCenter, event_log, every_s: float = 0.25):
        self.center, self.event_log, self.every_s = center, event_log, every_s
        self._writing: asyncio.Future | None = None

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.every_s)
            rows = self.center.take_rows()
            if rows and self.event_log is not None:
                # Shielded: cancelling the loop must not cut a batch in two (the thread goes on anyway).
                self._writing = asyncio.ensure_future(asyncio.to_thread(self.event_log.write, rows))
                await asyncio.shield(self._writing)
            self.center.forget_ended()

    async def finish(self) -> None:
        if self._writing is not None:
            await asyncio.gather(self._writing, return_exceptions=True)
        self.write_now()

    def write_now(self) -> None:
        rows = self.center.take_rows()
        if rows and self.event_log is not None:
            self.event_log.write(rows)
