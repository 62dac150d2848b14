"""Call-centre KPIs computed from the event log (queue visits and agent states).

Definitions (the ones supervisors read every day):

- offered: calls that entered the queue in the interval (by the time they entered).
- answered / abandoned / overflowed: how their wait ended.  An abandon within `short_abandon_s`
  seconds (default 5) is a short abandon: counted apart and left out of the rates, since the caller
  hung up before anyone could have answered.
- answer rate = answered / (offered - short abandons).
- service level = answered within the queue's target / (offered - short abandons).
- ASA (average speed of answer) = mean wait of the answered calls.
- AHT (average handle time) = mean of talk + hold + after-call work of answered calls that ended.
- longest wait: the longest wait of any call that stopped waiting.
- occupancy = (on call + wrap-up) / (on call + wrap-up + ready + ringing): the share of an agent's
  available time spent handling calls.
"""
from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from statistics import mean
from typing import Iterable
from zoneinfo import ZoneInfo

INTERVALS = {"15min": datetime.timedelta(minutes=15), "hour": datetime.timedelta(hours=1),
             "day": datetime.timedelta(days=1)}
HANDLING = ("on_call", "wrap_up")
AVAILABLE = ("ready", "ringing")


@dataclass
class QueueKpis:
    queue: str
    start: datetime.datetime
    offered: int = 0
    answered: int = 0
    abandoned: int = 0
    short_abandoned: int = 0
    overflowed: int = 0
    answered_in_target: int = 0
    waits_answered: list[float] = field(default_factory=list, repr=False)
    handle_times: list[float] = field(default_factory=list, repr=False)
    longest_wait_s: float = 0.0

    @property
    def counted(self) -> int:
        return self.offered - self.short_abandoned

    @property
    def answer_rate(self) -> float | None:
        return self.answered / self.counted if self.counted else None

    @property
    def service_level(self) -> float | None:
        return self.answered_in_target / self.counted if self.counted else None

    @property
    def abandon_rate(self) -> float | None:
        return self.abandoned / self.counted if self.counted else None

    @property
    def asa_s(self) -> float | None:
        return mean(self.waits_answered) if self.waits_answered else None

    @property
    def aht_s(self) -> float | None:
        return mean(self.handle_times) if self.handle_times else None


@dataclass
class AgentKpis:
    agent: str
    start: datetime.datetime
    seconds: dict[str, float] = field(default_factory=dict)  # state -> seconds in the interval
    calls: int = 0

    @property
    def occupancy(self) -> float | None:
        handling = sum(self.seconds.get(s, 0.0) for s in HANDLING)
        available = handling + sum(self.seconds.get(s, 0.0) for s in AVAILABLE)
        return handling / available if available else None


def interval_start(at: datetime.datetime, interval: str, tz: ZoneInfo) -> datetime.datetime:
    """The start of the interval `at` falls in, on the wall clock of `tz`."""
    local = at.astimezone(tz)
    if interval == "day":
        return local.replace(hour=0, minute=0, second=0, microsecond=0)
    if interval == "hour":
        return local.replace(minute=0, second=0, microsecond=0)
    return local.replace(minute=local.minute - local.minute % 15, second=0, microsecond=0)


def _seconds(a: datetime.datetime | None, b: datetime.datetime | None) -> float | None:
    return (b - a).total_seconds() if a is not None and b is not None else None


def queue_kpis(visits: Iterable, interval: str, tz: ZoneInfo, targets_s: dict[str, float],
               short_abandon_s: float = 5.0) -> list[QueueKpis]:
    """KPIs per (queue, interval) from queue-visit rows (runtime.storage.QueueVisit or alike).

    `targets_s` gives each queue's service-level threshold in seconds (e.g. 20)."""
    rows: dict[tuple[str, datetime.datetime], QueueKpis] = {}
    for v in visits:
        start = interval_start(v.enqueued_at, interval, tz)
        k = rows.setdefault((v.queue, start), QueueKpis(queue=v.queue, start=start))
        k.offered += 1
        wait = _seconds(v.enqueued_at, v.left_at)
        if wait is not None:
            k.longest_wait_s = max(k.longest_wait_s, wait)
        if v.outcome == "answered":
            k.answered += 1
            k.waits_answered.append(wait or 0.0)
            if (wait or 0.0) <= targets_s.get(v.queue, 20.0):
                k.answered_in_target += 1
            talk = _seconds(v.left_at, v.talk_ended_at)
            if talk is not None:
                wrap = _seconds(v.talk_ended_at, v.wrapup_ended_at) or 0.0
                k.handle_times.append(talk + v.hold_ms / 1000 + wrap)
        elif v.outcome == "abandoned":
            if wait is not None and wait < short_abandon_s:
                k.short_abandoned += 1
            else:
                k.abandoned += 1
        elif v.outcome in ("overflow", "callback"):
            k.overflowed += 1
    return sorted(rows.values(), key=lambda k: (k.queue, k.start))


def agent_kpis(states: Iterable, since: datetime.datetime, until: datetime.datetime, interval: str,
               tz: ZoneInfo) -> list[AgentKpis]:
    """Time in each state per (agent, interval), clipped to [since, until), from state-change rows
    ordered by agent and time.  A state lasts until the agent's next change (or `until`).  Time
    logged out is nobody's working time: an interval the agent spent logged out has no row."""
    by_agent: dict[str, list] = {}
    for s in states:
        by_agent.setdefault(s.agent, []).append(s)
    out: dict[tuple[str, datetime.datetime], AgentKpis] = {}
    step = INTERVALS[interval]
    for agent, changes in by_agent.items():
        for current, following in zip(changes, changes[1:] + [None]):
            begin = max(current.at, since)
            end = min(following.at if following else until, until)
            if current.state == "on_call" and since <= current.at < until:
                k = out.setdefault((agent, interval_start(current.at, interval, tz)),
                                   AgentKpis(agent=agent, start=interval_start(current.at, interval, tz)))
                k.calls += 1
            while begin < end and current.state != "logged_out":
                start = interval_start(begin, interval, tz)
                piece_end = min(end, start + step if interval != "day" else _next_day(start))
                k = out.setdefault((agent, start), AgentKpis(agent=agent, start=start))
                k.seconds[current.state] = k.seconds.get(current.state, 0.0) + (piece_end - begin).total_seconds()
                begin = piece_end
    return sorted(out.values(), key=lambda k: (k.agent, k.start))


def _next_day(start: datetime.datetime) -> datetime.datetime:
    """Midnight after `start` on its own wall clock (days are 23 or 25 hours at DST changes)."""
    following = (start + datetime.timedelta(days=1, hours=2)).replace(hour=0, minute=0, second=0, microsecond=0)
    return following.replace(tzinfo=start.tzinfo)
