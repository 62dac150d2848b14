"""What if: one queue of the project with M agents and a given traffic, simulated call by call.

The calls go through the real CallCenter (flow engine and ACD) on a simulated clock, so the
queue's own routing strategy, ring timeout, wrap-up, max wait and overflow all apply.  The model
around it:

- Calls arrive at random (Poisson, `calls_per_hour`) into a one-step flow, `enqueue QUEUE`.
- M agents, members of the queue only, with exactly the skill levels it asks for, all logged in
  and ready from the start; nobody takes a break.
- A rung agent answers after `ring_ms` (2 s by default: the phone rings and is picked up); the
  ring counts as the caller's wait and as the agent's busy time.
- Talk lasts an exponential time with mean `aht_ms`; then the queue's wrap-up (or `wrapup_ms`).
- A caller not yet answered hangs up after an exponential patience with mean `patience_ms`
  (None: never).  A caller turned into a callback by the queue's overflow keeps the place in line.
- The first `warmup_ms` (1 h) fill the queue and are left out; the figures count the calls that
  arrive in the `hours` after it, followed until they leave the queue (at most `DRAIN` longer).

The figures are the ones the report reads (runtime.kpis): service level against the queue's
target, ASA, abandonment rate (short abandons left out), agent occupancy.  Erlang C's
prediction is given alongside for a handle time of ring + talk + wrap-up, the time an agent is
taken by each call.
"""
from __future__ import annotations

import datetime as dt
import itertools
import math
import random
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from compiler import ir
from runtime import erlang
from runtime.callcenter import CallCenter
from runtime.kpis import QueueKpis, agent_kpis, queue_kpis
from runtime.phones import SimulatedPhones
from runtime.storage import AgentState, QueueVisit

EPOCH = dt.datetime(2026, 1, 5, tzinfo=dt.timezone.utc)
UTC = ZoneInfo("UTC")
FLOW = "what-if"
DRAIN = dt.timedelta(hours=4)
HOUR_MS = 3_600_000


class WhatIfError(ValueError):
    """The question cannot be asked as put: says what is wrong."""


@dataclass(frozen=True)
class WhatIfResult:
    queue: str
    calls_per_hour: float
    agents: int
    aht_ms: int
    wrapup_ms: int
    ring_ms: int
    patience_ms: int | None
    hours: float
    target_s: float          # the queue's service-level threshold
    target_level: float      # the share it aims to answer within it, 0..1
    offered: int
    answered: int
    abandoned: int
    overflowed: int
    service_level: float | None
    asa_s: float | None
    abandon_rate: float | None
    occupancy: float | None
    erlang_service_level: float
    erlang_asa_s: float
    erlang_occupancy: float


def duration(text: str) -> int | None:
    """'240s', '4m', '1h', '1500ms' or plain seconds as milliseconds; 'none' as None."""
    text = text.strip().lower()
    if text == "none":
        return None
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h)?", text)
    if match is None:
        raise ValueError(f"'{text}' is not a duration (e.g. 240s, 4m, 1h or none)")
    unit = {"ms": 1, "s": 1000, "m": 60_000, "h": HOUR_MS}[match.group(2) or "s"]
    return round(float(match.group(1)) * unit)


