"""The wallboard: queues, agents and today's service level pushed live over Server-Sent Events,
on the example project (the hotline) with its SQLite database and the simulated telephony."""
from __future__ import annotations

import asyncio
import datetime as dt
import inspect
import re
import time
from zoneinfo import ZoneInfo

import httpx
import pytest
from starlette.testclient import TestClient

from runtime.kpis import queue_kpis
from studio import wallboard
from studio.app import create_app
from test_studio_desktop import (CUSTOMER_PHONE, OPENING, PASSWORD, csrf_of, serving, sse_events, studio_project,
                                 wait_for)

HOTLINE = "4008001000"
SHANGHAI = ZoneInfo("Asia/Shanghai")


class Clock:
    """The studio's clock: from ten in the morning at the real pace, and able to skip ahead
    (a caller who waits half a minute, without the test waiting for it)."""

    def __init__(self, start: dt.datetime = OPENING):
        self.start, self.began, self.skipped = start, time.monotonic(), dt.timedelta()

    def __call__(self) -> dt.datetime:
        return self.start + dt.timedelta(seconds=time.monotonic() - self.began) + self.skipped

    def skip(self, seconds: float) -> None:
        self.skipped += dt.timedelta(seconds=seconds)


def remember_loop(app) -> None:
    """Start-up hook: the server's event loop, where the telephony runs."""
    app.state.loop = asyncio.get_running_loop()


def wallboard_app(folder, clock=None):
    """The studio with the wallboard wired in; the supervisors' and agents' passwords set."""
    app = create_app(studio_project(folder), db_url=f"sqlite:///{folder / 'studio.db'}",
                     extra_routes=wallboard.routes, on_startup=[remember_loop], clock=clock or Clock())
    for name in ("zhou_qiang", "zhao_min", "li_na", "wang_fang", "sun_li"):
        app.state.studio.accounts.set_password(name, PASSWORD)
    return app


def on_loop(app, act, *args, **kwargs):
    """Run `act` on the server's event loop (the telephony is not thread-safe), return its result."""
    async def run():
        result = act(*args, **kwargs)
        return await result if inspect.isawaitable(result) else result
    return asyncio.run_coroutine_threadsafe(run(), app.state.loop).result(10)


def log_in(client, user: str) -> None:
    page = client.get("/login")
    response = client.post("/login", data={"user": user, "password": PASSWORD, "csrf_token": csrf_of(page.text),
                                           "next": "/wallboard"}, follow_redirects=False)
    assert response.status_code == 303, response.text


def line(board: str, queue: str) -> dict[str, str]:
    """The numbers of one queue's line (or "total"), by the cell's class."""
    row = re.search(rf'<tr data-queue="{queue}"[^>]*>(.*?)</tr>', board, re.S).group(1)
    cells = {cls: value for cls, value in re.findall(r'<td class="([\w-]+)[^"]*" data-value="([^"]*)"', row)}
    since = re.search(r'data-since="(\d+)"', row)
    cells["since"] = since.group(1) if since else ""
    cells["wait_text"] = re.search(r'<td class="longest-wait"[^>]*>([^<]*)</td>', row).group(1)
    return cells


def next_board(events, test) -> str:
    """The first board pushed from now on that passes `test` (a board's line of `general`)."""
    for event, data in events:
        if event == "board" and test(line(data, "general")):
            return data
    raise AssertionError("the stream ended")


@pytest.fixture
def app(tmp_path, monkeypatch):
    monkeypatch.setenv("FLOWDESK_SECRET", "wallboard-tests")
    return wallboard_app(tmp_path)


# ---------------------------------------------------------------------- who may look

