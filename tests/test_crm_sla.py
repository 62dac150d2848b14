"""SLA clocks of the complaint workflow in office hours (Asia/Shanghai, Mon-Fri 09-18, holidays), and the
SLA tick that turns them into notices on SQLite and PostgreSQL."""
from __future__ import annotations

import datetime
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy

from compiler import compile_project
from runtime.crm import audit, notifications
from runtime.crm.sla import due_actions, sla_clocks, time_left_ms
from runtime.crm.tables import crm_metadata, table_name
from runtime.crm.users import SYSTEM, users_from_bundle
from tests.conftest import database_engine

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


# ------------------------------------------------------------------ notices and the SLA tick (databases)

UTC = datetime.timezone.utc


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def engine(request, tmp_path_factory):
    """A database per module and kind: a SQLite file, or a PostgreSQL schema of its own."""
    with database_engine(request.param, tmp_path_factory.mktemp("sla"), "sla") as engine:
        yield engine


@pytest.fixture
def crm(engine, bundle):
    metadata = crm_metadata(bundle)
    audit.audit_table(metadata)
    metadata.create_all(engine)
    notifications.create_tables(engine)
    yield metadata
    with engine.begin() as conn:
        for table in ("crm_sla_events", "crm_notifications", "crm_audit", "crm_ticket"):
            conn.execute(sqlalchemy.text(f"DELETE FROM {table}"))


def add_ticket(engine, metadata, record_id, history, assignee=None):
    """A ticket whose audit log holds the given state changes (local office times)."""
    table = metadata.tables[table_name("Ticket")]
    first = at(history[0][0])
    with engine.begin() as conn:
        conn.execute(table.insert().values(id=record_id, caller_phone="13800000000", category="complaint",
                                           state=history[-1][1], assignee=assignee, created_at=first,
                                           updated_at=first, version=1))
        previous = None
        for when, state in history:
            audit.write(conn, metadata.tables["crm_audit"], at=at(when).astimezone(UTC), user="system",
                        entity="Ticket", record_id=record_id, action="transition" if previous else "create",
                        fields={"state": (previous, state)})
            previous = state


def tick(engine, bundle, metadata, now):
    with engine.begin() as conn:
        return notifications.run_sla(conn, bundle, at(now).astimezone(UTC), metadata)


def inbox(engine, agent):
    with engine.connect() as conn:
        return [n.message for n in reversed(notifications.for_agent(conn, agent))]


def test_notices_are_read_and_counted_per_agent(engine, crm):
    moment = datetime.datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
    with engine.begin() as conn:
        notifications.notify(conn, agent="li_na", message="一", entity="Ticket", record_id=3, at=moment)
        notifications.notify(conn, crm, agent="li_na", message="二", at=moment)
        notifications.notify(conn, agent="wang_fang", message="三", at=moment)
    with engine.begin() as conn:
        assert notifications.unread(conn, "li_na") == 2
        mine = notifications.for_agent(conn, "li_na")
        assert [n.message for n in mine] == ["二", "一"] and mine[1].slug == "ticket" and mine[1].at == moment
        # nobody marks another agent's notices read
        assert notifications.mark_read(conn, "wang_fang", moment, [mine[1].id]) == 0
        assert notifications.mark_read(conn, "li_na", moment, [mine[1].id]) == 1
        assert notifications.unread(conn, "li_na") == 1
        assert [n.message for n in notifications.for_agent(conn, "li_na", unread_only=True)] == ["二"]
        assert notifications.mark_read(conn, "li_na", moment) == 1
        assert notifications.unread(conn, "li_na") == 0 and notifications.unread(conn, "wang_fang") == 1


