"""The example hotline on the real Asterisk: callers dial it, hear it, press keys, wait in queues
and talk to agents, through Local channels (tests/asterisk/phones.py); the runtime is the real
ARI edge (runtime/ari), and what happened is read back from its event log."""
from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from aiohttp import web

from runtime import engine
from runtime.kpis import queue_kpis
from hotline import HOTLINE, hotline, log_of, phones_for, run, state, waiting
from phones import until

pytestmark = pytest.mark.asterisk

CUSTOMERS = {
    "AccountManager": [{"id": 1, "name": "张伟", "phone": "13700000001", "agent": "zhang_wei"}],
    "Customer": [{"id": 1, "name": "王总", "phone": "13900000001", "tier": "platinum", "manager": 1,
                  "status": "active"}],
}


async def billing_system(port: int = 8089):
    """The billing API of the test environment (env.BILLING_API), answering balance inquiries."""
    seen = []

    async def balance(request: web.Request) -> web.Response:
        seen.append((request.match_info["number"], request.headers.get("Authorization")))
        return web.json_response({"balance": "58.20", "due": "30.00", "due_date": "2026-12-05"})

    app = web.Application()
    app.router.add_get("/v1/accounts/{number}/balance", balance)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, seen


def test_a_caller_checks_a_balance_then_talks_to_an_agent(asterisk, tmp_path):
    async def scenario():
        billing, seen = await billing_system()
        async with hotline(asterisk, tmp_path) as edge, phones_for(asterisk) as phones:
            caller = await phones.call(HOTLINE, "13800138000")
            call = caller.runtime_id
            await asyncio.wait_for(caller.answered.wait(), 10)
            await caller.record("heard-" + call)
            # The jingle and the welcome played to their end before the menu began.
            await until(waiting(edge, call, engine.MENU, "hotline"), 60, "the main menu")
            assert edge.trace.heard(call, "您好,欢迎致电星海通信客服热线")
            await caller.press("1")
            await until(waiting(edge, call, engine.MENU, "balance_inquiry"), 30, "the balance menu")
            await caller.press("2")
            await until(waiting(edge, call, engine.COLLECT, "balance_inquiry"), 30, "the number prompt")
            await caller.press("13900139000#")
            await until(lambda: edge.trace.heard(call, "当前余额为 58.20 元"), 30, "the balance")
            await until(waiting(edge, call, engine.MENU, "hotline"), 60, "the after-service menu")
            await caller.press("0")
            agent = await phones.agent_rings(60)
            assert agent.extension == "8001"  # li_na, the one agent logged in
            await agent.answer()
            await until(waiting(edge, call, engine.CONNECTED), 10, "the caller connected to the agent")
            await asyncio.sleep(2)  # they talk
            await agent.hang_up()
            await until(waiting(edge, call, engine.MENU, "csat"), 30, "the survey")
            await caller.press("1")
            await asyncio.wait_for(caller.ended.wait(), 30)  # the survey thanks and hangs up
            await until(lambda: call not in edge.lanes, 15, "the call's recording to be saved")
            loudness = await phones.heard("heard-" + call)
        await billing.cleanup()
        return call, seen, loudness

    call, seen, loudness = run(scenario())
    assert seen == [("13900139000", "Bearer token-BILLING_TOKEN")]
    assert loudness > 200, "the caller heard silence"
    log = log_of(tmp_path)
    record = log.call(call)
    assert (record.caller, record.dialed, record.flow) == ("13800138000", HOTLINE, "hotline")
    assert (record.queue, record.agent, record.end_reason) == ("general", "li_na", "hangup")
    assert Path(record.recording).is_file() and Path(record.recording).stat().st_size > 20_000
    names = [event.name for event in log.events(call)]
    assert names.count("DigitPressed") == 1 + 1 + 12 + 1 + 1
    assert "HttpReply" in names and "AgentAnswered" in names and "AgentLeft" in names
    visits = log.queue_visits(dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc), dt.datetime(2027, 1, 1, tzinfo=dt.timezone.utc))
    [visit] = [v for v in visits if v.call_id == call]
    assert (visit.queue, visit.outcome, visit.agent) == ("general", "answered", "li_na")
    [kpis] = queue_kpis(visits, "day", ZoneInfo("Asia/Shanghai"), {"general": 20})
    assert (kpis.offered, kpis.answered, kpis.abandoned) == (1, 1, 0)
    assert kpis.handle_times and kpis.handle_times[0] >= 2 + 30  # talk plus the queue's 30 s wrap-up


