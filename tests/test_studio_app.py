"""The studio as one product: the desktop and its telephony started with the server and stopped with
it (last event-log rows written), the SLA tick at start and every minute, notices marked read when
shown, and the navigation to each person's desk.  The example project on SQLite."""
from __future__ import annotations

import datetime as dt
import logging
import re
import shutil
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy
from sqlmodel import Session

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

from starlette.testclient import TestClient  # noqa: E402

from runtime.crm import notifications  # noqa: E402
from runtime.crm.users import SYSTEM  # noqa: E402
from runtime.storage import Call  # noqa: E402
from studio.app import create_app  # noqa: E402
from studio.telephony import LiveCallCenter  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
PASSWORD = "correct horse"
SHANGHAI = ZoneInfo("Asia/Shanghai")
# Monday 23 November 2026, 10:00 in Shanghai: the office (SLA hours) opened an hour ago.
MONDAY_10 = dt.datetime(2026, 11, 23, 10, 0, tzinfo=SHANGHAI)


def local(day: int, hour: int, minute: int = 0) -> dt.datetime:
    """A moment of November 2026 in Shanghai."""
    return dt.datetime(2026, 11, day, hour, minute, tzinfo=SHANGHAI)


class Clock:
    """The studio's "now", set by the test."""

    def __init__(self, now: dt.datetime):
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


def project(folder: Path) -> Path:
    for name in ("flows", "schemas"):
        shutil.copytree(REPO / name, folder / name, ignore=shutil.ignore_patterns("*.test.yaml"))
    shutil.copy(REPO / "flowdesk.yaml", folder / "flowdesk.yaml")
    return folder


def studio_app(folder: Path, clock: Clock, **options):
    """The studio for a copy of the example project, its own SQLite file, every agent's password PASSWORD."""
    app = create_app(project(folder / "project"), db_url=f"sqlite:///{folder / 'studio.db'}", clock=clock, **options)
    for name in app.state.studio.accounts.users:
        app.state.studio.accounts.set_password(name, PASSWORD)
    return app


def log_in(client: TestClient, name: str) -> None:
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    response = client.post("/login", data={"user": name, "password": PASSWORD, "csrf_token": token, "next": "/crm"},
                           follow_redirects=False)
    assert response.status_code == 303, response.text


def ticket(store, at: dt.datetime, clock: Clock, **fields) -> dict:
    """A ticket created at `at` (the clock is set there, and left there)."""
    clock.now = at
    return store.create(SYSTEM, "Ticket", {"caller_phone": "13800138003", "category": "complaint",
                                           "description": "宽带掉线", **fields})


@pytest.fixture(autouse=True)
def secret(monkeypatch):
    monkeypatch.setenv("FLOWDESK_SECRET", "studio-app-tests")


def notices(app, agent: str) -> list[notifications.Notification]:
    with app.state.studio.engine.connect() as connection:
        return notifications.for_agent(connection, agent)


# ---------------------------------------------------------------------- the SLA tick

def test_starting_the_studio_with_an_overdue_ticket_escalates_it_to_the_team_leads(tmp_path):
    clock = Clock(MONDAY_10)
    app = studio_app(tmp_path, clock)
    overdue = ticket(app.state.studio.store, local(20, 9), clock)   # Friday 09:00: 4 office hours were due at 13:00
    clock.now = MONDAY_10
    assert notices(app, "zhao_min") == []
    with TestClient(app):
        escalations = notices(app, "zhao_min")
        assert [n.record_id for n in escalations] == [overdue["id"]]
        assert "first_response has used 250% of 4h, overdue since 2026-11-20 13:00" in escalations[0].message
        assert [n.message for n in notices(app, "zhou_qiang")] == [escalations[0].message]  # both team leads
        assert notices(app, "li_na") == []
    with TestClient(app):   # a restart sends nothing twice
        assert len(notices(app, "zhao_min")) == 1


def test_the_tick_runs_again_while_the_studio_serves(tmp_path):
    clock = Clock(local(23, 9))
    app = studio_app(tmp_path, clock, sla_every_s=0.05)
    fresh = ticket(app.state.studio.store, local(23, 9), clock)
    with TestClient(app):
        assert notices(app, "zhao_min") == []   # nothing due at the start
        clock.now = local(23, 12, 30)             # 3.5 of 4 office hours: past 80%
        deadline = time.monotonic() + 5
        while not notices(app, "zhao_min") and time.monotonic() < deadline:
            time.sleep(0.02)
        assert [n.record_id for n in notices(app, "zhao_min")] == [fresh["id"]]
        assert "used 88% of 4h, due 2026-11-23 13:00" in notices(app, "zhao_min")[0].message


