"""In headless Chromium: a supervisor opens the hotline's main menu in the form editor, points the
人工服务 option elsewhere and rewrites the prompt, and finds both in the text editor with the file's
comments; a prompt naming something that does not exist is refused with its diagnostic, the typed
prompt still in the form and the file unchanged."""
from __future__ import annotations

from urllib.parse import quote

import pytest

pytestmark = pytest.mark.browser

HOTLINE = "flows/hotline.flow"
FORM = f"/workspace/form?path={HOTLINE}"
OPTION = "#option-hotline-main_menu-0"
MENU = "#menu-hotline-main_menu"


def test_a_menu_changed_in_the_form_editor_shows_in_the_text_editor_with_its_comments(page, live_studio, log_in):
    project = live_studio.app.state.studio.project
    log_in("zhou_qiang", quote(FORM, safe=""))
    page.wait_for_selector(OPTION)
    assert page.input_value(f"{OPTION} select[name=target]") == "to_agent"

    page.fill(f"{OPTION} input[name=title]", "转人工服务")
    page.select_option(f"{OPTION} select[name=target]", "vip_queue")
    with page.expect_navigation():
        page.click(f"{OPTION} button[value=option]")
    page.wait_for_selector("#notice")
    assert "已保存" in page.inner_text("#notice")
    assert '+        0 "转人工服务" -> vip_queue' in page.inner_text("#changes pre")

    page.fill(f"{MENU} textarea[name=prompt]", "人工服务请按0,话费查询请按1。")
    with page.expect_navigation():
        page.click(f"{MENU} button[type=submit]")
    page.wait_for_selector("#notice")
    assert page.input_value(f"{MENU} textarea[name=prompt]") == "人工服务请按0,话费查询请按1。"

    with page.expect_navigation():
        page.click("#to-text")
    page.wait_for_selector("#check-summary.clean")
    text = page.input_value("#source")
    assert '        prompt "人工服务请按0,话费查询请按1。"\n        timeout 8s\n' in text
    assert '        0 "转人工服务" -> vip_queue\n' in text
    assert "        # A caller who cannot get on with the keys is helped by a person.\n" in text
    assert text.startswith("# 星海通信 customer-service hotline, 7x24.\n")
    assert text == (project / HOTLINE).read_text(encoding="utf-8")

    with page.expect_navigation():
        page.click("#to-form")
    page.wait_for_selector(OPTION)
    assert page.input_value(f"{OPTION} select[name=target]") == "vip_queue"


def test_a_prompt_naming_nothing_known_is_refused_with_its_diagnostic(page, live_studio, log_in):
    project = live_studio.app.state.studio.project
    saved = (project / HOTLINE).read_text(encoding="utf-8")
    log_in("zhou_qiang", quote(FORM, safe=""))
    page.wait_for_selector(MENU)

    page.fill(f"{MENU} textarea[name=prompt]", "{nobody.name}您好,请按键。")
    with page.expect_navigation():
        page.click(f"{MENU} button[type=submit]")
    problem = page.wait_for_selector('#edit-problems .problem.error[data-code="E404"]')
    assert "unknown name 'nobody'" in problem.inner_text()
    assert "文件没有保存" in page.inner_text("#edit-error")
    assert page.input_value(f"{MENU} textarea[name=prompt]") == "{nobody.name}您好,请按键。"
    assert (project / HOTLINE).read_text(encoding="utf-8") == saved

    # A key the menu already has is named before anything is compiled.
    page.fill("#add-option-hotline-main_menu input[name=key]", "1")
    with page.expect_navigation():
        page.click("#add-option-hotline-main_menu button[type=submit]")
    assert "已有按键 1「话费余额查询」" in page.inner_text("#edit-error")
    assert (project / HOTLINE).read_text(encoding="utf-8") == saved
