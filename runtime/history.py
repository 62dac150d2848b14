"""Past working days of the call centre, simulated call by call, for demos and screenshots.

`past_days(bundle, before=..., days=5, zone=...)` returns the event log rows (calls, queue visits,
agent states) of the working days before `before`, so reports, staffing, the wallboard's
history and QA have calls to show on a fresh install.  The calls go through the real CallCenter,
so the project's queues, skills, routing strategies, ring timeouts, wrap-up and overflow all
apply.  The model around it (`runtime.phones`):

- Monday to Friday, OPEN to CLOSE in the project's zone.  Every agent who serves a queue logs in
  at opening, takes an hour's lunch break (not ready, 午休) starting at noon or half past, goes
  not ready (下班) at closing and logs out once their last call is wrapped up.
- Calls arrive at random (Poisson) at a rate that follows CALLS_PER_HOUR, the shape of a
  carrier hotline's day: a morning peak, a lunch dip, an afternoon peak.  Each goes to a queue
  picked by QUEUE_SHARE (queues it does not name share what is left equally) through a
  one-step flow `history-<queue>`, from a number in `callers` (say, the CRM's customers) or a
  made-up mobile number, to the project's first number.
- A rung agent answers after RING_MS; talk lasts 4 minutes on average; callers not answered give
  up after a minute and a half on average.

The same seed gives the same days.
"""
from __future__ import annotations

import datetime as dt
import itertools
import random
from typing import Sequence
from zoneinfo import ZoneInfo

from compiler import ir
from runtime.callcenter import CallCenter
from runtime.phones import SimulatedPhones

OPEN, CLOSE = dt.time(9, 0), dt.time(18, 0)
# Calls per hour of the day, by the hour they start in (9 means 09:00-10:00).
CALLS_PER_HOUR = {9: 30, 10: 44, 11: 40, 12: 22, 13: 26, 14: 42, 15: 38, 16: 30, 17: 20}
QUEUE_SHARE = {"general": 0.5, "business": 0.2, "complaints": 0.15, "vip": 0.15}
AHT_MS = 240_000
PATIENCE_MS = 90_000
RING_MS = 4_000
LUNCH = dt.timedelta(hours=1)
RETRY_LOGOUT = dt.timedelta(minutes=5)
FLOW_PREFIX = "history-"


def history_bundle(bundle: ir.Bundle) -> ir.Bundle:
    """The project with a one-step flow `history-<queue>` into each of its queues."""
    flows = {f"{FLOW_PREFIX}{queue}": ir.Flow(name=f"{FLOW_PREFIX}{queue}", start="enqueue@1",
                                              steps=[ir.EnqueueStep(id="enqueue@1", queue=queue, priority=0)])
             for queue in bundle.queues}
    return bundle.model_copy(update={"flows": {**bundle.flows, **flows}})


def working_days(before: dt.date, days: int) -> list[dt.date]:
    """The `days` weekdays before `before`, oldest first."""
    out, day = [], before
    while len(out) < days:
        day -= dt.timedelta(days=1)
        if day.weekday() < 5:
            out.append(day)
    return out[::-1]


