"""SLA clocks of the complaint workflow in office hours (Asia/Shanghai, Mon-Fri 09-18, holidays)."""
from __future__ import annotations

import datetime
from zoneinfo import ZoneInfo

import pytest

from compiler import compile_project
from runtime.crm.sla import due_actions, sla_clocks, time_left_ms

SHANGHAI = ZoneInfo("Asia/Shanghai")
HOUR = 3_600_000


def at(text: str) -> datetime.datetime:
    """A local office time, e.g. "2026-03-06 17:00"."""
    return datetime.datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


@pytest.fixture(scope="module")
def bundle():
    return compile_project(["flows", "schemas"]).bundle


@pytest.fixture(scope="module")
def complaint(bundle):
    return bundle.workflows["complaint"]


def clocks(bundle, complaint, history, now):
    found = {c.name: c for c in sla_clocks(bundle, complaint, [(at(t), s) for t, s in history], at(now))}
    return found["first_response"], found["resolution"]


def test_friday_evening_complaint_is_due_monday_noon(bundle, complaint):
    first, resolution = clocks(bundle, complaint, [("2026-03-06 17:00", "new")], "2026-03-07 10:00")
    assert first.elapsed_ms == HOUR and first.target_ms == 4 * HOUR
    assert first.percent == 25.0 and not first.breached and first.running
    assert first.due_at == at("2026-03-09 12:00")
    assert first.left_ms == 3 * HOUR
    assert resolution.due_at == at("2026-03-16 11:00")  # 48 office hours: 1 + 5 days x 9 + 2


def test_holidays_do_not_count(bundle, complaint):
    # Qingming: Saturday 4 April to Monday 6 April 2026 are all closed.
    first, _ = clocks(bundle, complaint, [("2026-04-03 17:00", "new")], "2026-04-06 17:00")
    assert first.elapsed_ms == HOUR
    assert first.due_at == at("2026-04-07 12:00")


def test_a_make_up_working_saturday_counts(bundle, complaint):
    # Saturday 14 February 2026 is an office day before the Spring Festival.
    first, _ = clocks(bundle, complaint, [("2026-02-13 17:00", "new")], "2026-02-13 17:30")
    assert first.due_at == at("2026-02-14 12:00")
    first, _ = clocks(bundle, complaint, [("2026-02-13 17:00", "new")], "2026-02-14 12:00")
    assert first.breached and first.breached_at == at("2026-02-14 12:00")


def test_waiting_for_the_customer_stops_the_clock(bundle, complaint):
    history = [("2026-03-02 09:00", "new"), ("2026-03-02 10:00", "assigned"), ("2026-03-02 11:00", "in_progress"),
               ("2026-03-02 12:00", "waiting_customer")]
    _, resolution = clocks(bundle, complaint, history, "2026-03-04 12:00")
    assert resolution.paused and not resolution.running
    assert resolution.elapsed_ms == 3 * HOUR and resolution.due_at is None
    history.append(("2026-03-04 12:00", "in_progress"))
    _, resolution = clocks(bundle, complaint, history, "2026-03-04 14:00")
    assert resolution.elapsed_ms == 5 * HOUR and not resolution.paused
    assert resolution.due_at == at("2026-03-11 12:00")  # 43h left: 4 + 9 + 9 + 9 + 9 + 3


def test_reaching_a_stop_state_stops_the_clock_for_good(bundle, complaint):
    history = [("2026-03-02 09:00", "new"), ("2026-03-02 10:00", "assigned"), ("2026-03-02 11:30", "in_progress")]
    first, resolution = clocks(bundle, complaint, history, "2026-03-03 18:00")
    assert first.stopped and first.stopped_at == at("2026-03-02 11:30")
    assert first.elapsed_ms == 2.5 * HOUR and first.due_at is None and not first.breached
    # the resolution clock runs on: its stop is `resolved`
    assert resolution.running and resolution.elapsed_ms == 18 * HOUR


def test_reopening_keeps_the_resolution_result(bundle, complaint):
    history = [("2026-03-02 09:00", "new"), ("2026-03-02 09:30", "assigned"), ("2026-03-02 10:00", "in_progress"),
               ("2026-03-03 10:00", "resolved"), ("2026-03-04 10:00", "in_progress")]
    _, resolution = clocks(bundle, complaint, history, "2026-03-20 10:00")
    assert resolution.stopped and resolution.stopped_at == at("2026-03-03 10:00")
    assert resolution.elapsed_ms == 10 * HOUR and not resolution.breached and resolution.run == 1
    assert due_actions(resolution, set()) == []


def test_entering_the_start_state_again_starts_a_new_run(bundle, complaint):
    history = [("2026-03-02 09:00", "new"), ("2026-03-02 10:00", "assigned"), ("2026-03-02 11:00", "in_progress"),
               ("2026-03-03 09:00", "new")]
    first, _ = clocks(bundle, complaint, history, "2026-03-03 13:00")
    assert first.run == 2 and first.started_at == at("2026-03-03 09:00")
    assert first.elapsed_ms == 4 * HOUR and first.breached


def test_a_record_not_yet_in_the_start_state_has_no_clock(bundle, complaint):
    ticket = complaint.model_copy(update={"slas": [s.model_copy(update={"start": "assigned"}) for s in complaint.slas]})
    first = sla_clocks(bundle, ticket, [(at("2026-03-02 09:00"), "new")], at("2026-03-02 15:00"))[0]
    assert not first.started and first.elapsed_ms == 0 and first.due_at is None
    assert due_actions(first, set()) == [] and time_left_ms([first]) is None


