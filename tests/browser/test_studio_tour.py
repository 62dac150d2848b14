"""The newcomer's tour in headless Chromium, on the studio as `flowdesk studio --demo` serves it: an
agent goes ready on the desktop, a simulated call from a demo customer pops their record, a ticket
opened from the pop is in the ticket list, and the supervisor sees it on the SLA list."""
from __future__ import annotations

import re

import pytest

from flowdesk.studio_cmd import DEMO_RECORDS, seed
from studio.app import create_app
from test_studio_desktop import running_clock, serving, studio_project

pytestmark = pytest.mark.browser
PASSWORD = "tour-password-1"
CALLER, NAME = "13800138003", "李强"   # a demo customer (star tier): key 0 puts him through to the general queue


@pytest.fixture
def tour(tmp_path, monkeypatch):
    """The studio for the example with the demo records, the clock running from 10:00 on a Monday
    in Shanghai (the hotline is open), on a real server."""
    monkeypatch.setenv("FLOWDESK_SECRET", "tour-tests")
    app = create_app(studio_project(tmp_path / "project"), db_url=f"sqlite:///{tmp_path / 'tour.db'}",
                     clock=running_clock())
    seed(app.state.studio.store, DEMO_RECORDS)
    for agent in ("li_na", "zhou_qiang"):
        app.state.studio.accounts.set_password(agent, PASSWORD)
    with serving(app) as url:
        yield url


def log_in(page, url: str, user: str, next_: str) -> None:
    page.goto(f"{url}/login?next={next_}")
    page.fill("input[name=user]", user)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"**{next_}")


def test_an_agent_takes_a_call_opens_a_ticket_and_the_supervisor_sees_it(tour, page):
    log_in(page, tour, "li_na", "/desktop")
    assert page.is_visible("nav a[href='/desktop']")   # the agent's way back to the desk
    page.wait_for_selector("#agent-state:text-is('未就绪')")
    page.click("#go-ready")
    page.wait_for_selector("#agent-state:text-is('就绪')")

    page.fill("input[name=caller]", CALLER)
    page.fill("input[name=keys]", "0")
    page.click("form[hx-post='/desktop/call'] button")
    assert page.wait_for_selector("#desk-pop .customer-name").inner_text() == NAME

    page.click("#desk-pop .new-ticket summary")
    page.select_option("#desk-pop .new-ticket select[name=category]", "complaint")
    page.fill("#desk-pop .new-ticket textarea[name=description]", "宽带晚上掉线,第三次来电")
    page.click("#desk-pop .new-ticket button[type=submit]")
    created = page.wait_for_selector("#pop-message a")
    ticket_path = created.get_attribute("href")
    ticket_id = int(re.fullmatch(r"/crm/ticket/(\d+)", ticket_path).group(1))

    page.goto(f"{tour}/crm/ticket")
    row = page.wait_for_selector(f"a[href='{ticket_path}']")
    assert row.is_visible()
    page.goto(f"{tour}{ticket_path}")
    assert "宽带晚上掉线,第三次来电" in page.inner_text("main")
    assert "sim-" in page.inner_text("main")   # the call it was opened on

    page.click("form[action='/logout'] button")
    log_in(page, tour, "zhou_qiang", "/supervisor")
    line = page.wait_for_selector(f"tr[data-record-id='{ticket_id}']")
    assert f"工单 #{ticket_id}" in line.inner_text()
    assert "新建" in line.inner_text() and "first_response" in line.inner_text()
    assert line.get_attribute("class") == "running"
    page.click(f"tr[data-record-id='{ticket_id}'] a")
    page.wait_for_url(f"**{ticket_path}")
