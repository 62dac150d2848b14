"""The studio's agent desktop on the sandbox Asterisk: a real caller dials the hotline and presses
0, the ready agent's desktop pops with the caller's number and the customer's name from the
studio's CRM the moment the ACD rings the agent's phone, shows the call connected when the phone
is answered, and after-call work when it is hung up.  Meanwhile a supervisor's wallboard is
pushed the agent ringing, then on the call, then the call answered in today's figures.  The studio is the real app on a real
uvicorn server; the call centre is `studio.telephony_ari` on the ARI application `flowdesk`."""
from __future__ import annotations

import asyncio
import re
import shutil
import time
from pathlib import Path

import httpx
import pytest
import uvicorn

from flowdesk.serve import ServeSettings
from runtime import engine
from runtime.crm.users import SYSTEM
from studio import desktop
from studio.app import create_app
from studio.telephony_ari import AsteriskCallCenter, start_ari
from hotline import HOTLINE, PROJECT, Clock, phones_for, run
from phones import AGENT_DIAL, until

pytestmark = pytest.mark.asterisk

PASSWORD = "desk-password-1"
CUSTOMER_PHONE = "13800138077"


def studio_app(asterisk, tmp_path: Path):
    """The example project's studio on its own SQLite database, its desktop on the sandbox."""
    project = tmp_path / "project"
    for part in ("flows", "schemas", "sounds"):
        shutil.copytree(PROJECT / part, project / part)
    shutil.copy(PROJECT / "flowdesk.yaml", project / "flowdesk.yaml")
    settings = ServeSettings(
        ari=asterisk.url, user=asterisk.user, password=asterisk.password, app="flowdesk", agent_dial=AGENT_DIAL,
        outbound_dial="Local/{number}@flowdesk-transfer", media_dir=asterisk.root / "var/lib/flowdesk/media",
        media_dir_in_asterisk="/var/lib/flowdesk/media", recordings=tmp_path / "recordings", records=None,
        agents="none")
    app = create_app(project, db_url=f"sqlite:///{tmp_path / 'studio.db'}", extra_routes=desktop.routes,
                     on_startup=[asterisk_telephony(settings)], clock=Clock())
    app.state.ari = settings  # where `flowdesk studio --telephony asterisk` keeps them
    studio = app.state.studio
    studio.store.create(SYSTEM, "Customer", {"name": "王小明", "phone": CUSTOMER_PHONE, "plan": "畅享 99"})
    for user in ("li_na", "zhou_qiang"):
        studio.accounts.set_password(user, PASSWORD)
    return app


def asterisk_telephony(settings: ServeSettings):
    """A start-up hook: `start_ari`, unless the desktop's own hook already started it from `app.state.ari`."""
    async def start(app) -> None:
        if getattr(app.state, "telephony", None) is None:
            await start_ari(app, settings)
    return start


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


async def log_in(client: httpx.AsyncClient, user: str, page: str = "/desktop") -> str:
    form = await client.get("/login")
    response = await client.post("/login", data={"user": user, "password": PASSWORD, "csrf_token": csrf_of(form.text),
                                                 "next": page})
    assert response.status_code == 303, response.text
    return csrf_of((await client.get(page)).text)


async def read_events(client: httpx.AsyncClient, inbox: asyncio.Queue, path: str = "/desktop/events") -> None:
    """A page's Server-Sent Events as (event, data, time received)."""
    async with client.stream("GET", path, timeout=httpx.Timeout(10, read=None)) as stream:
        event, data = None, []
        async for line in stream.aiter_lines():
            if line.startswith("event: "):
                event = line[len("event: "):]
            elif line.startswith("data: "):
                data.append(line[len("data: "):])
            elif line == "" and event:
                inbox.put_nowait((event, "\n".join(data), time.time()))
                event, data = None, []


async def next_event(inbox: asyncio.Queue, kind: str, has: str = "", timeout: float = 10) -> tuple[str, float]:
    """The next `kind` event whose HTML contains `has`: (its HTML, when it arrived)."""
    async def wanted():
        while True:
            event, data, at = await inbox.get()
            if event == kind and has in data:
                return data, at
    return await asyncio.wait_for(wanted(), timeout)


