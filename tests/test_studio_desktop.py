"""The agent desktop in the studio: state buttons, the simulated phone, and the screen pop pushed
over Server-Sent Events, on the example project (the hotline) with its SQLite database."""
from __future__ import annotations

import contextlib
import datetime as dt
import re
import shutil
import threading
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
import uvicorn
from sqlmodel import Session, select
from starlette.testclient import TestClient

from runtime.crm.users import SYSTEM
from runtime.storage import CallbackTask, CallEvent
from studio import desktop
from studio.app import create_app

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "desk-password-1"
CUSTOMER_PHONE = "13800138000"
STRANGER_PHONE = "13911112222"
# The hotline puts people through from 8 to 22 in Shanghai: the studio's clock starts at ten
# in the morning and then runs at the real pace.
OPENING = dt.datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


def running_clock(start: dt.datetime = OPENING):
    began = time.monotonic()
    return lambda: start + dt.timedelta(seconds=time.monotonic() - began)


def studio_project(folder: Path) -> Path:
    """A copy of the example project (flows, schemas, settings) in `folder`."""
    for part in ("flows", "schemas"):
        shutil.copytree(ROOT / part, folder / part)
    shutil.copy(ROOT / "flowdesk.yaml", folder / "flowdesk.yaml")
    return folder


def desktop_app(folder: Path):
    """The studio with the desktop wired in, a customer with an open ticket, and agents' passwords."""
    project = studio_project(folder)
    app = create_app(project, db_url=f"sqlite:///{folder / 'studio.db'}", extra_routes=desktop.routes,
                     on_startup=[desktop.start_telephony], clock=running_clock())
    studio = app.state.studio
    customer = studio.store.create(SYSTEM, "Customer", {"name": "王小明", "phone": CUSTOMER_PHONE, "plan": "畅享 99"})
    studio.store.create(SYSTEM, "Ticket", {"customer": customer["id"], "caller_phone": CUSTOMER_PHONE,
                                           "category": "fault", "description": "宽带断线"})
    for agent in ("li_na", "wang_fang", "sun_li"):
        studio.accounts.set_password(agent, PASSWORD)
    return app


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def log_in(client, agent: str) -> str:
    """Logs `agent` in; returns the session's CSRF token."""
    page = client.get("/login")
    response = client.post("/login", data={"user": agent, "password": PASSWORD, "csrf_token": csrf_of(page.text),
                                           "next": "/desktop"}, follow_redirects=False)
    assert response.status_code == 303, response.text
    return csrf_of(client.get("/desktop").text)