def simulate(bundle: ir.Bundle, queue: str, calls_per_hour: float, agents: int, aht_ms: int,
             patience_ms: int | None = None, hours: float = 8, seed: int = 1, *, wrapup_ms: int | None = None,
             ring_ms: int = 2000, warmup_ms: int = HOUR_MS) -> WhatIfResult:
    _check(bundle, queue, calls_per_hour, agents, aht_ms, patience_ms, hours, wrapup_ms, ring_ms)
    sim_bundle = what_if_bundle(bundle, queue, agents, wrapup_ms)
    target = sim_bundle.queues[queue]
    start = EPOCH + dt.timedelta(milliseconds=warmup_ms)
    end = start + dt.timedelta(hours=hours)
    run = _Run(sim_bundle, queue, random.Random(seed), calls_per_hour, aht_ms, patience_ms, ring_ms)
    rows = run.until(end)
    visits = {id(r): r for r in rows if isinstance(r, QueueVisit)}.values()  # a visit is logged at each change
    measured = [v for v in visits if v.queue == queue and start <= v.enqueued_at < end]
    target_s = target.service_level.within_ms / 1000
    k = _total(queue_kpis(measured, "day", UTC, {queue: target_s}), queue, start)
    handle_s = (ring_ms + aht_ms + target.wrapup_ms) / 1000
    return WhatIfResult(
        queue=queue, calls_per_hour=calls_per_hour, agents=agents, aht_ms=aht_ms, wrapup_ms=target.wrapup_ms,
        ring_ms=ring_ms, patience_ms=patience_ms, hours=hours, target_s=target_s,
        target_level=target.service_level.percent / 100, offered=k.offered, answered=k.answered,
        abandoned=k.abandoned, overflowed=k.overflowed, service_level=k.service_level, asa_s=k.asa_s,
        abandon_rate=k.abandon_rate, occupancy=_occupancy([r for r in rows if isinstance(r, AgentState)], start, end),
        erlang_service_level=erlang.service_level(agents, calls_per_hour, handle_s, target_s),
        erlang_asa_s=erlang.average_speed_of_answer(agents, calls_per_hour, handle_s),
        erlang_occupancy=min(1.0, erlang.traffic_erlangs(calls_per_hour, handle_s) / agents))


def what_if_bundle(bundle: ir.Bundle, queue: str, agents: int, wrapup_ms: int | None = None) -> ir.Bundle:
    """The project with `agents` made-up agents on `queue` (and no others) and a flow that only
    enqueues there."""
    q = bundle.queues[queue]
    if wrapup_ms is not None:
        q = q.model_copy(update={"wrapup_ms": wrapup_ms})
    skills = {need.skill: need.min_level for need in q.skills}
    names = [f"agent{n:04d}" for n in range(1, agents + 1)]
    people = {name: ir.Agent(name=name, skills=skills, queues=[queue]) for name in names}
    flow = ir.Flow(name=FLOW, start="enqueue@1", steps=[ir.EnqueueStep(id="enqueue@1", queue=queue, priority=0)])
    return bundle.model_copy(update={"queues": {**bundle.queues, queue: q}, "agents": people,
                                     "flows": {**bundle.flows, FLOW: flow}, "numbers": {}})


def _check(bundle, queue, calls_per_hour, agents, aht_ms, patience_ms, hours, wrapup_ms, ring_ms) -> None:
    if queue not in bundle.queues:
        known = ", ".join(sorted(bundle.queues)) or "none"
        raise WhatIfError(f"there is no queue '{queue}' in the project (the queues are: {known})")
    for name, value, least in (("calls per hour", calls_per_hour, 0), ("agents", agents, 0), ("AHT", aht_ms, 0),
                               ("hours", hours, 0)):
        if not value > least or not math.isfinite(value):
            raise WhatIfError(f"{name} must be more than {least}, not {value}")
    for name, value in (("patience", patience_ms), ("wrap-up", wrapup_ms), ("ring time", ring_ms)):
        if value is not None and value < 0:
            raise WhatIfError(f"{name} must not be negative, not {value} ms")
    if patience_ms == 0:
        raise WhatIfError("patience must be more than 0 (or none for callers who never hang up)")
    ring_timeout = bundle.queues[queue].ring_timeout_ms
    if ring_ms >= ring_timeout:
        raise WhatIfError(f"agents who answer after {ring_ms} ms never answer: queue '{queue}' "
                          f"stops ringing after {ring_timeout} ms")


