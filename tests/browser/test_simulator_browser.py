"""In headless Chromium: the simulator walking a call.  A supervisor opens the simulator panel, calls
the hotline's number on a Monday at 10:00, presses keys on the keypad, sees the prompts appear and the
steps taken light up on the flow's graph, and ends with the ticket the call created and its outcome."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser

HOTLINE = "4008001000"
LIT = "[...document.querySelectorAll('#sim-pictures g.node.lit > title')].map(t => t.textContent)"
CURRENT = "[...document.querySelectorAll('#sim-pictures g.node.current > title')].map(t => t.textContent)"


def assert_prompts_can_be_heard(page) -> None:
    """Each prompt has a button that speaks it (or the page says why it cannot)."""
    from studio.simulate import audio_available

    if not audio_available():
        assert page.is_visible("#sim-no-audio")
        return
    source = page.get_attribute("#transcript li.prompt button.speak", "data-src")
    heard = page.evaluate("async (src) => { const r = await fetch(src); const b = new Uint8Array(await r.arrayBuffer());"
                          " return [r.status, r.headers.get('content-type'), String.fromCharCode(...b.slice(0, 4))]; }",
                          source)
    assert heard == [200, "audio/wav", "RIFF"]


def fact(page, label: str) -> str:
    return page.inner_text(f'td[data-fact="{label}"]')


def test_the_simulator_walks_a_complaint_call_through_the_hotline(page, live_studio, log_in):
    log_in("zhou_qiang", "/workspace/simulate")
    page.wait_for_selector("#sim-start")
    page.select_option("#target", f"number:{HOTLINE}")
    page.fill("#caller", "13800138000")
    page.fill("#date", "2026-11-23")
    page.fill("#time", "10:00")
    page.click("#sim-go")
    page.wait_for_url("**/workspace/simulate/*")

    page.wait_for_selector("#transcript li.prompt >> text=话费余额查询请按1")
    assert page.evaluate(CURRENT) == ["main_menu"]
    assert {"answer@1", "say@3", "lookup@6"} <= set(page.evaluate(LIT))
    page.evaluate("window.stillTheSamePage = true")
    assert_prompts_can_be_heard(page)

    page.click('.keypad button[data-key="2"]')
    page.wait_for_selector("#transcript li.prompt >> text=投诉请按1,意见和建议请按2")
    assert page.evaluate(CURRENT) == ["complaints"]
    page.click('.keypad button[data-key="1"]')
    page.wait_for_selector("#transcript li.prompt >> text=您的投诉已登记,工单号是 1,请您记录。")
    assert {"main_menu", "complaints", "create@19", "enqueue@25"} <= set(page.evaluate(LIT))
    assert page.evaluate("window.stillTheSamePage") is True      # htmx swapped the panel, no reload

    ticket = page.wait_for_selector('#sim-writes table[data-entity="Ticket"][data-verb="新建"]')
    assert "complaint" in ticket.inner_text() and "13800138000" in ticket.inner_text()
    assert fact(page, "队列") == "complaints"

    page.click("#sim-answer")
    page.wait_for_selector("#sim-status >> text=与坐席 王芳(wang_fang) 通话中")
    page.click("#sim-hangup")
    page.wait_for_selector('#call[data-over="yes"]')
    assert fact(page, "结果") == "主叫挂机(caller_hangup)"
    assert fact(page, "坐席") == "wang_fang"
    assert page.evaluate(CURRENT) == []


def test_a_bad_key_typed_is_refused_in_the_panel(page, live_studio, log_in):
    log_in("zhou_qiang", "/workspace/simulate")
    page.click("#sim-go")
    page.wait_for_selector("#transcript li.prompt >> text=话费余额查询请按1")
    page.fill("#sim-keys", "12a")
    page.press("#sim-keys", "Enter")
    assert "按键“12a”不对" in page.wait_for_selector("#sim-error").inner_text()
    assert page.evaluate(CURRENT) == ["main_menu"]