def wait_for(condition, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError("timed out waiting")


@pytest.fixture
def app(tmp_path, monkeypatch):
    monkeypatch.setenv("FLOWDESK_SECRET", "desktop-tests")
    return desktop_app(tmp_path)


@pytest.fixture
def client(app):
    with TestClient(app) as client:
        yield client


def post(client, path, token, **data):
    return client.post(path, data=data, headers={"X-CSRF-Token": token})


def ring(client, app, token, caller=CUSTOMER_PHONE, agent="li_na") -> str:
    """A simulated caller presses 0 for a person; waits until `agent` is rung. The call's id."""
    assert post(client, "/desktop/call", token, caller=caller, dialed="4008001000", keys="0").status_code == 200
    live = app.state.telephony
    return wait_for(lambda: live.center.ringing.get(agent))


# ---------------------------------------------------------------------- the page and the state buttons

def test_the_desktop_needs_a_log_in(client):
    response = client.get("/desktop", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/login")


def test_opening_the_desktop_logs_the_agent_in_not_ready(client, app):
    log_in(client, "li_na")
    page = client.get("/desktop").text
    assert 'sse-connect="/desktop/events"' in page and "/static/htmx-sse.js" in page
    assert app.state.telephony.state("li_na") == ("not_ready", "login")
    assert "未就绪" in page


def test_state_changes_need_the_csrf_token(client, app):
    log_in(client, "li_na")
    refused = client.post("/desktop/state", data={"action": "ready"})
    assert refused.status_code == 403
    assert app.state.telephony.state("li_na")[0] == "not_ready"


def test_ready_and_not_ready_with_a_reason(client, app):
    token = log_in(client, "li_na")
    ready = post(client, "/desktop/state", token, action="ready")
    assert ready.status_code == 200 and 'data-state="ready"' in ready.text
    assert app.state.telephony.state("li_na") == ("ready", None)
    lunch = post(client, "/desktop/state", token, action="not_ready", reason="lunch")
    assert 'data-state="not_ready"' in lunch.text and "Lunch" in lunch.text
    assert app.state.telephony.state("li_na") == ("not_ready", "lunch")
    wrong = post(client, "/desktop/state", token, action="not_ready", reason="nap")
    assert wrong.status_code == 409 and "not a reason" in wrong.text
    assert post(client, "/desktop/state", token, action="fly").status_code == 400


def test_a_user_who_is_not_an_agent_has_no_desktop(client, app):
    # every studio user is an agent of the project; one with no queue sees it said
    log_in(client, "sun_li")
    assert "您不接听队列来电" in client.get("/desktop").text


# ---------------------------------------------------------------------- the simulated phone and the pop's actions

def test_a_call_answered_linked_ticket_wrap_up_code_callback_and_after_call_work(client, app):
    token = log_in(client, "li_na")
    live, studio = app.state.telephony, app.state.studio
    post(client, "/desktop/state", token, action="ready")
    call_id = ring(client, app, token)
    assert post(client, "/desktop/answer", token).status_code == 200
    assert live.state("li_na")[0] == "on_call"

    opened = post(client, "/desktop/ticket", token, call_id=call_id, caller_phone=CUSTOMER_PHONE, customer="1",
                  category="complaint", description="账单有误")
    assert opened.status_code == 200 and "已创建" in opened.text
    ticket_id = int(re.search(r"#(\d+)", opened.text).group(1))
    ticket = studio.store.get(SYSTEM, "Ticket", ticket_id)
    assert (ticket["call_id"], ticket["caller_phone"], ticket["customer"]) == (call_id, CUSTOMER_PHONE, 1)

    assert post(client, "/desktop/hangup", token).status_code == 200
    assert live.state("li_na")[0] == "wrap_up"
    state = client.get("/desktop").text
    assert "话后处理剩余" in state and "--from: 3" in state  # general's wrap-up is 30 s

    assert post(client, "/desktop/wrapup", token, call_id=call_id, code="ticket").status_code == 200
    when = (OPENING + dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    promised = post(client, "/desktop/callback", token, call_id=call_id, number=CUSTOMER_PHONE, when=when)
    assert promised.status_code == 200, promised.text
    with Session(studio.engine) as session:
        codes = session.exec(select(CallEvent).where(CallEvent.call_id == call_id, CallEvent.name == "WrapUpCode")).all()
        assert [e.data["code"] for e in codes] == ["ticket"]
        (task,) = session.exec(select(CallbackTask).where(CallbackTask.call_id == call_id)).all()
        assert (task.number, task.requested_by, task.status) == (CUSTOMER_PHONE, "li_na", "open")

    done = post(client, "/desktop/state", token, action="wrap_up_done")
    assert 'data-state="ready"' in done.text


def test_a_bad_ticket_or_callback_is_refused_with_what_is_wrong(client, app):
    token = log_in(client, "li_na")
    post(client, "/desktop/state", token, action="ready")
    call_id = ring(client, app, token)
    post(client, "/desktop/answer", token)
    no_category = post(client, "/desktop/ticket", token, call_id=call_id, caller_phone=CUSTOMER_PHONE)
    assert no_category.status_code == 400 and "类别" in no_category.text
    bad_time = post(client, "/desktop/callback", token, call_id=call_id, number=CUSTOMER_PHONE, when="tomorrow")
    assert bad_time.status_code == 400 and "不是日期时间" in bad_time.text
    past = post(client, "/desktop/callback", token, call_id=call_id, number=CUSTOMER_PHONE, when="2020-01-01T10:00")
    assert past.status_code == 400 and "in the past" in past.text
    bad_code = post(client, "/desktop/wrapup", token, call_id=call_id, code="nonsense")
    assert bad_code.status_code == 400 and "not a wrap-up code" in bad_code.text


def test_an_agent_acts_only_on_their_own_phone_and_calls(app):
    with TestClient(app) as li_na, TestClient(app) as wang_fang:
        li_token, wang_token = log_in(li_na, "li_na"), log_in(wang_fang, "wang_fang")
        post(wang_fang, "/desktop/state", wang_token, action="ready")
        call_id = ring(wang_fang, app, wang_token, agent="wang_fang")
        answered = post(li_na, "/desktop/answer", li_token)
        assert answered.status_code == 409 and "no call is ringing for you" in answered.text
        assert app.state.telephony.state("wang_fang")[0] == "ringing"
        for path, data in (("/desktop/wrapup", {"code": "resolved"}),
                           ("/desktop/ticket", {"category": "fault", "caller_phone": CUSTOMER_PHONE}),
                           ("/desktop/customer", {"name": "冒名", "phone": "13700000000"})):
            refused = post(li_na, path, li_token, call_id=call_id, **data)
            assert refused.status_code == 403 and "不是您的通话" in refused.text


def test_an_unknown_caller_gets_a_new_customer_form_that_keeps_what_was_typed(client, app):
    token = log_in(client, "li_na")
    post(client, "/desktop/state", token, action="ready")
    call_id = ring(client, app, token, caller=STRANGER_PHONE)
    user = app.state.studio.accounts.users["li_na"]
    pop = desktop.pop_html(_request(client, app), user, app.state.telephony.hub.desk("li_na").call)
    assert 'class="new-customer"' in pop and f'value="{STRANGER_PHONE}"' in pop
    invalid = post(client, "/desktop/customer", token, call_id=call_id, phone=STRANGER_PHONE, name="",
                   email="not-an-email")
    assert invalid.status_code == 200 and 'role="alert"' in invalid.text and 'value="not-an-email"' in invalid.text
    made = post(client, "/desktop/customer", token, call_id=call_id, phone=STRANGER_PHONE, name="李雷")
    assert "客户资料已创建" in made.text and "李雷" in made.text and 'class="customer-card"' in made.text


def _request(client, app):
    """A request of the logged-in agent, to render fragments the way the stream does."""
    from starlette.requests import Request
    return Request({"type": "http", "app": app, "session": {"user": "li_na"}, "headers": [], "method": "GET",
                    "path": "/"})


# ---------------------------------------------------------------------- the stream, over a real server

@contextlib.contextmanager
def serving(app):
    """The app on a real HTTP server on a free port (Server-Sent Events need one that streams)."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def sse_events(lines):
    """(event, data) pairs from a stream's lines."""
    event, data = None, []
    for line in lines:
        if line.startswith("event: "):
            event = line[len("event: "):]
        elif line.startswith("data: "):
            data.append(line[len("data: "):])
        elif line == "" and event:
            yield event, "\n".join(data)
            event, data = None, []


def test_the_screen_pop_is_pushed_at_once_with_the_record_recent_calls_and_open_tickets(app):
    with serving(app) as base, httpx.Client(base_url=base, timeout=10) as client:
        token = log_in(client, "li_na")
        with client.stream("GET", "/desktop/events") as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            events = sse_events(stream.iter_lines())
            assert next(events)[0] == "state"
            post(client, "/desktop/state", token, action="ready")
            post(client, "/desktop/call", token, caller=CUSTOMER_PHONE, dialed="4008001000", keys="0")
            pop = next(data for event, data in events if event == "pop")
            call = next(data for event, data in events if event == "call")
        assert "王小明" in pop and "畅享 99" in pop
        assert "宽带断线" not in pop and "故障" in pop  # the open ticket, by its category
        assert 'class="recent-calls"' in pop or "没有以前的来电" in pop
        assert "接听" in call and CUSTOMER_PHONE in call
        reserved_at = float(re.search(r'data-reserved-at="([0-9.]+)"', pop).group(1))
        assert abs(time.time() - reserved_at) < 10


def test_a_page_opened_during_a_call_gets_the_pop_too(app):
    with serving(app) as base, httpx.Client(base_url=base, timeout=10) as client:
        token = log_in(client, "li_na")
        post(client, "/desktop/state", token, action="ready")
        post(client, "/desktop/call", token, caller=CUSTOMER_PHONE, dialed="4008001000", keys="0")
        wait_for(lambda: app.state.telephony.center.ringing.get("li_na"))
        with client.stream("GET", "/desktop/events") as stream:
            events = sse_events(stream.iter_lines())
            assert [next(events)[0] for _ in range(3)] == ["state", "pop", "call"]
