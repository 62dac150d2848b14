"""Each KPI on a small event log computed by hand."""
from __future__ import annotations

import datetime
from types import SimpleNamespace as Row
from zoneinfo import ZoneInfo

import pytest

from runtime.kpis import agent_kpis, queue_kpis

SH = ZoneInfo("Asia/Shanghai")
UTC = datetime.timezone.utc


def at(hour, minute=0, second=0):
    return datetime.datetime(2026, 11, 23, hour, minute, second, tzinfo=SH)


def visit(queue, enq, wait_s, outcome, talk_s=None, wrap_s=0, hold_ms=0):
    left = enq + datetime.timedelta(seconds=wait_s) if wait_s is not None else None
    talk_end = left + datetime.timedelta(seconds=talk_s) if talk_s is not None else None
    wrap_end = talk_end + datetime.timedelta(seconds=wrap_s) if talk_end is not None else None
    return Row(queue=queue, enqueued_at=enq, left_at=left, outcome=outcome, talk_ended_at=talk_end,
               wrapup_ended_at=wrap_end, hold_ms=hold_ms)


LOG = [
    visit("general", at(9, 0), 10, "answered", talk_s=200, wrap_s=30),              # in target
    visit("general", at(9, 10), 25, "answered", talk_s=100, wrap_s=20, hold_ms=10_000),  # over 20 s
    visit("general", at(9, 20), 3, "abandoned"),                                    # short abandon
    visit("general", at(9, 30), 40, "abandoned"),
    visit("general", at(9, 40), 90, "overflow"),
    visit("general", at(10, 5), 5, "answered", talk_s=60, wrap_s=0),
    visit("vip", at(9, 15), 2, "answered", talk_s=300, wrap_s=60),
]


def test_queue_kpis_per_hour():
    rows = queue_kpis(LOG, "hour", SH, targets_s={"general": 20, "vip": 10})
    general9 = next(r for r in rows if r.queue == "general" and r.start == at(9))
    assert (general9.offered, general9.answered, general9.abandoned, general9.short_abandoned,
            general9.overflowed) == (5, 2, 1, 1, 1)
    assert general9.answer_rate == pytest.approx(2 / 4)
    assert general9.service_level == pytest.approx(1 / 4)
    assert general9.abandon_rate == pytest.approx(1 / 4)
    assert general9.asa_s == pytest.approx((10 + 25) / 2)
    assert general9.aht_s == pytest.approx(((200 + 30) + (100 + 10 + 20)) / 2)
    assert general9.longest_wait_s == 90
    general10 = next(r for r in rows if r.queue == "general" and r.start == at(10))
    assert (general10.offered, general10.answered, general10.service_level) == (1, 1, 1.0)
    vip = next(r for r in rows if r.queue == "vip")
    assert (vip.service_level, vip.aht_s) == (1.0, 360)


def test_intervals_of_15_minutes_and_days_in_local_time():
    quarters = queue_kpis(LOG, "15min", SH, targets_s={})
    assert [(r.queue, r.start.strftime("%H:%M"), r.offered) for r in quarters] == [
        ("general", "09:00", 2), ("general", "09:15", 1), ("general", "09:30", 2), ("general", "10:00", 1),
        ("vip", "09:15", 1)]
    days = queue_kpis(LOG, "day", SH, targets_s={})
    assert [(r.queue, r.offered) for r in days] == [("general", 6), ("vip", 1)]
    # 00:30 in Shanghai is the previous day in UTC: the day is the local one.
    late = [visit("general", datetime.datetime(2026, 11, 23, 16, 30, tzinfo=UTC), 1, "answered")]
    assert queue_kpis(late, "day", SH, targets_s={})[0].start == datetime.datetime(2026, 11, 24, tzinfo=SH)


def test_agent_state_times_and_occupancy():
    states = [
        Row(agent="a1", state="ready", at=at(9, 0)),
        Row(agent="a1", state="on_call", at=at(9, 10)),
        Row(agent="a1", state="wrap_up", at=at(9, 30)),
        Row(agent="a1", state="not_ready", at=at(9, 35)),
        Row(agent="a1", state="ready", at=at(9, 45)),
    ]
    rows = agent_kpis(states, at(9), at(10, 30), "hour", SH)
    nine, ten = rows
    assert nine.seconds == {"ready": 600 + 900, "on_call": 1200, "wrap_up": 300, "not_ready": 600}
    assert nine.calls == 1
    assert nine.occupancy == pytest.approx(1500 / 3000)
    assert ten.seconds == {"ready": 1800} and ten.occupancy == 0.0


def test_hours_spent_logged_out_have_no_row():
    states = [
        Row(agent="a1", state="logged_out", at=at(0, 0)),
        Row(agent="a1", state="ready", at=at(9, 30)),
        Row(agent="a1", state="logged_out", at=at(10, 15)),
    ]
    rows = agent_kpis(states, at(0), at(13), "hour", SH)
    assert [(r.start.hour, r.seconds) for r in rows] == [(9, {"ready": 1800}), (10, {"ready": 900})]


def test_empty_intervals_have_no_rates():
    rows = queue_kpis([visit("q", at(9), 2, "abandoned")], "hour", SH, targets_s={})
    assert rows[0].short_abandoned == 1 and rows[0].answer_rate is None and rows[0].asa_s is None
