"""Automatic call distribution: queues of waiting calls, agents and their states, who gets which call.

Pure and deterministic: no I/O, no clock, no randomness.  Every input is a method call that takes
`now`, integer milliseconds on a monotonic clock of the caller's choosing, and returns the list of
actions (runtime.acd_actions) that follow from it, in order.  A `now` earlier than one already seen
counts as the latest time seen (time never runs backwards).

Timeouts (ring no answer, max wait, announcements, after-call work, preferred-agent windows) are
deadlines kept inside.  `next_deadline()` says when the earliest falls; `advance(now)` fires every
deadline up to `now`, each at its own time, so a discrete-event simulator jumps from deadline to
deadline and a real-time runtime sleeps until the next one (or the next event).  Every other input
also fires the deadlines due before it first, so skipping an `advance` loses nothing.

Edge cases, as decided here:
- Order in line: higher call priority first, then the earlier enqueue.  A call whose ring goes
  unanswered goes back to the place it had.  An agent picks among their queues by the queue's
  priority first, then the call's (routing.call_rank).  A ready agent never stays idle while a call
  they may take is waiting: every input ends with the matches made.
- Ring no answer (the queue's ring timeout) or a `decline`: the agent turns not_ready with reason
  "no answer" (or the decline's reason); the call goes back to its place.
- Caller hangs up while waiting or ringing: CallAbandoned (once, with the wait in this queue); a
  ringing agent stops ringing and is ready again, keeping their idle time.
- Max wait: counted from entering the queue.  If it passes while the call rings, the call overflows
  only if that ring fails.  Overflow to another queue keeps the call's priority and original enqueue
  time (its place among the new queue's calls reflects how long the caller has already waited) but
  starts a new visit: waits, announcements and the new queue's max wait count from the move.
  Overflow to callback keeps the call where it is as a callback: it no longer overflows or hears
  announcements, a `hangup` of the caller's leg leaves it in line, and when its turn comes the agent
  is rung with `callback` set and, on answering, asked to call the caller back (CallBack).
- Preferred agent (`enqueue(..., preferred=, prefer_for_ms=)`, any strategy): rung at once if
  ready, whether or not they serve the queue; if busy or on a break, the call waits in that agent's
  personal line (served before their queues) for up to prefer_for_ms, then joins the queue's line at
  its place.  If the preferred agent is logged out, logs out, or does not answer, the call goes to
  the queue's pool at once.
- Announcements: every N seconds after entering the queue (none at entry), while waiting; a
  due announcement is skipped while the call rings.  Expected wait: routing.expected_wait_s.
- After a call: wrap-up for the queue's wrapup_ms, then ready (or not_ready, when the agent asked
  for a break during the call).  `set_ready` ends wrap-up early.  Idle time counts from becoming
  ready.  Logging out during a call is refused; during wrap-up it ends the wrap-up.
- fewest_calls counts answered calls since `new_day()`, which the runtime calls at midnight.
- An agent takes calls from the queues they are members of (ir.Agent.queues, or the queues given
  at login) whose skill needs they meet (ir.Agent.skills, or the skills given at login).
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from itertools import count
from typing import Callable, Iterable, Mapping

from compiler import ir
from runtime import routing
from runtime.acd_actions import (Action, AgentStateChanged, Announce, Bridge, CallAbandoned, CallAnswered, CallBack,
                                 CallbackScheduled, CallEnded, CallQueued, Ignored, Overflow, RingAgent,
                                 StopRinging)
from runtime.acd_state import STAFFED, Call, Seat
from runtime.deadlines import Deadlines
from runtime.ranked import Ranked

CALL_TIMERS = ("ring", "max_wait", "prefer", "announce_position", "announce_wait")


@dataclass(frozen=True, slots=True)
class QueueStatus:
    """A queue at a glance, for the wallboard."""
    queue: str
    waiting: int           # callers in line (callbacks included)
    callbacks: int
    longest_wait_ms: int   # of the callers in line, since entering this queue
    ready: int
    staffed: int           # logged-in agents not on a break


class Acd:
    def __init__(self, queues: Mapping[str, ir.Queue], agents: Mapping[str, ir.Agent], *, now: int = 0,
                 default_handle_ms: int = 180_000, handle_window: int = 50):
        for queue in queues.values():
            if queue.overflow and queue.overflow.kind == "queue" and queue.overflow.target not in queues:
                raise ValueError(f"queue '{queue.name}' overflows into '{queue.overflow.target}', which is not a queue")
        self._queues = dict(queues)
        self._declared = dict(agents)
        self._seats = {name: Seat(name, i, dict(a.skills)) for i, (name, a) in enumerate(agents.items())}
        self._calls: dict[str, Call] = {}
        self._lines = {name: Ranked() for name in queues}        # waiting calls per queue
        self._ready = {name: Ranked() for name in queues}        # ready agents per queue, best first
        self._personal: dict[str, Ranked] = {}                  # calls waiting for a preferred agent
        self._staffed = {name: 0 for name in queues}
        self._last_offered = {name: -1 for name in queues}      # round-robin pointer (agent index)
        self._handle_window = handle_window
        self._handle_ms = {name: deque(maxlen=handle_window) for name in queues}
        self._default_handle_ms = default_handle_ms
        self._timers = Deadlines()
        self._seq = count()
        self._now = now
        self._out: list[Action] = []

    @classmethod
    def from_bundle(cls, bundle: ir.Bundle, **options) -> "Acd":
        return cls(bundle.queues, bundle.agents, **options)

    def reconfigure(self, queues: Mapping[str, ir.Queue], agents: Mapping[str, ir.Agent]) -> None:
        """Take the queues and agents of a newly published bundle, without dropping a call.

        A queue's settings (strategy, timeouts, wrap-up, overflow, announcements) apply from now to
        its calls and agents; deadlines already set keep their time.  A new queue starts empty, a
        new agent logged out.  A queue or agent no longer declared stays, so the calls in it and the
        agent's call finish; it gets no new calls from the new flows.  A logged-in agent's queues
        and skills change at their next log-in."""
        merged = {**self._queues, **queues}
        for queue in queues.values():
            if queue.overflow and queue.overflow.kind == "queue" and queue.overflow.target not in merged:
                raise ValueError(f"queue '{queue.name}' overflows into '{queue.overflow.target}', which is not a queue")
        for name in queues:
            if name not in self._lines:
                self._lines[name], self._ready[name], self._staffed[name] = Ranked(), Ranked(), 0
                self._last_offered[name] = -1
                self._handle_ms[name] = deque(maxlen=self._handle_window)
        self._queues = merged
        for name, agent in agents.items():
            if name not in self._seats:
                self._seats[name] = Seat(name, len(self._seats), dict(agent.skills))
        self._declared = {**self._declared, **agents}
        for name in queues:   # a new strategy orders the agents ready now by its own key
            ready = self._ready[name]
            for agent in list(ready):
                ready.discard(agent)
                ready.add(agent, routing.ready_key(self._queues[name], self._seats[agent]))

    # ------------------------------------------------------------------ time

    @property
    def now(self) -> int:
        return self._now

    def next_deadline(self) -> int | None:
        """When `advance` next has something to do (ms), or None if nothing is pending."""
        return self._timers.next()

    def advance(self, now: int) -> list[Action]:
        return self._run(now, lambda: None)

    # ------------------------------------------------------------------ inputs: agents

    def login(self, now: int, agent: str, *, queues: Iterable[str] | None = None,
              skills: Mapping[str, int] | None = None, ready: bool = True) -> list[Action]:
        """Queues and skills default to the agent's declaration.  Not ready logins get reason "login"."""
        return self._run(now, lambda: self._login(agent, queues, skills, ready))

    def logout(self, now: int, agent: str) -> list[Action]:
        return self._run(now, lambda: self._logout(agent))

    def set_ready(self, now: int, agent: str) -> list[Action]:
        return self._run(now, lambda: self._set_ready(agent))

    def set_not_ready(self, now: int, agent: str, reason: str) -> list[Action]:
        """On a break with a reason code.  While ringing it declines the call; during a call it
        takes effect after the call (and its wrap-up)."""
        return self._run(now, lambda: self._set_not_ready(agent, reason))

    def new_day(self, now: int) -> list[Action]:
        """Start counting answered calls (fewest_calls) from zero."""
        return self._run(now, self._new_day)

    # ------------------------------------------------------------------ inputs: calls

    def enqueue(self, now: int, call_id: str, queue: str, *, priority: int = 0,
                preferred: str | None = None, prefer_for_ms: int = 0) -> list[Action]:
        return self._run(now, lambda: self._enqueue(call_id, queue, priority, preferred, prefer_for_ms))

    def answer(self, now: int, call_id: str) -> list[Action]:
        """The ringing agent picked up."""
        return self._run(now, lambda: self._answer(call_id))

    def decline(self, now: int, call_id: str, reason: str = "declined") -> list[Action]:
        """The ringing agent rejected the call or could not be reached: as ring no answer, with `reason`."""
        return self._run(now, lambda: self._decline(call_id, reason))

    def hangup(self, now: int, call_id: str) -> list[Action]:
        """The caller's leg ended: an abandon while waiting or ringing, the end of talk when connected."""
        return self._run(now, lambda: self._hangup(call_id))

    def end_talk(self, now: int, call_id: str) -> list[Action]:
        """The agent left the conversation (the caller may stay on, e.g. for a survey).  Unlike
        `hangup` it never counts an abandon: for a call not connected it is Ignored."""
        return self._run(now, lambda: self._end_talk_of(call_id))

    # ------------------------------------------------------------------ views

    def agent_state(self, agent: str) -> tuple[str, str | None]:
        seat = self._seats[agent]
        return seat.state, seat.reason

    def agent_call(self, agent: str) -> str | None:
        return self._seats[agent].call

    def call_state(self, call_id: str) -> tuple[str, str | None] | None:
        """(waiting|ringing|connected, agent), or None for a call the ACD does not hold."""
        call = self._calls.get(call_id)
        return (call.state, call.agent) if call else None

    def position(self, call_id: str) -> int | None:
        """Place in line, 1 for next; for a call waiting for its preferred agent, in that agent's line."""
        call = self._calls.get(call_id)
        if call is None or call.state != "waiting":
            return None
        return self._line_of(call).rank(call.id) + 1

    def waiting(self, queue: str) -> list[str]:
        """The queue's line, next first (calls waiting for a preferred agent are not in it)."""
        return list(self._lines[queue])

    def waiting_for(self, agent: str) -> list[str]:
        return list(self._personal.get(agent, ()))

    def ready_agents(self, queue: str) -> list[str]:
        return list(self._ready[queue])

    def serves(self, agent: str) -> tuple[str, ...]:
        """The queues a logged-in agent takes calls from."""
        return self._seats[agent].queues

    def queue_status(self, queue: str) -> QueueStatus:
        calls = [self._calls[c] for c in self._lines[queue]]
        longest = max((self._now - c.visit_at for c in calls), default=0)
        return QueueStatus(queue, len(calls), sum(c.callback for c in calls), longest,
                           len(self._ready[queue]), self._staffed[queue])

    # ------------------------------------------------------------------ running an input

    def _run(self, now: int, handler: Callable[[], None]) -> list[Action]:
        self._out = out = []
        self._fire_due(now)
        self._now = max(self._now, now)
        handler()
        self._fire_due(self._now)  # deadlines the input set for this very moment (e.g. a zero timeout)
        self._out = []
        return out

    def _fire_due(self, now: int) -> None:
        while (due := self._timers.pop_due(now)) is not None:
            when, (kind, subject) = due
            self._now = max(self._now, when)
            getattr(self, f"_on_{kind}")(subject)

    def _emit(self, action: Action) -> None:
        self._out.append(action)

    def _ignore(self, subject: str, reason: str) -> None:
        self._emit(Ignored(subject, reason))

    def _seat(self, agent: str) -> Seat | None:
        seat = self._seats.get(agent)
        if seat is None:
            self._ignore(agent, f"no agent named '{agent}'")
        return seat

    def _held_call(self, call_id: str, state: str) -> Call | None:
        call = self._calls.get(call_id)
        if call is None or call.state != state:
            self._ignore(call_id, f"the call is not {state}" if call else "the ACD does not hold this call")
            return None
        return call

    # ------------------------------------------------------------------ agents

    def _login(self, agent: str, queues: Iterable[str] | None, skills: Mapping[str, int] | None, ready: bool) -> None:
        seat = self._seat(agent)
        if seat is None:
            return
        if seat.state != "logged_out":
            return self._ignore(agent, "already logged in")
        declared = self._declared[agent]
        seat.skills = dict(declared.skills if skills is None else skills)
        wanted = list(dict.fromkeys(declared.queues if queues is None else queues))
        for name in wanted:
            if name not in self._queues:
                self._ignore(agent, f"no queue named '{name}'")
        seat.queues = tuple(name for name in wanted
                            if name in self._queues and routing.meets_needs(self._queues[name], seat.skills))
        if ready:
            self._make_ready(seat)
        else:
            self._set_state(seat, "not_ready", "login")

    def _logout(self, agent: str) -> None:
        seat = self._seat(agent)
        if seat is None:
            return
        if seat.state in ("logged_out", "on_call"):
            return self._ignore(agent, "not logged in" if seat.state == "logged_out" else
                                "on a call: log out after it ends")
        if seat.state == "ringing":
            self._ring_failed(self._calls[seat.call], "logged_out", None)
        else:
            self._finish_handling(seat)
            self._set_state(seat, "logged_out", None)
        for call_id in list(self._personal.get(agent, ())):
            call = self._calls[call_id]
            self._unline(call)
            self._line_up(call)

    def _set_ready(self, agent: str) -> None:
        seat = self._seat(agent)
        if seat is None or seat.state == "ready":
            return
        if seat.state in ("logged_out", "ringing"):
            return self._ignore(agent, "not logged in" if seat.state == "logged_out" else "ringing: answer or decline")
        if seat.state == "on_call":
            seat.after_call = None  # changed their mind about a break after the call
            return
        self._finish_handling(seat)
        self._make_ready(seat)

    def _set_not_ready(self, agent: str, reason: str) -> None:
        seat = self._seat(agent)
        if seat is None:
            return
        if seat.state == "logged_out":
            return self._ignore(agent, "not logged in")
        if seat.state == "ringing":
            return self._ring_failed(self._calls[seat.call], "not_ready", reason)
        if seat.state == "on_call":
            seat.after_call = reason
            return
        self._finish_handling(seat)
        self._set_state(seat, "not_ready", reason)

    def _new_day(self) -> None:
        for seat in self._seats.values():
            seat.answered = 0
            if seat.state == "ready":
                for name in seat.queues:
                    self._ready[name].add(seat.name, routing.ready_key(self._queues[name], seat))

    def _make_ready(self, seat: Seat) -> None:
        self._set_state(seat, "ready", None)
        self._offer_agent(seat)

    def _set_state(self, seat: Seat, state: str, reason: str | None) -> None:
        """Every agent state change goes through here: it keeps the ready sets and staffing counts."""
        old = seat.state
        if old == "ready":
            for name in seat.queues:
                self._ready[name].discard(seat.name)
        if (old in STAFFED) != (state in STAFFED):
            change = 1 if state in STAFFED else -1
            for name in seat.queues:
                self._staffed[name] += change
        seat.state, seat.reason = state, reason
        if state not in ("on_call", "wrap_up"):
            seat.after_call = None
        if state == "ready":
            if old != "ringing":  # a ring the caller hung up on does not cost the agent their turn
                seat.idle_since = self._now
            for name in seat.queues:
                self._ready[name].add(seat.name, routing.ready_key(self._queues[name], seat))
        self._emit(AgentStateChanged(seat.name, state, reason, self._now))

    def _finish_handling(self, seat: Seat) -> None:
        """End of after-call work: the handle time (talk + wrap-up) feeds the wait estimate."""
        self._timers.cancel(("wrapup", seat.name))
        if seat.handling is not None:
            queue, answered_at = seat.handling
            self._handle_ms[queue].append(self._now - answered_at)
            seat.handling = None

    def _after_work(self, seat: Seat) -> None:
        reason = seat.after_call
        self._finish_handling(seat)
        if reason is not None:
            self._set_state(seat, "not_ready", reason)
        else:
            self._make_ready(seat)

    def _on_wrapup(self, agent: str) -> None:
        seat = self._seats[agent]
        if seat.state == "wrap_up":
            self._after_work(seat)

    # ------------------------------------------------------------------ calls

    def _enqueue(self, call_id: str, queue: str, priority: int, preferred: str | None, prefer_for_ms: int) -> None:
        if call_id in self._calls:
            return self._ignore(call_id, f"the call is already {self._calls[call_id].state}")
        if queue not in self._queues:
            return self._ignore(call_id, f"no queue named '{queue}'")
        call = Call(call_id, queue, priority, self._now, next(self._seq), self._now)
        self._calls[call_id] = call
        self._emit(CallQueued(call_id, queue, priority, self._now))
        self._start_visit(call)
        seat = self._seats.get(preferred) if preferred else None
        if seat is not None and seat.state == "ready":
            self._ring(call, seat)
        elif seat is not None and seat.state != "logged_out" and prefer_for_ms > 0:
            self._wait_for(call, seat, prefer_for_ms)
        else:
            self._line_up(call)

    def _start_visit(self, call: Call) -> None:
        queue = self._queues[call.queue]
        if queue.max_wait_ms is not None and queue.overflow is not None:
            self._timers.schedule(("max_wait", call.id), call.visit_at + queue.max_wait_ms)
        for kind, every in (("announce_position", queue.announce_position_ms), ("announce_wait", queue.announce_wait_ms)):
            if every:
                self._timers.schedule((kind, call.id), call.visit_at + every)

    def _line_up(self, call: Call) -> None:
        """Into the queue's line at the call's place, and offered if an agent is ready."""
        call.state, call.agent = "waiting", None
        self._lines[call.queue].add(call.id, call.key)
        self._offer_queue(call.queue)

    def _wait_for(self, call: Call, seat: Seat, prefer_for_ms: int) -> None:
        call.preferred = seat.name
        self._personal.setdefault(seat.name, Ranked()).add(call.id, call.key)
        self._timers.schedule(("prefer", call.id), self._now + prefer_for_ms)

    def _line_of(self, call: Call) -> Ranked:
        return self._personal[call.preferred] if call.preferred else self._lines[call.queue]

    def _unline(self, call: Call) -> bool:
        """Out of whichever line holds the call; True when that was the queue's own line."""
        if call.preferred is None:
            return self._lines[call.queue].discard(call.id)
        line = self._personal[call.preferred]
        line.discard(call.id)
        if not line:
            del self._personal[call.preferred]
        self._timers.cancel(("prefer", call.id))
        call.preferred = None
        return False

    def _on_prefer(self, call_id: str) -> None:
        call = self._calls[call_id]
        self._unline(call)
        self._line_up(call)

    def _drop(self, call: Call) -> None:
        for kind in CALL_TIMERS:
            self._timers.cancel((kind, call.id))
        del self._calls[call.id]

    # ------------------------------------------------------------------ matching

    def _offer_queue(self, name: str) -> None:
        line, ready, queue = self._lines[name], self._ready[name], self._queues[name]
        while line and ready:
            seat = self._seats[routing.pick_agent(queue, ready, self._last_offered[name])]
            self._ring(self._calls[line.first()], seat)

    def _offer_agent(self, seat: Seat) -> None:
        call = self._best_call_for(seat)
        if call is not None:
            self._ring(call, seat)

    def _best_call_for(self, seat: Seat) -> Call | None:
        personal = self._personal.get(seat.name)
        if personal:
            return self._calls[personal.first()]
        best, best_rank = None, None
        for name in seat.queues:
            head = self._lines[name].first()
            if head is not None:
                call = self._calls[head]
                rank = routing.call_rank(self._queues[name], call)
                if best is None or rank < best_rank:
                    best, best_rank = call, rank
        return best

    def _ring(self, call: Call, seat: Seat) -> None:
        if self._unline(call):
            self._last_offered[call.queue] = seat.index
        call.state, call.agent = "ringing", seat.name
        seat.call = call.id
        self._set_state(seat, "ringing", None)
        timeout = self._queues[call.queue].ring_timeout_ms
        self._timers.schedule(("ring", call.id), self._now + timeout)
        self._emit(RingAgent(call.id, seat.name, timeout, call.callback))

    def _on_ring(self, call_id: str) -> None:
        self._ring_failed(self._calls[call_id], "not_ready", "no answer")

    def _decline(self, call_id: str, reason: str) -> None:
        call = self._held_call(call_id, "ringing")
        if call is not None:
            self._ring_failed(call, "not_ready", reason)

    def _ring_failed(self, call: Call, state: str, reason: str | None) -> None:
        """The agent did not take the call: they change state, the call goes back to its place."""
        seat = self._stop_ringing(call)
        self._set_state(seat, state, reason)
        if call.overdue:
            self._overflow(call)
        else:
            self._line_up(call)

    def _stop_ringing(self, call: Call) -> Seat:
        seat = self._seats[call.agent]
        self._timers.cancel(("ring", call.id))
        seat.call = None
        self._emit(StopRinging(call.id, seat.name))
        return seat

    def _answer(self, call_id: str) -> None:
        call = self._held_call(call_id, "ringing")
        if call is None:
            return
        seat = self._seats[call.agent]
        for kind in CALL_TIMERS:
            self._timers.cancel((kind, call.id))
        call.state, call.answered_at = "connected", self._now
        seat.answered += 1
        seat.handling = (call.queue, self._now)
        self._set_state(seat, "on_call", None)
        self._emit(CallBack(call.id, seat.name) if call.callback else Bridge(call.id, seat.name))
        self._emit(CallAnswered(call.id, call.queue, seat.name, self._now - call.visit_at, self._now, call.callback))

    def _hangup(self, call_id: str) -> None:
        call = self._calls.get(call_id)
        if call is None:
            return self._ignore(call_id, "the ACD does not hold this call")
        if call.callback and call.state != "connected":
            return self._ignore(call_id, "a callback keeps its place after the caller hangs up")
        if call.state == "connected":
            return self._end_talk(call)
        seat = self._stop_ringing(call) if call.state == "ringing" else None
        self._unline(call)
        self._drop(call)
        self._emit(CallAbandoned(call.id, call.queue, self._now - call.visit_at, self._now))
        if seat is not None:
            self._make_ready(seat)

    def _end_talk_of(self, call_id: str) -> None:
        call = self._held_call(call_id, "connected")
        if call is not None:
            self._end_talk(call)

    def _end_talk(self, call: Call) -> None:
        seat = self._seats[call.agent]
        seat.call = None
        self._drop(call)
        self._emit(CallEnded(call.id, call.queue, seat.name, self._now - call.answered_at, self._now))
        wrapup_ms = self._queues[call.queue].wrapup_ms
        if wrapup_ms > 0:
            self._set_state(seat, "wrap_up", None)
            self._timers.schedule(("wrapup", seat.name), self._now + wrapup_ms)
        else:
            self._after_work(seat)

    # ------------------------------------------------------------------ waiting too long, announcements

    def _on_max_wait(self, call_id: str) -> None:
        call = self._calls[call_id]
        if call.state == "ringing":
            call.overdue = True  # decided when the ring ends
            return
        self._unline(call)
        self._overflow(call)

    def _overflow(self, call: Call) -> None:
        overflow = self._queues[call.queue].overflow
        call.overdue = False
        self._emit(Overflow(call.id, call.queue, overflow.kind, overflow.target,
                            self._now - call.visit_at, self._now))
        if overflow.kind == "queue":
            for kind in CALL_TIMERS:
                self._timers.cancel((kind, call.id))
            call.queue, call.visit_at = overflow.target, self._now
            self._emit(CallQueued(call.id, call.queue, call.priority, self._now))
            self._start_visit(call)
            self._line_up(call)
        elif overflow.kind == "callback":
            self._timers.cancel(("announce_position", call.id))
            self._timers.cancel(("announce_wait", call.id))
            call.callback, call.state, call.agent = True, "waiting", None
            self._lines[call.queue].add(call.id, call.key)
            self._emit(CallbackScheduled(call.id, call.queue, self._lines[call.queue].rank(call.id) + 1, self._now))
            self._offer_queue(call.queue)
        else:
            self._drop(call)

    def _on_announce_position(self, call_id: str) -> None:
        self._announce(call_id, "announce_position")

    def _on_announce_wait(self, call_id: str) -> None:
        self._announce(call_id, "announce_wait")

    def _announce(self, call_id: str, kind: str) -> None:
        call = self._calls[call_id]
        queue = self._queues[call.queue]
        every = queue.announce_position_ms if kind == "announce_position" else queue.announce_wait_ms
        self._timers.schedule((kind, call.id), self._now + every)
        if call.state != "waiting":
            return
        position = self._line_of(call).rank(call.id) + 1
        if kind == "announce_position":
            return self._emit(Announce(call.id, position, None))
        staffed = 1 if call.preferred else self._staffed[call.queue]
        wait = routing.expected_wait_s(position, staffed, self._handle_ms[call.queue], self._default_handle_ms)
        if wait is not None:
            self._emit(Announce(call.id, None, wait))