def test_a_platinum_customer_reaches_their_account_manager_first(asterisk, tmp_path):
    async def scenario():
        async with hotline(asterisk, tmp_path, agents=("li_na", "zhang_wei"), records=CUSTOMERS) as edge, \
                phones_for(asterisk) as phones:
            caller = await phones.call(HOTLINE, "13900000001")
            agent = await phones.agent_rings(60)
            assert agent.extension == "8101"  # zhang_wei, the account manager, not li_na
            assert edge.trace.heard(caller.runtime_id, "尊敬的白金客户王总")
            await agent.answer()
            await until(waiting(edge, caller.runtime_id, engine.CONNECTED), 10, "the caller connected")
            await caller.hang_up()
            await asyncio.wait_for(agent.ended.wait(), 10)  # the agent's phone is hung up too
            await until(lambda: caller.runtime_id not in edge.lanes, 15, "the call to end")
            return caller.runtime_id

    call = run(scenario())
    record = log_of(tmp_path).call(call)
    assert (record.agent, record.end_reason) == ("zhang_wei", "caller_hangup")


def test_a_caller_who_hangs_up_in_the_queue_is_counted_abandoned(asterisk, tmp_path):
    async def scenario():
        async with hotline(asterisk, tmp_path, agents=()) as edge, phones_for(asterisk) as phones:
            caller = await phones.call(HOTLINE, "13800138001")
            call = caller.runtime_id
            await until(waiting(edge, call, engine.MENU, "hotline"), 60, "the main menu")
            await caller.press("0")
            await until(waiting(edge, call, engine.QUEUE), 30, "the queue")
            channel = await phones.client.get_channel(call)
            await asyncio.sleep(6)  # longer than a short abandon
            await caller.hang_up()
            await until(lambda: call not in edge.lanes, 15, "the call to end")
            return call, channel

    call, channel = run(scenario())
    assert channel["state"] == "Up"
    log = log_of(tmp_path)
    assert log.call(call).end_reason == "caller_hangup"
    visits = [v for v in log.queue_visits(dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
                                          dt.datetime(2027, 1, 1, tzinfo=dt.timezone.utc)) if v.call_id == call]
    assert [(v.queue, v.outcome) for v in visits] == [("general", "abandoned")]
    [kpis] = queue_kpis(visits, "day", ZoneInfo("Asia/Shanghai"), {"general": 20})
    assert (kpis.offered, kpis.answered, kpis.abandoned) == (1, 0, 1)


def test_the_english_line_is_a_blind_transfer_into_the_dialplan(asterisk, tmp_path):
    async def scenario():
        async with hotline(asterisk, tmp_path) as edge, phones_for(asterisk) as phones:
            caller = await phones.call(HOTLINE, "13800138002")
            call = caller.runtime_id
            await until(waiting(edge, call, engine.MENU, "hotline"), 60, "the main menu")
            await caller.press("9")
            await until(lambda: call not in edge.lanes or state(edge, call) is None
                        or state(edge, call).wait == engine.ENDED, 15, "the transfer")
            await asyncio.sleep(0.5)
            channel = await phones.client.get_channel(call)
            await caller.hang_up()
            return call, channel

    call, channel = run(scenario())
    assert channel["dialplan"]["context"] == "flowdesk-transfer"
    assert channel["dialplan"]["exten"] == "4008001009"  # env.ENGLISH_LINE
    assert log_of(tmp_path).call(call).end_reason == "transferred"