def test_a_failing_tick_is_logged_and_the_studio_serves_on(tmp_path, caplog):
    clock = Clock(MONDAY_10)
    app = studio_app(tmp_path, clock)
    ticket(app.state.studio.store, local(20, 9), clock)
    clock.now = MONDAY_10
    with app.state.studio.engine.begin() as connection:   # the tick cannot remember what it sent
        connection.execute(sqlalchemy.text("DROP TABLE crm_sla_events"))
    with caplog.at_level(logging.ERROR, logger="flowdesk.studio"), TestClient(app) as client:
        assert client.get("/login").status_code == 200
        assert "the SLA tick failed" in caplog.text
    assert notices(app, "zhao_min") == []   # one transaction: no notice without its record


# ---------------------------------------------------------------------- the telephony with the server

def test_the_desktop_and_its_telephony_start_and_stop_with_the_studio(tmp_path):
    clock = Clock(MONDAY_10)
    app = studio_app(tmp_path, clock)
    with TestClient(app) as client:
        live = app.state.telephony
        assert isinstance(live, LiveCallCenter) and live._tasks
        log_in(client, "li_na")
        assert client.get("/desktop").status_code == 200
        assert live.state("li_na") == ("not_ready", "login")
        call_id = live.place_call("13800138003", "4008001000")
    assert live._tasks == []    # stopped on shutdown
    with Session(app.state.studio.engine) as session:
        assert session.get(Call, call_id) is not None   # its row written before the database closed


def test_a_startup_hook_given_twice_starts_one_telephony(tmp_path):
    from studio import desktop

    seen = []
    app = studio_app(tmp_path, Clock(MONDAY_10), extra_routes=desktop.routes,
                     on_startup=[desktop.start_telephony, lambda app: seen.append(app.state.telephony)])
    with TestClient(app):
        assert seen == [app.state.telephony]
        assert sum(1 for route in app.routes if getattr(route, "path", "") == "/desktop") == 1


# ---------------------------------------------------------------------- notices

def unread_badge(html: str) -> int:
    found = re.search(r'<b id="unread">(\d+)</b>', html)
    return int(found.group(1)) if found else 0


def test_opening_the_notices_marks_what_was_shown_read_for_that_agent_only(tmp_path):
    app = studio_app(tmp_path, Clock(MONDAY_10))
    with app.state.studio.engine.begin() as connection:
        for agent, message in [("li_na", "工单 #1 已分派给您"), ("li_na", "工单 #2 已改派给您"), ("wang_fang", "给王芳")]:
            notifications.notify(connection, agent=agent, message=message, at=MONDAY_10)
    li_na, wang_fang = TestClient(app), TestClient(app)
    log_in(li_na, "li_na")
    log_in(wang_fang, "wang_fang")
    assert unread_badge(li_na.get("/crm").text) == 2

    page = li_na.get("/notifications")
    assert page.status_code == 200
    assert page.text.count('class="unread"') == 2 and "工单 #2 已改派给您" in page.text  # shown as new this once
    assert unread_badge(page.text) == 0
    assert unread_badge(li_na.get("/crm").text) == 0
    assert all(n.read_at == MONDAY_10 for n in notices(app, "li_na"))

    assert unread_badge(wang_fang.get("/crm").text) == 1   # someone else's notices stay unread
    assert notices(app, "wang_fang")[0].read_at is None
    again = li_na.get("/notifications")
    assert 'class="unread"' not in again.text and "工单 #1 已分派给您" in again.text


def test_a_notice_that_arrives_after_the_page_was_read_stays_unread(tmp_path):
    app = studio_app(tmp_path, Clock(MONDAY_10))
    client = TestClient(app)
    log_in(client, "li_na")
    assert "没有通知" in client.get("/notifications").text
    with app.state.studio.engine.begin() as connection:
        notifications.notify(connection, agent="li_na", message="新的工单", at=MONDAY_10)
    assert unread_badge(client.get("/crm").text) == 1


# ---------------------------------------------------------------------- navigation

@pytest.mark.parametrize("agent, desktop, supervisor", [
    ("li_na", True, False),        # takes queue calls
    ("zhao_min", True, True),      # team lead who takes calls
    ("zhou_qiang", False, True),   # supervisor, no queues
    ("sun_li", False, False),      # quality staff
])
def test_the_navigation_leads_each_person_to_their_desk(tmp_path, agent, desktop, supervisor):
    app = studio_app(tmp_path, Clock(MONDAY_10))
    client = TestClient(app)
    log_in(client, agent)
    nav = re.search(r"<nav>(.*?)</nav>", client.get("/crm").text, re.S).group(1)
    assert ('href="/desktop"' in nav) is desktop
    assert ('href="/supervisor"' in nav) is supervisor
