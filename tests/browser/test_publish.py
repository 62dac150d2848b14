"""In headless Chromium: a supervisor changes the hotline's greeting in the editor and saves it, sees
on the 发布 tab what changed, publishes it as version 2, and rolls back to version 1."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser

HOTLINE = "flows/hotline.flow"
OLD_GREETING = "您好,欢迎致电星海通信客服热线。"
NEW_GREETING = "您好,这里是星海通信新版热线。"


def greeting_of(app) -> str:
    return next(step.model_dump_json() for step in app.state.studio.bundle.flows["hotline"].steps
                if step.kind == "say")


def test_a_saved_edit_is_published_as_version_2_and_rolled_back(page, live_studio, log_in):
    base, app = live_studio.url, live_studio.app
    log_in("zhou_qiang", "/workspace")
    page.goto(f"{base}/workspace/file?path={HOTLINE}")
    page.wait_for_selector("#check-summary.clean")
    page.fill("#source", page.input_value("#source").replace(OLD_GREETING, NEW_GREETING, 1))
    page.click("#save")
    page.wait_for_url("**saved=1")
    assert OLD_GREETING in greeting_of(app)                  # saving changed the file only

    page.goto(f"{base}/workspace")
    page.click(".workspace-tabs a[href='/workspace/publish']")
    page.wait_for_url("**/workspace/publish")
    assert page.get_attribute("#live-version strong", "data-version") == "1"
    added = page.inner_text(".file-diff[data-path='flows/hotline.flow'] pre.diff .add")
    assert NEW_GREETING in added
    assert "修改流程 hotline" in page.inner_text("#changes")
    assert page.is_enabled("#publish")

    page.fill("input[name=note]", "新欢迎语")
    page.click("#publish")
    page.wait_for_url("**published=2")
    assert "已发布版本 2" in page.inner_text("#notice")
    assert page.get_attribute("#live-version strong", "data-version") == "2"
    assert page.is_disabled("#publish")                           # nothing left to publish
    assert NEW_GREETING in greeting_of(app)

    page.click("#rollback")
    page.wait_for_url("**rolled_back=1")
    assert "已回滚到版本 1" in page.inner_text("#notice")
    assert page.get_attribute("#live-version strong", "data-version") == "1"
    assert OLD_GREETING in greeting_of(app)
    assert "回滚到版本 1" in page.inner_text("#activations")
