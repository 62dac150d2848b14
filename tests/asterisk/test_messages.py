"""What a caller hears and leaves when nobody can take the call at once, on the real Asterisk:
a voicemail after hours (kept on disk, with a callback owed), the announcements of a long wait,
and a callback the queue offered, which an agent later makes."""
from __future__ import annotations

import array
import asyncio
import datetime as dt
import math
import wave
from zoneinfo import ZoneInfo

import pytest

from runtime import acd_actions as a
from runtime import engine
from hotline import HOTLINE, START, hotline, log_of, phones_for, run, waiting
from phones import until

pytestmark = pytest.mark.asterisk

SHANGHAI = ZoneInfo("Asia/Shanghai")
LATE_EVENING = dt.datetime(2026, 11, 23, 23, 0, tzinfo=SHANGHAI)  # after the 8:00-22:00 service hours


def loudness(path) -> float:
    """RMS of the 16-bit samples of a WAV file."""
    with wave.open(str(path)) as w:
        samples = array.array("h", w.readframes(w.getnframes()))
    return math.sqrt(sum(s * s for s in samples) / len(samples)) if samples else 0.0


def agent_leg_of(edge, call: str) -> str:
    return edge.lanes[call].agent_leg


def test_after_hours_a_caller_leaves_a_message_and_is_owed_a_callback(asterisk, tmp_path):
    async def scenario():
        async with hotline(asterisk, tmp_path, start=LATE_EVENING) as edge, phones_for(asterisk) as phones:
            caller = await phones.call(HOTLINE, "13800138111")
            call = caller.runtime_id
            await until(waiting(edge, call, engine.MENU, "hotline"), 60, "the main menu")
            await caller.press("0")
            await until(lambda: f"voicemail-{call}" in edge.lanes[call].recordings, 60, "the voicemail to record")
            assert edge.trace.heard(call, "现在是非人工服务时间")
            await asyncio.sleep(1)  # after the beep
            await phones.client.play(caller.id, f"{caller.id}-message", "sound:demo-congrats")
            await asyncio.sleep(4)
            # The caller stops talking (a playback holds back the keys sent on its channel) and ends
            # the message with #: the hotline hangs up.
            await phones.client.request("DELETE", f"/playbacks/{caller.id}-message")
            await caller.press("#")
            await asyncio.wait_for(caller.ended.wait(), 20)
            await until(lambda: call not in edge.lanes, 20, "the message to be saved")
        return call

    call = run(scenario())
    log = log_of(tmp_path)
    (message,) = log.voicemails(call)
    assert (message.box, message.caller) == ("after_hours", "13800138111")
    assert message.recording == str(tmp_path / "recordings" / f"voicemail-{call}.wav")
    assert loudness(message.recording) > 200, "the message is silent"
    # The whole call's recording stays on the call; the message does not replace it.
    assert log.call(call).recording == str(tmp_path / "recordings" / f"call-{call}.wav")
    assert log.call(call).end_reason == "voicemail"
    owed = [(task.number, task.call_id, task.reason) for task in log.callbacks()]
    assert owed == [("13800138111", call, "voicemail after_hours")]


def test_a_long_wait_is_announced_then_a_callback_is_offered_and_made(asterisk, tmp_path):
    """Nobody is free: the caller hears their place in line, then after five minutes (the clock
    skips them) keeps their place as a callback and hangs up; an agent who comes in is rung,
    answers, and the runtime dials the customer and connects the two."""
    customer_phones = {"outbound_dial": "Local/{number}@flowdesk-test-agents/n"}

    async def scenario():
        async with hotline(asterisk, tmp_path, agents=(), settings=customer_phones) as edge, \
                phones_for(asterisk) as phones:
            caller = await phones.call(HOTLINE, "13800138222")
            call = caller.runtime_id
            await until(waiting(edge, call, engine.MENU, "hotline"), 60, "the main menu")
            await caller.press("0")
            await until(waiting(edge, call, engine.QUEUE), 30, "the general queue")
            edge.now.skip(edge, 61)
            await until(lambda: any(isinstance(r, a.Announce) for r in edge.trace.requests[call]), 10,
                        "the announcement of the caller's place")
            (announced,) = [r for r in edge.trace.requests[call] if isinstance(r, a.Announce)]
            assert announced.position == 1
            await until(lambda: edge.lanes[call].playbacks == {} and edge.lanes[call].moh, 30,
                        "the announcement to end and the music to come back")
            edge.now.skip(edge, 240)  # five minutes in all: `max wait 5m then callback`
            await until(lambda: edge.center.calls[call].visit.outcome == "callback", 10, "the callback")
            await caller.hang_up()
            await asyncio.sleep(1)
            assert edge.center.acd.call_state(call) is not None, "the callback lost its place"
            edge.center.login("li_na", edge.now())
            edge.flush()
            agent = await phones.agent_rings(30)
            assert agent.extension == "8001"
            await agent.answer()
            customer = await phones.agent_rings(30)  # the runtime dials the caller back
            assert customer.extension == "13800138222"
            await phones.agent_client.answer(customer.id)
            await until(lambda: edge.lanes.get(call) is not None and edge.lanes[call].bridge is not None, 20,
                        "the agent and the customer to be bridged")
            bridge_id = edge.lanes[call].bridge
            for _ in range(100):  # the two are added by requests that follow the bridge's creation
                bridge = await phones.client.request("GET", f"/bridges/{bridge_id}")
                if len(bridge["channels"]) == 2:
                    break
                await asyncio.sleep(0.1)
            assert sorted(bridge["channels"]) == sorted([agent_leg_of(edge, call), f"{call}-callback"])
            await agent.hang_up()
            await asyncio.wait_for(customer.ended.wait(), 20)
        return call

    call = run(scenario(), timeout=300)
    visits = log_of(tmp_path).queue_visits(START, START + dt.timedelta(hours=1))
    assert [(v.call_id, v.queue, v.outcome) for v in visits][:1] == [(call, "general", "callback")]
