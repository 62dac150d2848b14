"""In headless Chromium: a supervisor opens the hotline flow, points a menu option at a step that does
not exist, sees the diagnostic appear while typing (nothing saved), fixes it, and sees the diagnostic
go and the flow's picture change."""
from __future__ import annotations

import datetime as dt
from urllib.parse import quote

import pytest

from test_studio_app import PASSWORD, project
from test_studio_desktop import serving

pytestmark = pytest.mark.browser

HOTLINE = "flows/hotline.flow"
TO_AGENT = '0 "人工服务" -> to_agent'
EDGES = "[...document.querySelectorAll('#pictures g.edge > title')].map(t => t.textContent)"


@pytest.fixture
def studio(tmp_path, monkeypatch):
    from studio import workspace
    from studio.app import create_app

    monkeypatch.setenv("FLOWDESK_SECRET", "workspace-browser-tests")
    monday = dt.datetime(2026, 11, 23, 2, 0, tzinfo=dt.timezone.utc)
    app = create_app(project(tmp_path / "project"), clock=lambda: monday, extra_routes=workspace.routes)
    app.state.studio.accounts.set_password("zhou_qiang", PASSWORD)
    with serving(app) as base:
        yield base, app.state.studio.project


def test_a_wrong_menu_target_shows_its_diagnostic_as_typed_and_the_fix_redraws_the_flow(page, studio):
    base, project = studio
    saved = (project / HOTLINE).read_text(encoding="utf-8")
    page.goto(f"{base}/login?next={quote('/workspace/file?path=' + HOTLINE, safe='')}")
    page.fill("input[name=user]", "zhou_qiang")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/workspace/file?path=flows/hotline.flow")
    page.wait_for_selector("#check-summary.clean")
    assert "main_menu->to_agent" in page.evaluate(EDGES)
    assert "main_menu->vip_queue" not in page.evaluate(EDGES)
    page.evaluate("window.stillTheSamePage = true")

    text = page.input_value("#source")
    assert text == saved
    page.fill("#source", text.replace(TO_AGENT, '0 "人工服务" -> to_agnet', 1))
    problem = page.wait_for_selector('.problem.error[data-code="E205"]')
    assert "error[E205]" in problem.inner_text()
    assert "unknown step 'to_agnet'" in problem.inner_text()
    assert "did you mean 'to_agent'?" in problem.inner_text()
    assert problem.get_attribute("data-line") == "44"
    assert page.inner_text("#check-summary") == "1 error"
    page.wait_for_selector("#pictures-status.stale")
    assert (project / HOTLINE).read_text(encoding="utf-8") == saved      # typing saves nothing

    # Clicking the diagnostic's place puts the cursor on the typo.
    page.click(".problem a.where")
    before = page.evaluate("document.getElementById('source').value.slice(0, document.getElementById('source').selectionStart)")
    assert before.endswith('0 "人工服务" ')

    page.fill("#source", text.replace(TO_AGENT, '0 "人工服务" -> vip_queue', 1))
    page.wait_for_selector("#check-summary.clean")
    assert page.query_selector(".problem") is None
    page.wait_for_function(f"{EDGES}.includes('main_menu->vip_queue')")
    assert not page.query_selector("#pictures-status.stale")
    assert page.evaluate("window.stillTheSamePage") is True
    assert (project / HOTLINE).read_text(encoding="utf-8") == saved

    page.click("#save")
    page.wait_for_selector("#notice")
    assert "已保存" in page.inner_text("#notice")
    assert '0 "人工服务" -> vip_queue' in (project / HOTLINE).read_text(encoding="utf-8")