class _Run(SimulatedPhones):
    """Callers who arrive at random into the one-step flow, the queue's agents logged in from the start."""

    def __init__(self, bundle: ir.Bundle, queue: str, rng: random.Random, calls_per_hour: float, aht_ms: int,
                 patience_ms: int | None, ring_ms: int):
        super().__init__(CallCenter(bundle, epoch=EPOCH, log_events=False), rng, aht_ms, patience_ms, ring_ms)
        self.rate_per_ms = calls_per_hour / HOUR_MS
        self.numbers = itertools.count(1)
        self.queue = queue
        self.seen = 0  # event log rows looked at by stepped()
        for agent in bundle.agents:
            self.center.login(agent, EPOCH)

    def until(self, end: dt.datetime) -> list:
        """Calls arrive until `end`; then the ones in line are followed for at most DRAIN."""
        self.end = end
        self.later(EPOCH, "arrive")
        return self.run(end + DRAIN)

    def happen(self, at: dt.datetime, what: str, call: str, agent: str) -> None:
        if what != "arrive":
            return super().happen(at, what, call, agent)
        call = f"call{next(self.numbers)}"
        self.call_in(at, call, call, FLOW)
        following = self.after(at, 1 / self.rate_per_ms)
        if following < self.end:
            self.later(following, "arrive")

    def stepped(self) -> None:
        """A caller the queue's overflow moved to another queue hangs up there: nobody serves it
        in this model, and only this queue's figures are asked for."""
        rows = self.center.rows
        for row in itertools.islice(rows, self.seen, None):
            if isinstance(row, QueueVisit) and row.queue != self.queue and row.outcome is None:
                self.later(row.enqueued_at, "give up", row.call_id)
        self.seen = len(rows)


def _total(rows: list[QueueKpis], queue: str, start: dt.datetime) -> QueueKpis:
    """The per-day KPI rows of one queue added up into one."""
    total = QueueKpis(queue=queue, start=start)
    for k in rows:
        for name in ("offered", "answered", "abandoned", "short_abandoned", "overflowed", "answered_in_target"):
            setattr(total, name, getattr(total, name) + getattr(k, name))
        total.waits_answered += k.waits_answered
        total.handle_times += k.handle_times
        total.longest_wait_s = max(total.longest_wait_s, k.longest_wait_s)
    return total


def _occupancy(states: list, start: dt.datetime, end: dt.datetime) -> float | None:
    """Handling time over available time, all agents together, between `start` and `end`."""
    kpis = agent_kpis(states, start, end, "day", UTC)
    handling = sum(k.seconds.get(s, 0.0) for k in kpis for s in ("on_call", "wrap_up"))
    available = handling + sum(k.seconds.get(s, 0.0) for k in kpis for s in ("ready", "ringing"))
    return handling / available if available else None


def as_table(r: WhatIfResult) -> str:
    """The simulated figures next to Erlang C's, as plain text."""
    def pct(x):
        return "—" if x is None else f"{x * 100:.1f} %"

    def secs(x):
        return "—" if x is None else ("∞" if math.isinf(x) else f"{x:.1f} s")

    patience = "none" if r.patience_ms is None else f"{r.patience_ms / 1000:g} s"
    lines = [f"queue {r.queue}: {r.calls_per_hour:g} calls/h, {r.agents} agents, AHT {r.aht_ms / 1000:g} s, "
             f"wrap-up {r.wrapup_ms / 1000:g} s, ring {r.ring_ms / 1000:g} s, patience {patience}, {r.hours:g} h",
             f"{'':26}{'simulated':>12}{'Erlang C':>12}",
             f"{f'service level ({r.target_s:g} s)':26}{pct(r.service_level):>12}{pct(r.erlang_service_level):>12}"
             f"   target {r.target_level * 100:g} %",
             f"{'ASA':26}{secs(r.asa_s):>12}{secs(r.erlang_asa_s):>12}",
             f"{'abandoned':26}{pct(r.abandon_rate):>12}{'—':>12}",
             f"{'occupancy':26}{pct(r.occupancy):>12}{pct(r.erlang_occupancy):>12}",
             f"{'calls':26}{r.offered:>12}",
             f"{'answered':26}{r.answered:>12}"]
    if r.overflowed:
        lines.append(f"{'overflowed':26}{r.overflowed:>12}")
    if r.erlang_occupancy >= 1:
        lines.append("the agents cannot keep up with this traffic: the line grows for as long as calls come")
    return "\n".join(lines) + "\n"
