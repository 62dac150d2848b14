"""Faults on the real Asterisk: the runtime restarting with callers in a queue, a call whose edge
fails, the event socket dropping, Asterisk itself restarting.  No caller is lost in silence."""
from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from runtime import engine
from runtime.ari.lanes import SAVED_STATE
from hotline import HOTLINE, hotline, log_of, phones_for, run, waiting
from phones import Phones, until

pytestmark = pytest.mark.asterisk


async def queued(phones: Phones, call: str) -> bool:
    return bool(await phones.client.get_var(call, SAVED_STATE))


async def bridged_with(phones: Phones, call: str) -> list[str]:
    for bridge in await phones.client.list_bridges():
        if call in bridge.get("channels", []):
            return bridge["channels"]
    return []


def test_a_caller_waiting_in_a_queue_survives_a_runtime_restart(asterisk, tmp_path):
    async def scenario():
        async with phones_for(asterisk) as phones:
            async with hotline(asterisk, tmp_path, agents=()) as first:
                caller = await phones.call(HOTLINE, "13800138010")
                call = caller.runtime_id
                await until(waiting(first, call, engine.MENU, "hotline"), 60, "the main menu")
                await caller.press("0")
                await until(waiting(first, call, engine.QUEUE), 30, "the queue")
                await asyncio.sleep(0.5)
                assert await queued(phones, call)
            # The first runtime is gone (its socket closed); the caller still holds.
            await asyncio.sleep(1)
            assert not caller.ended.is_set()
            async with hotline(asterisk, tmp_path, agents=("li_na",)) as second:
                agent = await phones.agent_rings(30)
                await agent.answer()
                await until(waiting(second, call, engine.CONNECTED), 10, "the adopted caller connected")
                for _ in range(100):  # the bridge follows the answer by a few requests
                    parties = await bridged_with(phones, call)
                    if len(parties) == 2:
                        break
                    await asyncio.sleep(0.05)
                await caller.hang_up()
                await until(lambda: call not in second.lanes, 15, "the call to end")
            return call, parties

    call, parties = run(scenario())
    assert len(parties) == 2 and call in parties
    record = log_of(tmp_path).call(call)
    assert (record.queue, record.agent, record.end_reason) == ("general", "li_na", "caller_hangup")


def test_a_call_the_edge_cannot_carry_goes_to_the_fallback_not_silence(asterisk, tmp_path):
    async def scenario():
        async with hotline(asterisk, tmp_path) as edge, phones_for(asterisk) as phones:
            caller = await phones.call(HOTLINE, "13800138011")
            call = caller.runtime_id
            await until(waiting(edge, call, engine.MENU, "hotline"), 60, "the main menu")

            def broken(*args, **kwargs):
                raise RuntimeError("the engine broke")
            edge.center.press = broken
            await caller.press("1")
            await until(lambda: edge.faults == 1, 10, "the fault")
            await asyncio.sleep(0.5)
            channel = await phones.client.get_channel(call)
            await caller.hang_up()
            return call, channel

    call, channel = run(scenario())
    assert channel["dialplan"]["context"] == "flowdesk-fallback"
    record = log_of(tmp_path).call(call)
    assert record.end_reason == "error"


def test_the_event_socket_drops_and_the_runtime_catches_up(asterisk, tmp_path):
    async def scenario():
        async with hotline(asterisk, tmp_path, agents=()) as edge, phones_for(asterisk) as phones:
            caller = await phones.call(HOTLINE, "13800138012")
            call = caller.runtime_id
            await until(waiting(edge, call, engine.MENU, "hotline"), 60, "the main menu")
            await caller.press("0")
            await until(waiting(edge, call, engine.QUEUE), 30, "the queue")
            await edge.stream.websocket.close()  # as if the network failed
            await caller.hang_up()    # while nobody listens
            await until(lambda: edge.stream.connections >= 2, 15, "the reconnection")
            await until(lambda: call not in edge.lanes, 15, "the runtime to notice the caller left")
            second = await phones.call(HOTLINE, "13800138013")
            await until(waiting(edge, second.runtime_id, engine.MENU, "hotline"), 60, "a new call's menu")
            await second.hang_up()
            return call

    call = run(scenario())
    log = log_of(tmp_path)
    assert log.call(call).end_reason == "caller_hangup"
    visits = log.queue_visits(dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc), dt.datetime(2027, 1, 1, tzinfo=dt.timezone.utc))
    assert [v.outcome for v in visits if v.call_id == call] == ["abandoned"]


def test_asterisk_restarts_and_the_runtime_reconnects(asterisk, sandbox, tmp_path):
    async def scenario():
        async with hotline(asterisk, tmp_path) as edge:
            async with phones_for(asterisk) as phones:
                caller = await phones.call(HOTLINE, "13800138014")
                call = caller.runtime_id
                await until(waiting(edge, call, engine.MENU, "hotline"), 60, "the main menu")
            stopped = await asyncio.to_thread(sandbox, "stop")
            assert stopped.returncode == 0, stopped.stderr
            await until(lambda: not edge.stream.connected.is_set(), 10, "the drop to be seen")
            started = await asyncio.to_thread(sandbox, "start")
            assert started.returncode == 0, started.stderr
            await until(lambda: edge.stream.connected.is_set(), 30, "the reconnection")
            await until(lambda: call not in edge.lanes, 15, "the lost call to be ended")
            async with phones_for(asterisk) as phones:
                after = await phones.call(HOTLINE, "13800138015")
                await until(waiting(edge, after.runtime_id, engine.MENU, "hotline"), 60, "a new call's menu")
                await after.hang_up()
            return call

    call = run(scenario())
    assert log_of(tmp_path).call(call).end_reason == "caller_hangup"
