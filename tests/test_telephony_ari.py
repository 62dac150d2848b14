"""The desktop's telephony on Asterisk, without Asterisk: the edge tells the desktops what its call
centre asked for at every flush, agents' states act on the edge's centre, and what only a real
phone can do is refused with the reason.  (End to end: tests/asterisk/test_studio_ari.py.)"""
from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from aiohttp import web

from compiler import compile_project
from flowdesk.serve import ServeSettings
from runtime import acd_actions as a
from runtime.ari.adapter import AriEdge
from studio.telephony import Reserved, StateChanged, TelephonyError
from studio.telephony_ari import AsteriskCallCenter, asterisk_call_center

T0 = dt.datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
SOURCE = """
queue general {
    strategy longest_idle
    ring timeout 10s
    wrapup 30s
}
agent li_na { extension "8001" queues general }
agent wang { queues general }
flow main {
    entry number "10086"
    enqueue general
}
"""


@pytest.fixture
def bundle(tmp_path):
    (tmp_path / "main.flow").write_text(SOURCE, encoding="utf-8")
    return compile_project([tmp_path]).bundle


def settings(tmp_path: Path, ari: str = "http://127.0.0.1:9/ari") -> ServeSettings:
    return ServeSettings(ari=ari, user="flowdesk", password="secret", app="flowdesk-unit",
                         agent_dial="Local/{extension}@nowhere/n", outbound_dial="Local/{number}@nowhere",
                         media_dir=tmp_path / "media", media_dir_in_asterisk=str(tmp_path / "media"),
                         recordings=tmp_path / "recordings", records=None, agents="none")


def live_for(bundle, tmp_path, ari: str = "http://127.0.0.1:9/ari") -> AsteriskCallCenter:
    return asterisk_call_center(bundle, settings(tmp_path, ari), crm=None, project=tmp_path,
                                database_url=f"sqlite:///{tmp_path / 'calls.db'}", clock=lambda: T0)


def park_lanes(edge: AriEdge) -> None:
    """No Asterisk here: the calls' lanes are stopped before they send anything."""
    for lane in edge.lanes.values():
        lane.task.cancel()


def drain(queue):
    out = []
    while not queue.empty():
        out.append(queue.get_nowait())
    return out


def test_the_edge_hands_each_flush_to_its_watcher_after_the_lanes(bundle, tmp_path):
    async def scenario():
        edge = live_for(bundle, tmp_path).edge
        seen = []
        edge.on_media = lambda medias: seen.append([(type(m.command), m.call_id) for m in medias])
        edge.center.login("li_na", T0)
        edge.center.start_call("call-1", caller="13800138000", dialed="10086", at=T0)
        edge.flush()
        park_lanes(edge)
        assert (a.RingAgent, "call-1") in seen[-1]
        assert "call-1" in edge.lanes  # the ring went to the call's lane too
        edge.flush()
        assert seen[-1] == []  # a flush with nothing asked for still tells the watcher

        def broken(medias):
            raise RuntimeError("a desktop fault")
        edge.on_media = broken
        edge.center.start_call("call-2", caller="13900000000", dialed="10086", at=T0)
        edge.flush()  # the fault is logged; the call still gets its lane
        park_lanes(edge)
        assert "call-2" in edge.lanes
    asyncio.run(scenario())


def test_the_desktop_pops_when_the_ready_agent_is_rung_and_states_act_on_the_edges_centre(bundle, tmp_path):
    async def scenario():
        live = live_for(bundle, tmp_path)
        desk = live.hub.subscribe("li_na")
        live.login("li_na")
        assert live.edge.center.acd.agent_state("li_na") == ("not_ready", "login")
        live.edge.center.start_call("call-1", caller="13800138000", dialed="10086", at=T0)
        live.edge.flush()
        assert not [e for e in drain(desk) if isinstance(e, Reserved)]
        live.ready("li_na")
        park_lanes(live.edge)
        events = drain(desk)
        (reserved,) = [e for e in events if isinstance(e, Reserved)]
        assert (reserved.call_id, reserved.caller, reserved.queue) == ("call-1", "13800138000", "general")
        assert [e.state for e in events if isinstance(e, StateChanged)] == ["ringing"]  # ready, and at once rung
        assert live.state("li_na") == ("ringing", None)
    asyncio.run(scenario())


def test_not_ready_and_wrap_up_done_are_the_agents_and_reach_the_desktop(bundle, tmp_path):
    async def scenario():
        live = live_for(bundle, tmp_path)
        desk = live.hub.subscribe("wang")
        live.login("wang", ready=True)
        live.not_ready("wang", "lunch")
        assert live.edge.center.acd.agent_state("wang") == ("not_ready", "lunch")
        assert [(e.state, e.reason) for e in drain(desk) if isinstance(e, StateChanged)] == [
            ("ready", None), ("not_ready", "lunch")]
        with pytest.raises(TelephonyError, match="not in after-call work"):
            live.wrap_up_done("wang")
        live.logout("wang")
        assert live.state("wang") == ("logged_out", None)
    asyncio.run(scenario())


def test_what_only_a_real_phone_does_is_refused_with_the_reason(bundle, tmp_path):
    async def scenario():
        live = live_for(bundle, tmp_path)
        live.login("li_na", ready=True)
        with pytest.raises(TelephonyError, match=r"answer on your phone \(8001\)"):
            live.answer("li_na")
        with pytest.raises(TelephonyError, match="real phones"):
            live.place_call("13800138000", "10086", keys="0")
        with pytest.raises(TelephonyError, match="no call is ringing"):
            live.decline("li_na")
        with pytest.raises(TelephonyError, match="not on a call"):
            live.hangup("li_na")
        with pytest.raises(TelephonyError, match="no agent"):
            live.answer("nobody")
        # rung, but the ring has not reached the phone yet: nothing to hang up
        live.edge.center.start_call("call-1", caller="13800138000", dialed="10086", at=T0)
        live.edge.flush()
        park_lanes(live.edge)
        with pytest.raises(TelephonyError, match="not on this call yet"):
            live.decline("li_na")
        assert live.answers_on_desk is False
    asyncio.run(scenario())


def test_a_wrong_ari_password_stops_the_start_with_what_to_check(bundle, tmp_path):
    async def asterisk_refusing():
        async def refuse(request):
            return web.json_response({"message": "Authentication required"}, status=401)
        app = web.Application()
        app.router.add_get("/ari/asterisk/info", refuse)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        return runner, site._server.sockets[0].getsockname()[1]

    async def scenario():
        runner, port = await asterisk_refusing()
        try:
            live = live_for(bundle, tmp_path, f"http://127.0.0.1:{port}/ari")
            with pytest.raises(TelephonyError, match="refused us.*check the ARI user and password"):
                await live.start()
        finally:
            await runner.cleanup()
    asyncio.run(scenario())

