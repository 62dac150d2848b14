"""In headless Chromium: the supervisor opens the wallboard, a simulated caller queues in
`general` with nobody logged in, and the board shows the waiting call without reloading; the
longest wait then counts up in the page on its own."""
from __future__ import annotations

import pytest

from test_studio_desktop import CUSTOMER_PHONE, PASSWORD, serving
from test_studio_wallboard import HOTLINE, on_loop, wallboard_app

pytestmark = pytest.mark.browser

GENERAL = "#wallboard tr[data-queue='general']"


@pytest.fixture
def studio(tmp_path, monkeypatch):
    monkeypatch.setenv("FLOWDESK_SECRET", "wallboard-browser-tests")
    app = wallboard_app(tmp_path)
    with serving(app) as base:
        yield base, app


def test_the_wallboard_updates_when_a_simulated_call_queues(page, studio):
    base, app = studio
    page.goto(f"{base}/login?next=/wallboard")
    page.fill("input[name=user]", "zhou_qiang")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/wallboard")
    assert page.inner_text(f"{GENERAL} td.waiting") == "0"
    page.evaluate("window.stillTheSamePage = true")

    on_loop(app, app.state.telephony.place_call, CUSTOMER_PHONE, HOTLINE, keys="0")

    page.wait_for_selector(f"{GENERAL} td.waiting[data-value='1']")
    assert page.inner_text(f"{GENERAL} td.waiting") == "1"
    assert page.inner_text("#wallboard tr[data-queue='total'] td.waiting") == "1"
    assert page.evaluate("window.stillTheSamePage") is True   # pushed into the page, not reloaded

    # The wait ticks in the browser between pushes: nothing else changes on the server.
    first = page.inner_text(f"{GENERAL} td.longest-wait")
    assert first.startswith("0:0")
    page.wait_for_function(
        f"document.querySelector(\"{GENERAL} td.longest-wait\").textContent !== {first!r}", timeout=5_000)
    assert page.evaluate("window.stillTheSamePage") is True
