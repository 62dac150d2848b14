"""Calls through the engine and the ACD together, on a simulated clock."""
from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from compiler import compile_project
from runtime import acd_actions as a
from runtime import commands as c
from runtime.callcenter import CallCenter, MemoryCrm
from runtime.storage import EventLog, QueueVisit

SH = ZoneInfo("Asia/Shanghai")
T0 = dt.datetime(2026, 11, 23, 10, 0, tzinfo=SH)
SOURCE = """
queue general {
    strategy longest_idle
    ring timeout 10s
    wrapup 30s
}
agent li_na { queues general }
agent wang { queues general }
flow main {
    entry number "10086"
    answer
    say "您好"
    enqueue general
}
"""


@pytest.fixture
def bundle(tmp_path):
    (tmp_path / "main.flow").write_text(SOURCE, encoding="utf-8")
    return compile_project([tmp_path]).bundle


def later(seconds):
    return T0 + dt.timedelta(seconds=seconds)


def commands(center, kind):
    return [m.command for m in center.take_outbox() if isinstance(m.command, kind)]


def test_a_call_reaches_an_agent_and_leaves_a_record(bundle, database_url):
    center = CallCenter(bundle, epoch=T0, prompt_ms=lambda cmd: 2000)
    center.login("li_na", T0)
    center.start_call("c1", caller="13800138000", dialed="10086", at=T0)
    center.advance(later(3))
    assert [r.agent for r in commands(center, a.RingAgent)] == ["li_na"]
    center.agent_answers("li_na", later(5))
    center.agent_hangs_up("c1", later(65))
    assert center.calls["c1"].state.ended == "agent_hangup"
    log = EventLog(database_url)
    log.write(center.take_rows())
    (visit,) = log.queue_visits(T0, later(3600))
    assert (visit.queue, visit.outcome, visit.agent) == ("general", "answered", "li_na")
    assert visit.left_at - visit.enqueued_at == dt.timedelta(seconds=3)
    assert visit.wrapup_ended_at - visit.talk_ended_at == dt.timedelta(seconds=30)
    call = log.call("c1")
    assert (call.end_reason, call.agent, call.queue) == ("agent_hangup", "li_na", "general")
    steps = [e.data["step_id"] for e in log.events("c1") if e.name == "StepEntered"]
    assert steps == ["answer@1", "say@2", "enqueue@3"]


def test_ring_no_answer_tries_the_next_agent(bundle):
    center = CallCenter(bundle, epoch=T0, prompt_ms=lambda cmd: 0)
    center.login("li_na", T0)
    center.login("wang", later(1))
    center.start_call("c1", caller="1", dialed="10086", at=later(2))
    center.advance(later(30))
    rung = [r.agent for r in commands(center, a.RingAgent)]
    assert rung[:2] == ["li_na", "wang"]
    assert center.acd.agent_state("li_na")[0] == "not_ready"


def test_a_caller_who_hangs_up_in_the_queue_is_abandoned(bundle):
    center = CallCenter(bundle, epoch=T0, prompt_ms=lambda cmd: 0)
    center.start_call("c1", caller="1", dialed="10086", at=T0)
    center.caller_hangs_up("c1", later(40))
    visits = [r for r in center.take_rows() if isinstance(r, QueueVisit)]
    assert visits[-1].outcome == "abandoned" and visits[-1].left_at == later(40)
    assert center.acd.waiting("general") == []


def test_running_calls_keep_their_bundle_when_a_new_one_is_published(bundle, tmp_path):
    center = CallCenter(bundle, epoch=T0, prompt_ms=lambda cmd: 1000)
    center.start_call("old", caller="1", dialed="10086", at=T0)
    (tmp_path / "main.flow").write_text(SOURCE.replace('say "您好"', 'say "新版本"'), encoding="utf-8")
    center.publish(compile_project([tmp_path]).bundle)
    center.start_call("new", caller="2", dialed="10086", at=later(0.5))
    center.advance(later(5))
    said = {m.call_id: m.command.text for m in center.take_outbox() if isinstance(m.command, c.Say)}
    assert said == {"old": "您好", "new": "新版本"}
    assert center.calls["old"].record.bundle_hash != center.calls["new"].record.bundle_hash


def test_lookups_and_records_go_to_the_crm(tmp_path):
    (tmp_path / "main.flow").write_text("""
entity Customer {
    phone: phone
    name: text
}
entity Ticket {
    customer: ref Customer
    note: text
}
flow main {
    lookup customer = Customer where phone == caller else -> unknown
    create ticket = Ticket { customer = customer  note = "来电" }
    say "{customer.name},工单 {ticket.id}"
    hangup
    unknown: say "您好"
    hangup
}
""", encoding="utf-8")
    bundle = compile_project([tmp_path]).bundle
    crm = MemoryCrm(bundle, {"Customer": [{"id": 7, "phone": "13800138000", "name": "张三"}]})
    center = CallCenter(bundle, epoch=T0, crm=crm, prompt_ms=lambda cmd: 0)
    center.start_call("c1", caller="13800138000", flow="main", at=T0)
    center.advance(later(1))
    assert [cmd.text for cmd in commands(center, c.Say)] == ["张三,工单 1"]
    assert crm.created == [("Ticket", {"id": 1, "customer": 7, "note": "来电"})]


def test_ended_calls_can_be_forgotten_and_events_left_out(bundle):
    center = CallCenter(bundle, epoch=T0, prompt_ms=lambda cmd: 0, log_events=False)
    center.login("li_na", T0)
    center.start_call("c1", caller="1", dialed="10086", at=T0)
    center.start_call("c2", caller="2", dialed="10086", at=T0)
    center.caller_hangs_up("c2", later(5))
    assert center.forget_ended() == 1 and set(center.calls) == {"c1"}
    kinds = {type(r).__name__ for r in center.take_rows()}
    assert "CallEvent" not in kinds and {"Call", "QueueVisit", "AgentState"} <= kinds


VOICEMAIL = """
flow main {
    entry number "10086"
    answer
    menu {
        prompt "留言请按1,建议请按2"
        1 { voicemail "after_hours" callback }
        2 { voicemail "suggestions" }
    }
}
"""


@pytest.mark.parametrize("key, box, callback", [("1", "after_hours", True), ("2", "suggestions", False)])
def test_a_voicemail_is_kept_and_a_callback_owed_when_asked(tmp_path, database_url, key, box, callback):
    (tmp_path / "main.flow").write_text(VOICEMAIL, encoding="utf-8")
    center = CallCenter(compile_project([tmp_path]).bundle, epoch=T0, prompt_ms=lambda cmd: 1000)
    center.start_call("c1", caller="13800138000", dialed="10086", at=T0)
    center.advance(later(2))
    center.press("c1", key, later(3))
    assert [m.command.box for m in center.take_outbox() if isinstance(m.command, c.Voicemail)] == [box]
    log = EventLog(database_url)
    log.write(center.take_rows())
    (message,) = log.voicemails("c1")
    assert (message.box, message.caller, message.left_at) == (box, "13800138000", later(3))
    owed = [(t.number, t.call_id, t.reason, t.status) for t in log.callbacks()]
    assert owed == ([("13800138000", "c1", "voicemail after_hours", "open")] if callback else [])