def test_the_wallboard_needs_a_log_in(app):
    with TestClient(app) as client:
        response = client.get("/wallboard", follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"].startswith("/login")


@pytest.mark.parametrize("user", ["li_na", "sun_li"])
def test_agents_and_qa_staff_are_refused_the_board_and_its_stream(app, user):
    with TestClient(app) as client:
        log_in(client, user)
        for path in ("/wallboard", "/wallboard/events"):
            refused = client.get(path)
            assert refused.status_code == 403 and "实时看板只对班组长和值班主管开放" in refused.text


@pytest.mark.parametrize("user", ["zhou_qiang", "zhao_min"])
def test_supervisors_and_team_leads_see_every_queue_and_the_total(app, user):
    with TestClient(app) as client:
        log_in(client, user)
        page = client.get("/wallboard")
        assert page.status_code == 200
        assert 'sse-connect="/wallboard/events"' in page.text and "/static/htmx-sse.js" in page.text
        for queue in ("general", "vip", "complaints", "business", "total"):
            assert line(page.text, queue)["waiting"] == "0"
        assert "综合服务" in page.text and "合计" in page.text
        assert line(page.text, "general")["service-level"] == ""  # no calls today yet: no level
        assert line(page.text, "general")["wait_text"] == "—"


# ---------------------------------------------------------------------- the stream

def test_a_queued_call_is_pushed_then_moves_to_on_call_when_an_agent_answers(app):
    with serving(app) as base, httpx.Client(base_url=base, timeout=10) as client:
        log_in(client, "zhou_qiang")
        live = app.state.telephony
        with client.stream("GET", "/wallboard/events") as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            events = sse_events(stream.iter_lines())
            first = next_board(events, lambda general: True)
            assert line(first, "general")["waiting"] == "0"

            call_id = on_loop(app, live.place_call, CUSTOMER_PHONE, HOTLINE, keys="0")  # nobody is logged in
            queued = next_board(events, lambda general: general["waiting"] == "1")
            general = line(queued, "general")
            visit = live.center.calls[call_id].visit
            assert visit.queue == "general"
            assert int(general["since"]) == int(visit.enqueued_at.timestamp() * 1000)
            assert re.fullmatch(r"0:0\d", general["wait_text"])
            assert line(queued, "total")["waiting"] == "1" and line(queued, "vip")["waiting"] == "0"

            on_loop(app, live.login, "li_na", ready=True)   # rung at once
            ringing = line(next_board(events, lambda general: general["agents-ringing"] == "1"), "general")
            assert ringing["waiting"] == "1"   # still waiting for someone to pick up

            on_loop(app, live.answer, "li_na")
            talking = next_board(events, lambda general: general["agents-on_call"] == "1")
        general = line(talking, "general")
        assert (general["waiting"], general["since"], general["wait_text"]) == ("0", "", "—")
        assert (general["agents-ready"], general["agents-ringing"], general["answered"]) == ("0", "0", "1")
        assert general["service-level"] == "1.0000"
        assert line(talking, "total")["agents-on_call"] == "1"


def test_a_burst_of_calls_is_pushed_in_a_few_boards_not_one_per_call(app):
    with serving(app) as base, httpx.Client(base_url=base, timeout=10) as client:
        log_in(client, "zhou_qiang")
        live = app.state.telephony
        with client.stream("GET", "/wallboard/events") as stream:
            events = sse_events(stream.iter_lines())
            next_board(events, lambda general: True)
            began = time.monotonic()
            for n in range(12):
                on_loop(app, live.place_call, f"1390000{n:04d}", HOTLINE, keys="0")
            seen = []
            for event, data in events:
                if event != "board":
                    continue
                seen.append(time.monotonic())
                if line(data, "general")["waiting"] == "12":
                    break
        gaps = [b - a for a, b in zip(seen, seen[1:])]
        assert len(seen) < 12   # twelve changes, fewer pushes
        assert all(gap > 0.15 for gap in gaps), gaps   # at most 4 a second (a little slack for the wire)


def test_todays_numbers_are_the_event_logs_kpis_and_a_call_that_just_ended_counts(tmp_path, monkeypatch):
    monkeypatch.setenv("FLOWDESK_SECRET", "wallboard-tests")
    clock = Clock()
    app = wallboard_app(tmp_path, clock)
    with serving(app) as base, httpx.Client(base_url=base, timeout=10) as client:
        log_in(client, "zhou_qiang")
        client.get("/wallboard")
        live, board = app.state.telephony, app.state.wallboard

        def queued(call_id):
            wait_for(lambda: live.center.calls[call_id].visit is not None)

        slow = on_loop(app, live.place_call, "13900000001", HOTLINE, keys="0")
        queued(slow)
        clock.skip(30)                                    # waits half a minute: outside the 20 s target
        on_loop(app, live.login, "li_na", ready=True)
        on_loop(app, live.answer, "li_na")
        quick = on_loop(app, live.place_call, "13900000002", HOTLINE, keys="0")
        queued(quick)
        on_loop(app, live.login, "wang_fang", ready=True)
        on_loop(app, live.answer, "wang_fang")            # answered within the target
        short = on_loop(app, live.place_call, "13900000003", HOTLINE, keys="0")
        queued(short)
        on_loop(app, live.caller_hangs_up, short)         # gave up at once: a short abandon, left out
        gave_up = on_loop(app, live.place_call, "13900000004", HOTLINE, keys="0")
        queued(gave_up)
        clock.skip(10)

        async def hang_up_and_look():
            live.caller_hangs_up(gave_up)
            return await board.board()
        shown, html = on_loop(app, hang_up_and_look)     # before the event log is written
        general = line(html, "general")
        assert (general["abandoned"], general["answered"], general["waiting"]) == ("1", "2", "0")

        on_loop(app, live.write_rows)
        now = app.state.studio.clock()
        midnight = now.astimezone(SHANGHAI).replace(hour=0, minute=0, second=0, microsecond=0)

        def written():   # the log's own writer may still be writing the rows it took a moment ago
            visits = live.event_log.queue_visits(midnight.astimezone(dt.timezone.utc),
                                                 now + dt.timedelta(minutes=1), "general")
            return visits if len(visits) == 4 and all(v.outcome for v in visits) else None
        logged = wait_for(written)
        # The log keeps UTC, and SQLite hands it back without the zone.
        for visit in logged:
            visit.enqueued_at = visit.enqueued_at.replace(tzinfo=dt.timezone.utc)
            visit.left_at = visit.left_at and visit.left_at.replace(tzinfo=dt.timezone.utc)
        (kpis,) = queue_kpis(logged,
                             "day", SHANGHAI, {"general": 20.0})
    assert (kpis.offered, kpis.answered, kpis.abandoned, kpis.short_abandoned) == (4, 2, 1, 1)
    (line_,) = [q for q in shown.queues if q.queue == "general"]
    assert (line_.offered, line_.answered, line_.abandoned) == (kpis.offered, kpis.answered, kpis.abandoned)
    assert line_.service_level == kpis.service_level == pytest.approx(1 / 3)
    assert general["service-level"] == "0.3333" and "below" in re.search(
        r'<tr data-queue="general".*?</tr>', html, re.S).group(0)   # under the queue's 80%
    assert (shown.total.answered, shown.total.abandoned, shown.total.service_level) == (2, 1, pytest.approx(1 / 3))


def test_waits_are_shown_as_the_page_counts_them():
    assert wallboard.waited(dt.timedelta(seconds=7)) == "0:07"
    assert wallboard.waited(dt.timedelta(minutes=4, seconds=5)) == "4:05"
    assert wallboard.waited(dt.timedelta(hours=1, minutes=2, seconds=3)) == "1:02:03"
    assert wallboard.waited(dt.timedelta(seconds=-2)) == "0:00"   # clocks a moment apart
