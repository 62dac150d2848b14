"""In headless Chromium: an agent logs in, goes ready, a simulated call comes in and the screen pop
shows the customer without the page reloading; answering, hanging up and after-call work follow."""
from __future__ import annotations

import pytest

from test_studio_desktop import CUSTOMER_PHONE, PASSWORD, desktop_app, serving

pytestmark = pytest.mark.browser


@pytest.fixture
def studio(tmp_path, monkeypatch):
    monkeypatch.setenv("FLOWDESK_SECRET", "screen-pop-tests")
    app = desktop_app(tmp_path)
    with serving(app) as base:
        yield base


def test_a_simulated_call_pops_the_customer_on_the_agents_screen(page, studio):
    page.goto(f"{studio}/login?next=/desktop")
    page.fill("input[name=user]", "li_na")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/desktop")
    page.wait_for_selector("#agent-state:text-is('未就绪')")
    page.evaluate("window.stillTheSamePage = true")

    page.click("#go-ready")
    page.wait_for_selector("#agent-state:text-is('就绪')")
    page.fill("input[name=caller]", CUSTOMER_PHONE)
    page.fill("input[name=keys]", "0")
    page.click("form[hx-post='/desktop/call'] button")

    name = page.wait_for_selector("#desk-pop .customer-name", timeout=10_000)
    assert name.inner_text() == "王小明"
    assert page.evaluate("window.stillTheSamePage") is True  # pushed into the page, not reloaded
    assert "故障" in page.inner_text("#desk-pop .open-tickets")
    assert page.inner_text("#agent-state") == "振铃中"

    page.click("#answer")
    page.wait_for_selector("#desk-call .talking")
    page.click("#hangup")
    page.wait_for_selector("#desk-call .ended")
    page.wait_for_selector(".countdown")
    assert page.inner_text("#agent-state") == "话后处理"
    assert page.evaluate("window.stillTheSamePage") is True
