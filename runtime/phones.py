"""Simulated phones around a CallCenter on a simulated clock: callers who lose patience, agents
who pick up when rung and talk for a while.

`SimulatedPhones` is the edge the what-if model (`runtime.whatif`) and the demo history
(`runtime.history`) share.  It keeps a line of things to happen (a caller gives up, a rung agent
answers, a conversation ends) and runs it together with the centre's own deadlines in time
order.  What makes calls arrive, or agents come and go, is the subclass's: it schedules its own
kinds of happening with `later` and does them in `happen`.

- A rung agent answers `ring_ms` after the ring (the ring counts as the caller's wait).
- Talk lasts an exponential time with mean `aht_ms`; the queue's wrap-up follows by itself.
- A caller not yet answered hangs up after an exponential patience with mean `patience_ms`
  (None: never).
"""
from __future__ import annotations

import datetime as dt
import heapq
import itertools
import random

from runtime import acd_actions as a
from runtime.callcenter import CallCenter


class SimulatedPhones:
    def __init__(self, center: CallCenter, rng: random.Random, aht_ms: float, patience_ms: float | None,
                 ring_ms: int):
        self.center, self.rng = center, rng
        self.aht_ms, self.patience_ms, self.ring_ms = aht_ms, patience_ms, ring_ms
        self.todo: list[tuple[dt.datetime, int, str, str, str]] = []  # (at, seq, what, call, agent)
        self.seq = itertools.count()
        self.answered: set[str] = set()

    def later(self, at: dt.datetime, what: str, call: str = "", agent: str = "") -> None:
        heapq.heappush(self.todo, (at, next(self.seq), what, call, agent))

    def after(self, at: dt.datetime, mean_ms: float) -> dt.datetime:
        """`at` plus an exponential time of mean `mean_ms`."""
        return at + dt.timedelta(milliseconds=self.rng.expovariate(1 / mean_ms))

    def run(self, stop: dt.datetime) -> list:
        """Everything due until `stop`, in time order; returns the event log rows it made."""
        center = self.center
        while True:
            mine = self.todo[0][0] if self.todo else None
            theirs = center.next_due()
            if theirs is not None and (mine is None or theirs < mine) and theirs <= stop:
                center.advance(theirs)
            elif mine is not None and mine <= stop:
                at, _, what, call, agent = heapq.heappop(self.todo)
                self._do(at, what, call, agent)
            else:
                break
            self._follow(center.take_outbox())
            self.stepped()
        return center.take_rows()

    def call_in(self, at: dt.datetime, call: str, caller: str, flow: str, dialed: str | None = None) -> None:
        """A caller dials into `flow` (on the number `dialed`, when there is one) and, when
        impatient, gives up later unless answered first."""
        self.center.start_call(call, caller=caller, at=at, flow=flow, dialed=dialed)
        if self.patience_ms is not None:
            self.later(self.after(at, self.patience_ms), "give up", call)

    # ------------------------------------------------------------------ for subclasses

    def happen(self, at: dt.datetime, what: str, call: str, agent: str) -> None:
        """A happening the subclass scheduled."""
        raise ValueError(f"nothing knows how to do {what!r}")

    def stepped(self) -> None:
        """Called after each step, with the centre's new rows in `center.rows`."""

    # ------------------------------------------------------------------ the phones

    def _do(self, at: dt.datetime, what: str, call: str, agent: str) -> None:
        center = self.center
        if what == "give up":
            if call not in self.answered:
                center.caller_hangs_up(call, at)
        elif what == "answer":
            if center.ringing.get(agent) == call:
                center.agent_answers(agent, at)
        elif what == "talk ends":
            center.agent_hangs_up(call, at)
        else:
            self.happen(at, what, call, agent)

    def _follow(self, outbox: list) -> None:
        """What the centre asked of the phones: a rung agent answers, a connected call ends later."""
        for media in outbox:
            command = media.command
            if isinstance(command, a.RingAgent):
                self.later(media.at + dt.timedelta(milliseconds=self.ring_ms), "answer", command.call_id,
                           command.agent)
            elif isinstance(command, (a.Bridge, a.CallBack)):
                self.answered.add(command.call_id)
                self.later(self.after(media.at, self.aht_ms), "talk ends", command.call_id)
