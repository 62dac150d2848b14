"""The studio's live call centre: simulated calls reach agents' desktops as events, on a clock."""
from __future__ import annotations

import asyncio
import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from compiler import compile_project
from runtime.storage import EventLog
from studio.telephony import (CallbackDue, Connected, Ended, LiveCallCenter, Reserved, StateChanged,
                              TelephonyError, Withdrawn, WrapUp)

SH = ZoneInfo("Asia/Shanghai")
T0 = dt.datetime(2026, 11, 23, 10, 0, tzinfo=SH)
SOURCE = """
queue general {
    strategy longest_idle
    ring timeout 10s
    wrapup 30s
}
queue sales {
    strategy longest_idle
    ring timeout 10s
}
agent li_na { queues general }
agent wang { queues general }
agent zhou { queues sales }
flow main {
    entry number "10086"
    answer
    say "您好"
    menu {
        prompt "咨询请按1,办理请按2"
        timeout 5s
        1 "咨询" {
            enqueue general
        }
        2 "办理" {
            enqueue sales
        }
    }
}
"""


class Clock:
    def __init__(self):
        self.now = T0

    def __call__(self):
        return self.now

    def tick(self, seconds: float):
        self.now += dt.timedelta(seconds=seconds)


@pytest.fixture
def bundle(tmp_path):
    (tmp_path / "main.flow").write_text(SOURCE, encoding="utf-8")
    return compile_project([tmp_path]).bundle


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def live(bundle, clock):
    return LiveCallCenter(bundle, clock=clock)


def drain(queue):
    out = []
    while not queue.empty():
        out.append(queue.get_nowait())
    return out


def of(kind, events):
    return [e for e in events if isinstance(e, kind)]


def run_for(live, clock, seconds):
    """Let simulated time pass in 100 ms steps, as the clock task would."""
    for _ in range(int(seconds * 10)):
        clock.tick(0.1)
        live.step()


def test_a_placed_call_reaches_the_queue_and_the_ready_agent_gets_reserved_with_the_caller(live, clock):
    desk = live.hub.subscribe("li_na")
    live.login("li_na", ready=True)
    call_id = live.place_call("13800138000", "10086", keys="1")
    assert not of(Reserved, drain(desk))  # the greeting and the menu prompt play first
    run_for(live, clock, 1)
    (reserved,) = of(Reserved, drain(desk))
    assert (reserved.call_id, reserved.caller, reserved.queue) == (call_id, "13800138000", "general")
    assert live.center.ringing == {"li_na": call_id}
    assert live.state("li_na") == ("ringing", None)


def test_the_keys_choose_the_queue(live, clock):
    desk = live.hub.subscribe("zhou")
    live.login("zhou", ready=True)
    live.place_call("13900000000", "10086", keys="2")
    run_for(live, clock, 1)
    (reserved,) = of(Reserved, drain(desk))
    assert reserved.queue == "sales"


def test_a_not_ready_agent_gets_nothing_until_ready(live, clock):
    desk = live.hub.subscribe("li_na")
    live.login("li_na")
    live.not_ready("li_na", "lunch")
    live.place_call("13800138000", "10086", keys="1")
    run_for(live, clock, 3)
    events = drain(desk)
    assert not of(Reserved, events)
    assert of(StateChanged, events)[-1] == StateChanged("not_ready", "lunch", of(StateChanged, events)[-1].at)
    live.ready("li_na")
    (reserved,) = of(Reserved, drain(desk))
    assert reserved.waited_ms >= 2000  # it waited in line while li_na was at lunch


def test_only_the_agent_rung_hears_of_the_call(live, clock):
    desks = {name: live.hub.subscribe(name) for name in ("li_na", "wang")}
    live.login("li_na", ready=True)
    live.login("wang")
    live.place_call("13800138000", "10086", keys="1")
    run_for(live, clock, 1)
    assert len(of(Reserved, drain(desks["li_na"]))) == 1
    assert not of(Reserved, drain(desks["wang"]))


def test_answer_talk_hang_up_then_after_call_work_for_the_queues_wrapup(live, clock):
    desk = live.hub.subscribe("li_na")
    live.login("li_na", ready=True)
    call_id = live.place_call("13800138000", "10086", keys="1")
    run_for(live, clock, 1)
    live.answer("li_na")
    events = drain(desk)
    assert of(Connected, events) == [Connected(call_id, "13800138000", of(Connected, events)[0].at)]
    assert live.state("li_na")[0] == "on_call"
    clock.tick(60)
    hung_up_at = clock.now
    live.hangup("li_na")
    events = drain(desk)
    assert [e.call_id for e in of(Ended, events)] == [call_id]
    (wrapup,) = of(WrapUp, events)
    assert wrapup == WrapUp(call_id, hung_up_at + dt.timedelta(seconds=30))
    run_for(live, clock, 29.5)
    assert live.state("li_na")[0] == "wrap_up"
    run_for(live, clock, 1)
    assert live.state("li_na")[0] == "ready"
    assert of(StateChanged, drain(desk))[-1].state == "ready"


def test_wrap_up_done_makes_the_agent_ready_at_once(live, clock):
    live.login("li_na", ready=True)
    live.place_call("13800138000", "10086", keys="1")
    run_for(live, clock, 1)
    live.answer("li_na")
    live.hangup("li_na")
    live.wrap_up_done("li_na")
    assert live.state("li_na") == ("ready", None)