def test_the_tick_escalates_to_every_team_lead_once(engine, bundle, crm):
    add_ticket(engine, crm, 1, [("2026-03-02 09:00", "new")])
    # 75%: the third hour's reminder has nobody to go to (no assignee) and is not tried again
    assert [(s.key, s.agents) for s in tick(engine, bundle, crm, "2026-03-02 12:00")] == [("first_response#1:rule2:3", ())]
    sent = tick(engine, bundle, crm, "2026-03-02 12:15")
    assert [(s.key, s.agents) for s in sent] == [("first_response#1:rule0", ("zhao_min", "zhou_qiang"))]
    assert inbox(engine, "zhao_min") == ["工单 #1: first_response has used 81% of 4h, due 2026-03-02 13:00"]
    assert tick(engine, bundle, crm, "2026-03-02 12:30") == []
    assert len(inbox(engine, "zhou_qiang")) == 1


def test_the_assignee_is_reminded_every_office_hour_and_told_when_overdue(engine, bundle, crm):
    add_ticket(engine, crm, 2, [("2026-03-06 17:00", "new"), ("2026-03-06 17:10", "assigned")], assignee="li_na")
    for now in ["2026-03-06 17:30", "2026-03-06 18:00", "2026-03-07 12:00", "2026-03-09 10:05", "2026-03-09 11:00",
                "2026-03-09 12:00", "2026-03-09 12:01"]:
        tick(engine, bundle, crm, now)
    assert inbox(engine, "li_na") == [
        "Reminder: 工单 #2: first_response has 3h left, due 2026-03-09 12:00",
        "Reminder: 工单 #2: first_response has 1h55m left, due 2026-03-09 12:00",
        "Reminder: 工单 #2: first_response has 1h left, due 2026-03-09 12:00",
        "工单 #2: first_response has used 100% of 4h, overdue since 2026-03-09 12:00",
        "Reminder: 工单 #2: first_response has 0s left, overdue since 2026-03-09 12:00",
        "Reminder: 工单 #2: resolution has 44h left, due 2026-03-16 11:00",  # every 4h of 48h
    ]
    with engine.connect() as conn:
        keys = set(conn.execute(sqlalchemy.select(notifications.SLA_EVENTS.c.key)).scalars())
    assert "first_response#1:rule1" in keys and "first_response#1:rule2:4" in keys


def test_paused_answered_and_closed_tickets(engine, bundle, crm):
    add_ticket(engine, crm, 3, [("2026-03-02 09:00", "new"), ("2026-03-02 09:05", "assigned"),
                                ("2026-03-02 09:10", "in_progress"), ("2026-03-02 10:00", "waiting_customer")],
               assignee="wang_fang")
    add_ticket(engine, crm, 4, [("2026-03-02 09:00", "new"), ("2026-03-02 09:10", "in_progress"),
                                ("2026-03-02 10:00", "resolved"), ("2026-03-02 11:00", "closed")], assignee="liu_yang")
    assert tick(engine, bundle, crm, "2026-03-20 12:00") == []  # paused after 1h; closed is not looked at
    assert inbox(engine, "wang_fang") == [] and inbox(engine, "liu_yang") == []


def test_the_tick_reads_what_the_record_store_wrote(engine, bundle, crm):
    from runtime.crm.records import RecordStore

    clock = [at("2026-03-02 09:00").astimezone(UTC)]
    store = RecordStore(engine, bundle, now=lambda: clock[0])
    people = users_from_bundle(bundle)
    ticket = store.create(SYSTEM, "Ticket", {"caller_phone": "13800000001", "category": "complaint"})
    clock[0] = at("2026-03-02 09:30").astimezone(UTC)
    store.transition(people["chen_jing"], "Ticket", ticket["id"], "take")
    clock[0] = at("2026-03-02 10:00").astimezone(UTC)
    store.transition(people["chen_jing"], "Ticket", ticket["id"], "start")
    sent = tick(engine, bundle, crm, "2026-03-09 09:00")  # first response met; resolution at 45 of 48h
    assert [(s.key, s.agents) for s in sent] == [("resolution#1:rule0", ("zhao_min", "zhou_qiang")),
                                                   ("resolution#1:rule2:11", ("chen_jing",))]
