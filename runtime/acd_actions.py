"""What the ACD asks of the runtime (commands) and tells the event log (records).

Every method of `runtime.acd.Acd` returns a list of these, in the order they happened.  Times
(`at`) and durations are integer milliseconds on the clock the caller passes in as `now`.

Commands, for the telephony side to carry out:
    RingAgent, StopRinging, Bridge, CallBack, Announce, Overflow
Records, for the event log and the KPIs (runtime.storage / runtime.kpis):
    AgentStateChanged, CallQueued, CallAnswered, CallAbandoned, CallEnded, CallbackScheduled
And `Ignored`, when an input did not fit the current state (a late or duplicate event, an unknown
name): nothing changed, the reason says why.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RingAgent:
    """Offer the call to the agent: ring their phone for at most `timeout_ms`.  For a callback
    (`callback` true) the caller is not on the line; the agent is offered the task of calling back."""
    call_id: str
    agent: str
    timeout_ms: int
    callback: bool = False


@dataclass(frozen=True, slots=True)
class StopRinging:
    call_id: str
    agent: str


@dataclass(frozen=True, slots=True)
class Bridge:
    """The agent picked up: connect them with the waiting caller."""
    call_id: str
    agent: str


@dataclass(frozen=True, slots=True)
class CallBack:
    """The agent accepted a callback: dial the caller of `call_id` and connect them to the agent."""
    call_id: str
    agent: str


@dataclass(frozen=True, slots=True)
class Announce:
    """Tell the waiting caller their place in line (1 is next) and/or the expected wait in whole
    seconds; a field is None when that announcement is not due (or the wait cannot be estimated)."""
    call_id: str
    position: int | None
    expected_wait_s: int | None


@dataclass(frozen=True, slots=True)
class Overflow:
    """The call waited the queue's `max wait`.  kind `voicemail` (target: the box), `hangup`,
    `queue` (target: the queue it now waits in) or `callback` (it keeps its place, see
    CallbackScheduled).  Doubles as the record that ends this queue visit."""
    call_id: str
    queue: str
    kind: str
    target: str | None
    waited_ms: int
    at: int


@dataclass(frozen=True, slots=True)
class CallbackScheduled:
    """The caller may hang up: a callback keeps their place (`position`) in `queue` and will be
    offered to an agent when its turn comes."""
    call_id: str
    queue: str
    position: int
    at: int


@dataclass(frozen=True, slots=True)
class AgentStateChanged:
    """state: logged_out, ready, not_ready, ringing, on_call, wrap_up (as runtime.storage.AgentState)."""
    agent: str
    state: str
    reason: str | None
    at: int


@dataclass(frozen=True, slots=True)
class CallQueued:
    call_id: str
    queue: str
    priority: int
    at: int


@dataclass(frozen=True, slots=True)
class CallAnswered:
    """waited_ms: time since the call entered this queue (the ASA and service-level figure)."""
    call_id: str
    queue: str
    agent: str
    waited_ms: int
    at: int
    callback: bool = False


@dataclass(frozen=True, slots=True)
class CallAbandoned:
    """The caller hung up while waiting or ringing; counted once, with the wait in this queue."""
    call_id: str
    queue: str
    waited_ms: int
    at: int


@dataclass(frozen=True, slots=True)
class CallEnded:
    """The conversation is over; the agent goes on to after-call work (wrap-up)."""
    call_id: str
    queue: str
    agent: str
    talk_ms: int
    at: int


@dataclass(frozen=True, slots=True)
class Ignored:
    """An input that did not apply; `subject` is the call id or agent name it named."""
    subject: str
    reason: str


Action = (RingAgent | StopRinging | Bridge | CallBack | Announce | Overflow | CallbackScheduled
          | AgentStateChanged | CallQueued | CallAnswered | CallAbandoned | CallEnded | Ignored)