def test_a_break_asked_for_during_the_call_starts_after_the_wrap_up(live, clock):
    live.login("li_na", ready=True)
    live.place_call("13800138000", "10086", keys="1")
    run_for(live, clock, 1)
    live.answer("li_na")
    live.not_ready("li_na", "break")
    assert live.state("li_na")[0] == "on_call"
    live.hangup("li_na")
    run_for(live, clock, 31)
    assert live.state("li_na") == ("not_ready", "break")


def test_the_caller_hanging_up_while_ringing_withdraws_the_pop(live, clock):
    desk = live.hub.subscribe("li_na")
    live.login("li_na", ready=True)
    call_id = live.place_call("13800138000", "10086", keys="1")
    run_for(live, clock, 1)
    live.caller_hangs_up(call_id)
    events = drain(desk)
    assert [e.call_id for e in of(Withdrawn, events)] == [call_id]
    assert live.state("li_na")[0] == "ready"


def test_ring_no_answer_withdraws_and_puts_the_agent_not_ready(live, clock):
    desk = live.hub.subscribe("li_na")
    live.login("li_na", ready=True)
    live.place_call("13800138000", "10086", keys="1")
    run_for(live, clock, 12)
    assert of(Withdrawn, drain(desk))
    assert live.state("li_na") == ("not_ready", "no answer")


def test_actions_that_do_not_fit_are_refused_with_a_reason(live, clock):
    live.login("li_na", ready=True)
    with pytest.raises(TelephonyError, match="no call is ringing"):
        live.answer("li_na")
    with pytest.raises(TelephonyError, match="not on a call"):
        live.hangup("li_na")
    with pytest.raises(TelephonyError, match="not in after-call work"):
        live.wrap_up_done("li_na")
    with pytest.raises(TelephonyError, match="not a reason"):
        live.not_ready("li_na", "nap")
    with pytest.raises(TelephonyError, match="not logged in"):
        live.ready("wang")
    with pytest.raises(TelephonyError, match="no agent"):
        live.ready("nobody")
    with pytest.raises(TelephonyError, match="no flow answers '999'"):
        live.place_call("13800138000", "999")
    with pytest.raises(TelephonyError, match="not a telephone key"):
        live.place_call("13800138000", "10086", keys="1x")


def test_a_scheduled_callback_reminds_the_agent_when_due(live, clock):
    desk = live.hub.subscribe("li_na")
    live.login("li_na")
    live.schedule_callback("li_na", "13800138000", clock.now + dt.timedelta(minutes=5))
    run_for(live, clock, 299)
    assert not of(CallbackDue, drain(desk))
    run_for(live, clock, 2)
    (due,) = of(CallbackDue, drain(desk))
    assert due.number == "13800138000"
    with pytest.raises(TelephonyError, match="in the past"):
        live.schedule_callback("li_na", "13800138000", clock.now - dt.timedelta(minutes=1))
    with pytest.raises(TelephonyError, match="not a telephone number"):
        live.schedule_callback("li_na", "call me", clock.now + dt.timedelta(minutes=1))


def test_the_wrap_up_code_joins_the_calls_history_and_a_promised_callback_is_a_task(bundle, clock, database_url):
    log = EventLog(database_url)
    live = LiveCallCenter(bundle, clock=clock, event_log=log)
    live.login("li_na", ready=True)
    call_id = live.place_call("13800138000", "10086", keys="1")
    run_for(live, clock, 1)
    live.answer("li_na")
    live.hangup("li_na")
    live.record_wrapup("li_na", call_id, "resolved")
    live.schedule_callback("li_na", "13800138000", clock.now + dt.timedelta(hours=1), call_id)
    events = log.events(call_id)
    assert (events[-1].name, events[-1].data) == ("WrapUpCode", {"agent": "li_na", "code": "resolved"})
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    (task,) = log.callbacks("open")
    assert (task.number, task.call_id, task.requested_by) == ("13800138000", call_id, "li_na")
    assert task.due_at.replace(tzinfo=task.due_at.tzinfo or dt.timezone.utc) == clock.now + dt.timedelta(hours=1)
    restarted = LiveCallCenter(bundle, clock=clock, event_log=log)
    assert restarted.load_callbacks() == 1
    assert restarted.callbacks[0].agent == "li_na"
    assert log.call(call_id).caller == "13800138000"
    with pytest.raises(TelephonyError, match="not a wrap-up code"):
        live.record_wrapup("li_na", call_id, "whatever")
    with pytest.raises(TelephonyError, match="no call 'nope'"):
        live.record_wrapup("li_na", "nope", "resolved")


def test_on_the_wall_clock_the_pop_arrives_without_anyone_stepping(bundle):
    async def scenario():
        live = LiveCallCenter(bundle, prompt_ms=lambda command: 20)
        await live.start()
        try:
            desk = live.hub.subscribe("li_na")
            live.login("li_na", ready=True)
            call_id = live.place_call("13800138000", "10086", keys="1")
            while True:
                event = await asyncio.wait_for(desk.get(), timeout=5)
                if isinstance(event, Reserved):
                    return call_id, event
        finally:
            await live.stop()

    call_id, reserved = asyncio.run(scenario())
    assert (reserved.call_id, reserved.caller) == (call_id, "13800138000")
