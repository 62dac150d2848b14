"""The supervisor's SLA list: open tickets by the office time they have left, from tickets created and
moved at known times, read on a fixed clock (Monday 23 November 2026, 10:00 in Shanghai)."""
from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

from starlette.testclient import TestClient  # noqa: E402

from test_studio_app import MONDAY_10, Clock, local, log_in, studio_app, ticket  # noqa: E402


@pytest.fixture(autouse=True)
def secret(monkeypatch):
    monkeypatch.setenv("FLOWDESK_SECRET", "supervisor-tests")


@pytest.fixture
def clock():
    return Clock(MONDAY_10)


@pytest.fixture
def app(tmp_path, clock):
    return studio_app(tmp_path, clock)


def move(app, clock, at, user: str, record: dict, *transitions: str, **changes) -> None:
    """At `at`, `user` writes `changes` to the ticket and then fires `transitions`."""
    store, accounts = app.state.studio.store, app.state.studio.accounts
    clock.now = at
    if changes:
        store.update(accounts.users[user], "Ticket", record["id"], changes)
    for name in transitions:
        store.transition(accounts.users[user], "Ticket", record["id"], name)


def rows(html: str) -> dict[int, str]:
    """Each line of the list by record id, in the order shown."""
    return {int(m.group(2)): m.group(0) for m in
            re.finditer(r'<tr class="(\w+)" data-record-id="(\d+)">.*?</tr>', html, re.S)}


def test_open_tickets_by_time_left_overdue_on_top_paused_after_the_running(app, clock):
    store = app.state.studio.store
    soon = ticket(store, local(23, 9), clock)                              # 1 h of 4 used: 3 h left
    later = ticket(store, local(23, 9, 45), clock, priority="urgent")      # 15 min used: 3 h 45 left
    overdue = ticket(store, local(20, 9), clock, priority="high")          # Friday: 10 office hours of 4
    paused = ticket(store, local(23, 9), clock)
    move(app, clock, local(23, 9, 5), "zhao_min", paused, "assign", assignee="li_na")
    move(app, clock, local(23, 9, 10), "li_na", paused, "start")           # first response given
    move(app, clock, local(23, 9, 20), "li_na", paused, "wait")            # resolution clock stands still
    resolved = ticket(store, local(23, 9), clock)
    move(app, clock, local(23, 9, 5), "zhao_min", resolved, "assign", assignee="li_na")
    move(app, clock, local(23, 9, 10), "li_na", resolved, "start")
    move(app, clock, local(23, 9, 30), "li_na", resolved, "resolve", resolution="已重新配置光猫")
    closed = ticket(store, local(23, 9), clock)
    move(app, clock, local(23, 9, 5), "zhao_min", closed, "assign", assignee="li_na")
    move(app, clock, local(23, 9, 10), "li_na", closed, "start")
    move(app, clock, local(23, 9, 30), "li_na", closed, "resolve", resolution="已处理")
    move(app, clock, local(23, 9, 40), "zhao_min", closed, "close", satisfied="true")
    clock.now = MONDAY_10

    client = TestClient(app)
    log_in(client, "zhou_qiang")
    page = client.get("/supervisor")
    assert page.status_code == 200
    shown = rows(page.text)
    assert list(shown) == [overdue["id"], soon["id"], later["id"], paused["id"], resolved["id"]]
    assert closed["id"] not in shown

    line = shown[overdue["id"]]
    assert line.startswith('<tr class="breached"')
    assert "超时 6小时00分" in line and "11-20 13:00 已到期" in line and "first_response" in line
    assert '<td class="priority" data-priority="high">高</td>' in line
    assert f'href="/crm/ticket/{overdue["id"]}"' in line
    assert 'class="overdue-count">1 张已超时' in page.text

    assert shown[soon["id"]].startswith('<tr class="running"')
    assert ">3小时00分<" in shown[soon["id"]] and "11-23 13:00" in shown[soon["id"]]
    assert ">3小时45分<" in shown[later["id"]] and ">紧急<" in shown[later["id"]]

    line = shown[paused["id"]]
    assert line.startswith('<tr class="paused"')
    assert "已暂停" in line and "47小时40分" in line and "暂停中" in line and "resolution" in line
    assert '<td class="assignee">李娜</td>' in line and '<td class="state">等待客户</td>' in line
    assert '<td class="state">已解决</td>' in shown[resolved["id"]]


def test_the_list_follows_the_clock(app, clock):
    first = ticket(app.state.studio.store, local(23, 9), clock)
    clock.now = local(23, 12, 59)
    client = TestClient(app)
    log_in(client, "zhao_min")
    assert rows(client.get("/supervisor").text)[first["id"]].startswith('<tr class="running"')
    clock.now = local(23, 13, 30)
    again = client.get("/supervisor").text
    line = rows(again)[first["id"]]
    assert line.startswith('<tr class="breached"') and "超时 0小时30分" in line
    # The open page fetches itself again every 30 s and swaps in the list: the same request as above.
    assert 'hx-get="/supervisor" hx-trigger="every 30s" hx-select="#sla"' in again


def test_no_open_tickets_says_so(app):
    client = TestClient(app)
    log_in(client, "zhou_qiang")
    assert "没有未结的工单" in client.get("/supervisor").text


@pytest.mark.parametrize("agent", ["li_na", "sun_li", "zhang_wei"])   # agent, quality, account manager
def test_only_team_leads_and_supervisors_see_it(app, clock, agent):
    ticket(app.state.studio.store, local(20, 9), clock)
    clock.now = MONDAY_10
    client = TestClient(app)
    log_in(client, agent)
    page = client.get("/supervisor")
    assert page.status_code == 403
    assert "只对班组长和值班主管开放" in page.text and "data-record-id" not in page.text


def test_the_list_needs_a_log_in(app):
    response = TestClient(app).get("/supervisor", follow_redirects=False)
    assert response.status_code in (302, 303, 307) and "/login" in response.headers["location"]
