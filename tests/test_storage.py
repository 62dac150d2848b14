"""The event log on SQLite and on PostgreSQL."""
from __future__ import annotations

import datetime

from runtime.storage import AgentState, Call, CallEvent, EventLog, QueueVisit

T0 = datetime.datetime(2026, 11, 23, 9, 0, 0, tzinfo=datetime.timezone.utc)


def test_a_call_and_its_events_round_trip(database_url):
    log = EventLog(database_url)
    log.write([
        Call(id="c1", bundle_hash="sha256:x", flow="hotline", caller="13800138000", dialed="10086", started_at=T0),
        CallEvent(call_id="c1", seq=1, at=T0, kind="step", name="answer", data={"step": "answer@1"}),
        CallEvent(call_id="c1", seq=2, at=T0, kind="event", name="DigitPressed", data={"digit": "1", "说明": "中文"}),
    ])
    log.write([Call(id="c1", bundle_hash="sha256:x", flow="hotline", caller="13800138000", dialed="10086",
                    started_at=T0, ended_at=T0 + datetime.timedelta(seconds=30), end_reason="hangup")])
    call = log.call("c1")
    assert call.end_reason == "hangup" and call.ended_at == T0 + datetime.timedelta(seconds=30)
    events = log.events("c1")
    assert [(e.seq, e.name) for e in events] == [(1, "answer"), (2, "DigitPressed")]
    assert events[1].data == {"digit": "1", "说明": "中文"}


def test_queue_visits_and_agent_states_by_period(database_url):
    log = EventLog(database_url)
    log.write([Call(id=f"c{i}", bundle_hash="h", flow="f", caller="1", dialed="2", started_at=T0) for i in range(3)])
    log.write([
        QueueVisit(call_id="c0", queue="general", enqueued_at=T0, outcome="answered", agent="a1",
                   left_at=T0 + datetime.timedelta(seconds=12)),
        QueueVisit(call_id="c1", queue="vip", enqueued_at=T0 + datetime.timedelta(minutes=5), outcome="abandoned"),
        QueueVisit(call_id="c2", queue="general", enqueued_at=T0 + datetime.timedelta(hours=2)),
        AgentState(agent="a1", state="ready", at=T0),
        AgentState(agent="a1", state="on_call", at=T0 + datetime.timedelta(seconds=12)),
    ])
    hour = log.queue_visits(T0, T0 + datetime.timedelta(hours=1))
    assert [(v.call_id, v.queue) for v in hour] == [("c0", "general"), ("c1", "vip")]
    assert [v.call_id for v in log.queue_visits(T0, T0 + datetime.timedelta(hours=3), queue="general")] == ["c0", "c2"]
    assert [s.state for s in log.agent_states(T0 + datetime.timedelta(hours=1), agent="a1")] == ["ready", "on_call"]


def test_a_failed_batch_writes_nothing(database_url):
    import pytest
    from sqlalchemy.exc import IntegrityError

    log = EventLog(database_url)
    with pytest.raises(IntegrityError):
        log.write([
            Call(id="ok", bundle_hash="h", flow="f", caller="1", dialed="2", started_at=T0),
            CallEvent(call_id="no-such-call", seq=1, at=T0, kind="step", name="x"),
        ])
    assert log.call("ok") is None