def test_later_history_than_now_is_ignored(bundle, complaint):
    first, _ = clocks(bundle, complaint, [("2026-03-02 09:00", "new"), ("2026-03-02 12:00", "in_progress")],
                      "2026-03-02 10:00")
    assert first.running and first.elapsed_ms == HOUR


def test_an_overdue_clock_says_when_it_was_due(bundle, complaint):
    first, _ = clocks(bundle, complaint, [("2026-03-06 17:00", "new")], "2026-03-10 10:00")
    assert first.breached and first.percent == 100 * 11 / 4
    assert first.due_at == first.breached_at == at("2026-03-09 12:00")
    assert first.left_ms == -7 * HOUR


# ------------------------------------------------------------------ rules due

def keys(actions):
    return [(a.key, a.rule.kind) for a in actions]


def test_escalation_at_80_percent_fires_once(bundle, complaint):
    first, _ = clocks(bundle, complaint, [("2026-03-02 09:00", "new")], "2026-03-02 12:11")
    assert keys(due_actions(first, set())) == [("first_response#1:rule2:3", "remind")]  # 79.6%
    first, _ = clocks(bundle, complaint, [("2026-03-02 09:00", "new")], "2026-03-02 12:12")
    due = due_actions(first, set())
    assert keys(due) == [("first_response#1:rule0", "escalate"), ("first_response#1:rule2:3", "remind")]
    assert due[0].rule.role == "team_lead"
    fired = {a.key for a in due}
    assert due_actions(first, fired) == []
    first, _ = clocks(bundle, complaint, [("2026-03-02 09:00", "new")], "2026-03-02 12:59")
    assert due_actions(first, fired) == []


def test_at_100_percent_the_assignee_is_told(bundle, complaint):
    first, _ = clocks(bundle, complaint, [("2026-03-02 09:00", "new")], "2026-03-02 13:00")
    due = due_actions(first, {"first_response#1:rule0", "first_response#1:rule2:3"})
    assert keys(due) == [("first_response#1:rule1", "notify"), ("first_response#1:rule2:4", "remind")]


def test_reminders_every_office_hour_while_running(bundle, complaint):
    fired: set[str] = set()
    sent = []
    for now in ["2026-03-06 17:30", "2026-03-06 18:00", "2026-03-07 11:00", "2026-03-09 09:30", "2026-03-09 10:00",
                "2026-03-09 10:20"]:
        first, _ = clocks(bundle, complaint, [("2026-03-06 17:00", "new")], now)
        reminders = [a for a in due_actions(first, fired) if a.rule.kind == "remind"]
        fired |= {a.key for a in reminders}
        sent.append([a.key for a in reminders])
    assert sent == [[], ["first_response#1:rule2:1"], [], [], ["first_response#1:rule2:2"], []]


def test_after_a_gap_only_the_latest_reminder_is_sent(bundle, complaint):
    first, _ = clocks(bundle, complaint, [("2026-03-02 09:00", "new")], "2026-03-02 12:30")
    reminders = [a.key for a in due_actions(first, set()) if a.rule.kind == "remind"]
    assert reminders == ["first_response#1:rule2:3"]


def test_no_reminders_while_paused_but_a_missed_escalation_still_fires(bundle, complaint):
    history = [("2026-03-02 09:00", "new"), ("2026-03-02 09:10", "assigned"), ("2026-03-02 09:20", "in_progress"),
               ("2026-03-07 10:00", "waiting_customer")]
    _, resolution = clocks(bundle, complaint, history, "2026-03-12 10:00")
    assert resolution.paused and resolution.percent == 100 * 45 / 48
    assert keys(due_actions(resolution, set())) == [("resolution#1:rule0", "escalate")]


def test_stopped_clocks_fire_nothing(bundle, complaint):
    first, _ = clocks(bundle, complaint, [("2026-03-02 09:00", "new"), ("2026-03-02 16:00", "in_progress")],
                      "2026-03-03 16:00")
    assert first.breached and first.stopped
    assert due_actions(first, set()) == []


def test_supervisors_list_by_time_left(bundle, complaint):
    tickets = {
        "fresh": [("2026-03-02 11:00", "new")],
        "old": [("2026-03-02 09:00", "new")],
        "answered": [("2026-03-02 09:00", "new"), ("2026-03-02 09:30", "in_progress")],
        "closed": [("2026-03-02 09:00", "new"), ("2026-03-02 09:30", "in_progress"), ("2026-03-02 10:00", "resolved")],
    }
    left = {name: time_left_ms(sla_clocks(bundle, complaint, [(at(t), s) for t, s in h], at("2026-03-02 12:00")))
            for name, h in tickets.items()}
    assert left == {"fresh": 3 * HOUR, "old": HOUR, "answered": 45 * HOUR, "closed": None}
    ordered = sorted(tickets, key=lambda n: (left[n] is None, left[n]))
    assert ordered == ["old", "fresh", "answered", "closed"]


def test_a_workflow_without_hours_is_an_error(bundle, complaint):
    without = complaint.model_copy(update={"hours": None})
    with pytest.raises(ValueError, match="workflow complaint counts its SLAs in hours None"):
        sla_clocks(bundle, without, [(at("2026-03-02 09:00"), "new")], at("2026-03-02 10:00"))
