"""What the flow engine asks of the edge that carries the call, and what it records for the log.

Commands for the edge, in the order returned:

    Answer                      pick up the call (sent once, before the first sound)
    Say(text, prompt_id)        speak text; `barge_in` means a key press may cut it short
    Play(sound, prompt_id)      play a sound file; likewise
    StopPrompt(prompt_id)       stop a prompt a key press interrupted (barge-in)
    StartTimer(timer_id, ms)    send TimerFired(timer_id) `ms` after this event's `at`
    CancelTimer(timer_id)       that timer no longer matters (a late TimerFired is ignored anyway)
    Lookup(entity, equals, where, follow)   find one record; answer with LookupResult
    CreateRecord(entity, fields)     answer with RecordWritten (or StorageFailed)
    UpdateRecord(entity, record_id, fields)   likewise
    HttpRequest(method, url, headers, body, timeout_ms)   answer with HttpReply or HttpFailed
    Enqueue(queue, priority, prefer_agent, prefer_for_ms)  hand the call to the ACD; answer with
                                AgentAnswered (then AgentLeft), or QueueOverflow
    TransferToNumber(number)    blind transfer; the flow is done with the call (TransferFailed reopens it)
    TransferToAgent(agent, timeout_ms)   ring one agent; AgentAnswered or TransferFailed
    CancelTransfer(agent)       stop ringing that agent (the engine's own timeout ran out)
    StartRecording              record the call from now on
    Voicemail(box, callback)    record a message, then hang up; with `callback`, open a callback task
    Hangup(reason)              hang the call up

Records for the event log (coverage, the call's history, the CDR), which the edge need not act on:

    StepEntered(flow, step_id)  a step of a flow began
    VariableSet(flow, name, value)
    TryCounted(flow, step_id, reason, tries)  a menu or collect try failed (timeout / invalid)
    CallEnded(reason)           the flow is done with the call: hangup, caller_hangup, agent_hangup,
                                transferred, voicemail, overflow, error, unknown_number
    RuntimeFault(flow, step_id, message)  a step failed at run time; the call goes to the fallback
    Ignored(event, reason)      an event that did not fit the call's state changed nothing
    Note(text)                  anything else worth a line in the log

Digits are counted by the engine itself: the edge reports each key as DigitPressed and runs the
timers the engine asks for, so there is no "collect digits" command.

Values in commands are runtime values (Decimal, date, dict); `to_dict` gives the JSON form for
the log, with values derived from secrets masked.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Union

from compiler import ir
from runtime.values import plain

MASK = "***"


@dataclass(frozen=True, slots=True, kw_only=True)
class Answer:
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class Say:
    text: str
    prompt_id: str
    barge_in: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Play:
    sound: str
    prompt_id: str
    barge_in: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class StopPrompt:
    prompt_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class StartTimer:
    timer_id: str
    ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelTimer:
    timer_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Lookup:
    """Find one record of `entity` whose fields equal `equals` and for which `where` (an
    expression over `@record` fields and constants only, or None) holds.  `follow` names the
    reference fields (dotted for references of references) to give as the referenced record
    rather than its id, because the flow reads through them (`customer.manager.agent`)."""
    entity: str
    equals: dict[str, Any]
    where: ir.Expr | None = None
    follow: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateRecord:
    entity: str
    fields: dict[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class UpdateRecord:
    entity: str
    record_id: Any
    fields: dict[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpRequest:
    """`body` is a runtime value the edge writes as JSON (text as is).  `secret` says which of
    url, body and header names carry a secret, so the log masks them."""
    method: str
    url: str
    headers: dict[str, str]
    body: Any
    timeout_ms: int
    secret: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True, kw_only=True)
class Enqueue:
    queue: str
    priority: int = 0
    prefer_agent: str | None = None
    prefer_for_ms: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class TransferToNumber:
    number: str


@dataclass(frozen=True, slots=True, kw_only=True)
class TransferToAgent:
    agent: str
    timeout_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelTransfer:
    agent: str


@dataclass(frozen=True, slots=True, kw_only=True)
class StartRecording:
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class Voicemail:
    box: str
    callback: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Hangup:
    reason: str


# ------------------------------------------------------------------ records for the log

@dataclass(frozen=True, slots=True, kw_only=True)
class StepEntered:
    flow: str
    step_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class VariableSet:
    flow: str
    name: str
    value: Any
    secret: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class TryCounted:
    flow: str
    step_id: str
    reason: str  # timeout, invalid
    tries: int


@dataclass(frozen=True, slots=True, kw_only=True)
class CallEnded:
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RuntimeFault:
    flow: str | None
    step_id: str | None
    message: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Ignored:
    event: str
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Note:
    text: str


Command = Union[Answer, Say, Play, StopPrompt, StartTimer, CancelTimer, Lookup, CreateRecord, UpdateRecord,
                HttpRequest, Enqueue, TransferToNumber, TransferToAgent, CancelTransfer, StartRecording, Voicemail,
                Hangup, StepEntered, VariableSet, TryCounted, CallEnded, RuntimeFault, Ignored, Note]

LOG_ONLY = (StepEntered, VariableSet, TryCounted, CallEnded, RuntimeFault, Ignored, Note)


def to_dict(command: Command) -> dict[str, Any]:
    """The JSON form of a command for the event log."""
    out: dict[str, Any] = {"kind": type(command).__name__}
    for f in dataclasses.fields(command):
        value = getattr(command, f.name)
        if f.name == "secret":
            continue
        if isinstance(value, (ir.Const, ir.Var, ir.Op, ir.Fn)):
            out[f.name] = value.model_dump()
        else:
            out[f.name] = plain(value)
    if isinstance(command, VariableSet) and command.secret:
        out["value"] = MASK
    if isinstance(command, HttpRequest):
        for name in command.secret:
            if name in ("url", "body"):
                out[name] = MASK
            else:
                out["headers"][name] = MASK
    return out
