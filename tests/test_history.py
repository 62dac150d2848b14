"""The demo history: past working days simulated through the real call centre."""
from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from compiler import compile_project
from runtime import history
from runtime.storage import AgentState, Call, QueueVisit

REPO = Path(__file__).resolve().parents[1]
SHANGHAI = ZoneInfo("Asia/Shanghai")
MONDAY = dt.date(2026, 11, 23)


@pytest.fixture(scope="module")
def bundle():
    return compile_project([REPO / "flows", REPO / "schemas"]).bundle


@pytest.fixture(scope="module")
def two_days(bundle):
    return history.past_days(bundle, before=MONDAY, days=2, zone=SHANGHAI, callers=["13800138003"], seed=3)


def test_working_days_skip_weekends():
    assert history.working_days(MONDAY, 3) == [dt.date(2026, 11, 18), dt.date(2026, 11, 19), dt.date(2026, 11, 20)]


def test_calls_come_in_opening_hours_of_the_days_before(two_days):
    calls = [r for r in two_days if isinstance(r, Call)]
    assert len(calls) > 300
    local = [c.started_at.astimezone(SHANGHAI) for c in calls]
    assert {t.date() for t in local} == {dt.date(2026, 11, 19), dt.date(2026, 11, 20)}
    assert all(history.OPEN <= t.time() < history.CLOSE for t in local)
    assert all(c.started_at.utcoffset() == dt.timedelta(0) for c in calls)   # kept in UTC like every row
    assert sum(c.caller == "13800138003" for c in calls) > 10                # some callers are known customers
    assert {c.dialed for c in calls} == {"4008001000"}


def test_every_queue_takes_calls_and_only_its_agents_answer(bundle, two_days):
    visits = [r for r in two_days if isinstance(r, QueueVisit)]
    outcomes = Counter((v.queue, v.outcome) for v in visits)
    for queue in bundle.queues:
        assert outcomes[(queue, "answered")] > 0
    assert 0 < sum(n for (q, o), n in outcomes.items() if o == "abandoned") < len(visits) / 3
    for v in visits:
        if v.outcome == "answered":
            assert v.queue in bundle.agents[v.agent].queues


def test_agents_work_the_day_take_lunch_and_log_out(bundle, two_days):
    states = sorted((r for r in two_days if isinstance(r, AgentState)), key=lambda r: r.at)
    for agent in (name for name, a in bundle.agents.items() if a.queues):
        mine = [s for s in states if s.agent == agent]
        for day in (dt.date(2026, 11, 19), dt.date(2026, 11, 20)):
            today = [s for s in mine if s.at.astimezone(SHANGHAI).date() == day]
            assert today[0].state == "ready" and today[-1].state == "logged_out"
            assert any(s.state == "not_ready" and s.reason == "午休" for s in today)


def test_the_same_seed_gives_the_same_days(bundle, two_days):
    again = history.past_days(bundle, before=MONDAY, days=2, zone=SHANGHAI, callers=["13800138003"], seed=3)
    key = lambda rows: sorted((r.id, r.started_at, r.agent, r.end_reason) for r in rows if isinstance(r, Call))
    assert key(again) == key(two_days)
