"""What happens to a call, as the flow engine hears of it.

Every event carries `at`, the timezone-aware moment it happened: the engine never reads a
clock, so the terminal simulator, flow test files, the what-if simulator and real calls over
Asterisk ARI all drive it the same way.  Each edge turns its own happenings into these:

    DigitPressed      the caller pressed one key (0-9, *, #); one event per key
    PromptFinished    a Say/Play with this prompt id has finished playing
    TimerFired        a StartTimer with this timer id ran out (the edge sends it at start + ms)
    LookupResult      the answer to Lookup: the record found, or None
    RecordWritten     the answer to CreateRecord/UpdateRecord: the record's id (and the stored
                      record, when storage filled in defaults)
    StorageFailed     Lookup/CreateRecord/UpdateRecord could not be done
    HttpReply         the answer to HttpRequest (body already decoded from JSON when it was JSON)
    HttpFailed        HttpRequest got no reply (refused, DNS, the edge's own timeout)
    AgentAnswered     an agent picked up (from the queue, or a TransferToAgent)
    AgentLeft         the agent's side hung up while connected
    QueueOverflow     the ACD gave up waiting (queue max wait): kind voicemail/hangup/queue/callback
    TransferFailed    a TransferToAgent or TransferToNumber was not answered or was refused
    CallerHungUp      the caller's side hung up

Events are frozen dataclasses; `to_dict`/`from_dict` give their JSON form for logs and replays.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from typing import Any, Union

from runtime.values import dump, load


@dataclass(frozen=True, slots=True, kw_only=True)
class DigitPressed:
    at: dt.datetime
    digit: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PromptFinished:
    at: dt.datetime
    prompt_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class TimerFired:
    at: dt.datetime
    timer_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class LookupResult:
    at: dt.datetime
    record: dict | None


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordWritten:
    at: dt.datetime
    record_id: Any
    record: dict | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class StorageFailed:
    at: dt.datetime
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpReply:
    at: dt.datetime
    status: int
    body: Any = None


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpFailed:
    at: dt.datetime
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentAnswered:
    at: dt.datetime
    agent: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentLeft:
    at: dt.datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueOverflow:
    at: dt.datetime
    kind: str            # voicemail, hangup, queue, callback (as the queue's `max wait ... then`)
    target: str | None = None  # the voicemail box or the queue the call moves to


@dataclass(frozen=True, slots=True, kw_only=True)
class TransferFailed:
    at: dt.datetime
    reason: str = "no answer"


@dataclass(frozen=True, slots=True, kw_only=True)
class CallerHungUp:
    at: dt.datetime


Event = Union[DigitPressed, PromptFinished, TimerFired, LookupResult, RecordWritten, StorageFailed, HttpReply,
              HttpFailed, AgentAnswered, AgentLeft, QueueOverflow, TransferFailed, CallerHungUp]

EVENT_TYPES: dict[str, type] = {cls.__name__: cls for cls in Event.__args__}


def to_dict(event: Event) -> dict[str, Any]:
    out: dict[str, Any] = {"event": type(event).__name__}
    for f in dataclasses.fields(event):
        value = getattr(event, f.name)
        out[f.name] = value.isoformat() if f.name == "at" else dump(value)
    return out


def from_dict(data: dict[str, Any]) -> Event:
    """An event from its JSON form; a ValueError says what is wrong with it."""
    kind = data.get("event") if isinstance(data, dict) else None
    cls = EVENT_TYPES.get(kind)
    if cls is None:
        raise ValueError(f"unknown event kind {kind!r}; the kinds are: {', '.join(EVENT_TYPES)}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - names - {"event"}
    if unknown:
        raise ValueError(f"{kind} has no field {', '.join(sorted(unknown))}")
    try:
        at = dt.datetime.fromisoformat(data["at"])
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"{kind} needs `at`, an ISO date and time with its zone") from None
    if at.tzinfo is None:
        raise ValueError(f"{kind}: `at` must carry a time zone (got {data['at']})")
    fields = {name: load(value) for name, value in data.items() if name not in ("event", "at")}
    try:
        return cls(at=at, **fields)
    except TypeError as error:
        raise ValueError(f"{kind}: {error}") from None