class _Days(SimulatedPhones):
    def __init__(self, bundle: ir.Bundle, epoch: dt.datetime, zone: ZoneInfo, rng: random.Random,
                 callers: Sequence[str]):
        super().__init__(CallCenter(bundle, epoch=epoch, log_events=False), rng, AHT_MS, PATIENCE_MS, RING_MS)
        self.zone, self.callers = zone, list(callers)
        self.numbers = itertools.count(1)
        self.agents = [name for name, agent in bundle.agents.items() if agent.queues]
        queues = list(bundle.queues)
        left = [q for q in queues if q not in QUEUE_SHARE]
        spare = max(0.0, 1 - sum(QUEUE_SHARE.get(q, 0) for q in queues))
        self.queues = queues
        self.dialed = next(iter(bundle.numbers), None)
        self.weights = [QUEUE_SHARE.get(q, spare / len(left) if left else 0) for q in queues]

    def at(self, day: dt.date, time: dt.time) -> dt.datetime:
        """`time` on `day` in the project's zone, in UTC as everything the event log keeps."""
        return dt.datetime.combine(day, time, self.zone).astimezone(dt.timezone.utc)

    def plan_day(self, day: dt.date) -> None:
        opening, closing = self.at(day, OPEN), self.at(day, CLOSE)
        for n, agent in enumerate(self.agents):
            self.later(opening + dt.timedelta(minutes=self.rng.uniform(0, 10)), "log in", agent=agent)
            lunch = self.at(day, dt.time(12, 30 if n % 2 else 0))
            self.later(lunch, "lunch", agent=agent)
            self.later(lunch + LUNCH, "back", agent=agent)
            self.later(closing, "day over", agent=agent)
            self.later(closing + RETRY_LOGOUT, "log out", agent=agent)
        self.later(opening, "arrive")

    def happen(self, at: dt.datetime, what: str, call: str, agent: str) -> None:
        center = self.center
        if what == "arrive":
            self._arrive(at)
        elif what == "log in":
            center.login(agent, at)
        elif what == "lunch":
            center.set_not_ready(agent, "午休", at)
        elif what == "back":
            center.set_ready(agent, at)
        elif what == "day over":
            center.set_not_ready(agent, "下班", at)
        elif what == "log out":
            center.logout(agent, at)
            if center.acd.agent_state(agent)[0] != "logged_out":      # still on a call: later
                self.later(at + RETRY_LOGOUT, "log out", agent=agent)
        else:
            super().happen(at, what, call, agent)

    def _arrive(self, at: dt.datetime) -> None:
        local = at.astimezone(self.zone)
        rate = CALLS_PER_HOUR.get(local.hour, 0)
        if rate:
            queue = self.rng.choices(self.queues, self.weights)[0]
            caller = self.rng.choice(self.callers) if self.callers and self.rng.random() < 0.3 else \
                f"13{self.rng.randrange(10**9):09d}"
            self.call_in(at, f"history-{local:%Y%m%d}-{next(self.numbers)}", caller, f"{FLOW_PREFIX}{queue}",
                         self.dialed)
        following = at + dt.timedelta(hours=self.rng.expovariate(max(rate, 1)))
        then = following.astimezone(self.zone)
        if then.date() == local.date() and then.time() < CLOSE:
            self.later(following, "arrive")


def past_days(bundle: ir.Bundle, *, before: dt.date, days: int, zone: ZoneInfo,
              callers: Sequence[str] = (), seed: int = 1) -> list:
    """The event log rows of `days` working days before the day `before`, each row once."""
    if not bundle.queues:
        return []
    dates = working_days(before, days)
    midnight = dt.time(0)
    epoch = dt.datetime.combine(dates[0], midnight, zone).astimezone(dt.timezone.utc)
    run = _Days(history_bundle(bundle), epoch, zone, random.Random(seed), callers)
    rows: list = []
    for day in dates:
        run.plan_day(day)
        rows += run.run(run.at(day + dt.timedelta(days=1), midnight))
    return list({id(row): row for row in rows}.values())   # a row is logged again at each change


# ------------------------------------------------------------------ QA reviews of those days

NOTES = ["开头语规范,核实身份完整。", "解答准确,注意语速。", "安抚到位,工单记录完整。",
         "未征得同意即静音,已辅导。", "产品资费讲解不清,安排复训。", "结束语缺失,已提醒。"]
CALL_TYPE_SHARE = {"inquiry": 0.5, "business": 0.3, "complaint": 0.2}


def demo_review(evaluation: ir.Evaluation, rng: random.Random, level: float) -> tuple[str, dict[str, int], str]:
    """A made-up review's (call type, points per "part.item", action note), the points around
    `level` (0.7: 70% of each item's points) so that agents reviewed with levels of their own
    show different trends."""
    types = [c.name for c in evaluation.call_types]
    call_type = rng.choices(types, [CALL_TYPE_SHARE.get(t, 0.1) for t in types])[0]
    points = {f"{part.name}.{item.name}": max(0, min(item.points, round(item.points * rng.gauss(level, 0.12))))
              for part in evaluation.parts for item in part.items}
    return call_type, points, rng.choice(NOTES)