def general(board: str, column: str) -> int:
    """A figure of the general queue's line on a pushed wallboard."""
    line = re.search(r'<tr data-queue="general"[^>]*>(.*?)</tr>', board, re.S).group(1)
    return int(re.search(rf'class="{column}[^"]*" data-value="(\d+)"', line).group(1))


async def next_board(inbox: asyncio.Queue, wanted, timeout: float = 10) -> str:
    """The next wallboard pushed for which `wanted(board)` holds."""
    async def find():
        while True:
            event, data, _ = await inbox.get()
            if event == "board" and wanted(data):
                return data
    return await asyncio.wait_for(find(), timeout)


def test_a_real_call_pops_the_desktop_connects_and_ends_in_after_call_work(asterisk, tmp_path, monkeypatch):
    monkeypatch.setenv("FLOWDESK_SECRET", "studio-ari-tests")
    app = studio_app(asterisk, tmp_path)

    async def scenario():
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on",
                                               timeout_graceful_shutdown=2))
        serving = asyncio.create_task(server.serve())
        await until(lambda: server.started or serving.done(), 60, "the studio to start")
        assert server.started, serving.exception()
        live = app.state.telephony
        port = server.servers[0].sockets[0].getsockname()[1]
        inbox: asyncio.Queue = asyncio.Queue()
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client, \
                    httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as supervisor, \
                    phones_for(asterisk) as phones:
                token = await log_in(client, "li_na")
                reader = asyncio.create_task(read_events(client, inbox))
                await log_in(supervisor, "zhou_qiang", "/wallboard")
                boards: asyncio.Queue = asyncio.Queue()
                watcher = asyncio.create_task(read_events(supervisor, boards, "/wallboard/events"))
                await next_event(inbox, "state", 'data-state="not_ready"')
                ready = await client.post("/desktop/state", data={"action": "ready"}, headers={"X-CSRF-Token": token})
                assert 'data-state="ready"' in ready.text
                refused = await client.post("/desktop/answer", headers={"X-CSRF-Token": token})
                assert refused.status_code == 409 and "answer on your phone (8001)" in refused.text

                caller = await phones.call(HOTLINE, CUSTOMER_PHONE)
                call = caller.runtime_id
                await until(lambda: call in live.center.calls and live.center.calls[call].state.wait == engine.MENU,
                            30, "the main menu")
                await caller.press("0")
                phone = await phones.agent_rings(30)
                rung_at = time.time()
                pop, popped_at = await next_event(inbox, "pop", CUSTOMER_PHONE)
                ringing, _ = await next_event(inbox, "call", 'class="call ringing"')
                assert isinstance(live, AsteriskCallCenter)
                assert popped_at - rung_at < 1.0, "the pop came late"
                assert "王小明" in pop and "畅享 99" in pop  # the customer, from the studio's CRM
                assert CUSTOMER_PHONE in ringing and f'data-call-id="{call}"' in ringing
                assert 'id="answer"' not in ringing and "请在话机上接听" in ringing  # the phone answers, not the page

                await next_board(boards, lambda b: general(b, "agents-ringing") == 1)

                await phone.answer()
                on_call = await next_board(boards, lambda b: general(b, "agents-on_call") == 1)
                assert general(on_call, "waiting") == 0 and general(on_call, "agents-ringing") == 0
                assert general(on_call, "answered") == 1
                talking, _ = await next_event(inbox, "call", 'class="call talking"')
                assert CUSTOMER_PHONE in talking
                assert live.state("li_na") == ("on_call", None)

                await phone.hang_up()
                ended, _ = await next_event(inbox, "call", 'class="call ended"')
                wrap_up, _ = await next_event(inbox, "state", 'data-state="wrap_up"')
                assert f'data-call-id="{call}"' in ended and "话后处理剩余" in wrap_up
                await caller.hang_up()
                await until(lambda: call not in live.edge.lanes, 15, "the call to end")
                for task in (reader, watcher):
                    task.cancel()
                await asyncio.gather(reader, watcher, return_exceptions=True)
        finally:
            server.should_exit = True
            await asyncio.wait_for(serving, 15)
            await live.stop()
        return call

    call = run(scenario(), 90)
    log = app.state.telephony.event_log
    record = log.call(call)
    assert (record.caller, record.queue, record.agent) == (CUSTOMER_PHONE, "general", "li_na")
