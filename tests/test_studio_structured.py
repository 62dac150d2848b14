"""The form editor: a supervisor changes a menu option, a queue setting, hours and a screen form in
forms; the file is written back in canonical layout with its comments, only when the project still
compiles; a change made meanwhile, a wrong value or a person who does not edit flows writes nothing."""
from __future__ import annotations

import html
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

from starlette.testclient import TestClient  # noqa: E402

from test_studio_app import MONDAY_10, Clock, log_in, studio_app  # noqa: E402

HOTLINE = "flows/hotline.flow"
TO_AGENT = '        0 "人工服务" -> to_agent\n'


@pytest.fixture(autouse=True)
def secret(monkeypatch):
    monkeypatch.setenv("FLOWDESK_SECRET", "structured-tests")


@pytest.fixture
def app(tmp_path):
    return studio_app(tmp_path, Clock(MONDAY_10))


@pytest.fixture
def project(app) -> Path:
    return app.state.studio.project


def supervisor(app) -> TestClient:
    client = TestClient(app)
    log_in(client, "zhou_qiang")
    return client


def form_values(page: str, form_id: str) -> dict[str, str]:
    """What the browser would send for the form `form_id` as shown (submit buttons aside)."""
    body = re.search(rf'<form [^>]*id="{re.escape(form_id)}"[^>]*>(.*?)</form>', page, re.S)
    assert body, f"no form {form_id} on the page"
    body = body.group(1)
    values = {}
    for tag in re.findall(r"<input[^>]*>", body):
        name, value = re.search(r'name="([^"]+)"', tag), re.search(r'value="([^"]*)"', tag)
        if 'type="checkbox"' in tag and "checked" not in tag:
            continue
        values[name.group(1)] = html.unescape(value.group(1)) if value else "on"
    for name, text in re.findall(r'<textarea name="([^"]+)"[^>]*>(.*?)</textarea>', body, re.S):
        values[name] = html.unescape(text)
    for name, options in re.findall(r'<select name="([^"]+)"[^>]*>(.*?)</select>', body, re.S):
        # The selected option, or the first (as a browser sends).
        chosen = re.search(r'<option(?: value="([^"]*)")? selected>([^<]*)', options) or \
            re.search(r'<option(?: value="([^"]*)")?>([^<]*)', options)
        values[name] = html.unescape(chosen.group(1) if chosen.group(1) is not None else chosen.group(2))
    return values


def opened(client: TestClient, path: str) -> str:
    page = client.get("/workspace/form", params={"path": path})
    assert page.status_code == 200, page.text
    return page.text


def send(client: TestClient, page: str, form_id: str, **changes) -> "object":
    return client.post("/workspace/form", data={**form_values(page, form_id), **changes})


def error_of(answer) -> str:
    return html.unescape(re.search(r'id="edit-error">(.*?)</p>', answer.text, re.S).group(1))


def test_a_menu_option_changed_in_its_form_is_written_in_canonical_text_with_its_comments(app, project):
    client = supervisor(app)
    before = (project / HOTLINE).read_text(encoding="utf-8")
    page = opened(client, HOTLINE)
    assert form_values(page, "option-hotline-main_menu-0")["target"] == "to_agent"
    answer = send(client, page, "option-hotline-main_menu-0", op="option", title="转人工", target="vip_queue")
    assert answer.status_code == 200, answer.text
    after = (project / HOTLINE).read_text(encoding="utf-8")
    assert after == before.replace(TO_AGENT, '        0 "转人工" -> vip_queue\n', 1)
    assert "# A caller who cannot get on with the keys is helped by a person." in after
    assert "已保存" in answer.text
    changes = html.unescape(re.search(r'<details class="changes" id="changes" open>.*?<pre>(.*?)</pre>', answer.text, re.S)[1])
    assert '-        0 "人工服务" -> to_agent\n+        0 "转人工" -> vip_queue\n' in changes
    assert form_values(answer.text, "option-hotline-main_menu-0")["title"] == "转人工"    # the page shows the new file


def test_a_prompt_and_a_new_option_are_saved(app, project):
    client = supervisor(app)
    page = opened(client, HOTLINE)
    answer = send(client, page, "menu-hotline-after_service", prompt="返回主菜单请按1。", timeout="10s")
    assert answer.status_code == 200, answer.text
    answer = send(client, answer.text, "add-option-hotline-after_service", key="9", title="结束通话", target="goodbye")
    assert answer.status_code == 200, answer.text
    after = (project / HOTLINE).read_text(encoding="utf-8")
    assert ('    after_service: menu {\n        prompt "返回主菜单请按1。"\n        timeout 10s\n'
            '        1 "返回主菜单" -> main_menu\n        0 "人工服务" -> to_agent\n        9 "结束通话" -> goodbye\n') in after


def test_queue_hours_and_form_lines_are_saved(app, project):
    client = supervisor(app)
    answer = send(client, opened(client, "flows/queues.flow"), "queue-general-7", op="queue_line", line="wrapup 45s")
    assert answer.status_code == 200, answer.text
    assert "    ring timeout 15s\n    wrapup 45s\n" in (project / "flows/queues.flow").read_text(encoding="utf-8")

    answer = send(client, opened(client, "flows/hours.flow"), "hours-office-2", op="hours_line", line="mon-fri 08:30-17:30")
    assert answer.status_code == 200, answer.text
    hours = (project / "flows/hours.flow").read_text(encoding="utf-8")
    assert "    mon-fri 08:30-17:30\n" in hours and "# Make-up working days" in hours

    page = opened(client, "schemas/customer.schema")
    answer = send(client, page, "field-customer_card-birthday", op="field_up")
    assert answer.status_code == 200, answer.text
    schema = (project / "schemas/customer.schema").read_text(encoding="utf-8")
    assert "        address\n        birthday\n" not in schema and "        birthday\n        address\n" in schema
    answer = send(client, answer.text, "label-Customer-plan", label="资费套餐")
    assert answer.status_code == 200, answer.text
    assert 'plan: text max 40 label "资费套餐"' in (project / "schemas/customer.schema").read_text(encoding="utf-8")


def test_an_edit_that_gives_the_project_an_error_is_refused_with_the_diagnostic(app, project):
    client = supervisor(app)
    path = "schemas/customer.schema"
    before = (project / path).read_text(encoding="utf-8")
    answer = send(client, opened(client, path), "add-field-customer_card-4", field="nickname")
    assert answer.status_code == 422
    assert (project / path).read_text(encoding="utf-8") == before
    assert "文件没有保存" in error_of(answer)
    assert re.search(r'class="problem error" data-code="E\d+" data-file="schemas/customer.schema"', answer.text)
    assert "nickname" in re.search(r'id="edit-problems">(.*?)</ol>', answer.text, re.S)[1]
    assert form_values(answer.text, "add-field-customer_card-4")["field"] == "nickname"   # what was typed stays
    assert "本次修改(未保存)" in answer.text


def test_a_file_changed_since_the_form_was_opened_is_not_overwritten(app, project):
    client = supervisor(app)
    page = opened(client, HOTLINE)
    changed = (project / HOTLINE).read_text(encoding="utf-8").replace("timeout 8s", "timeout 9s")
    (project / HOTLINE).write_text(changed, encoding="utf-8")
    answer = send(client, page, "option-hotline-main_menu-0", op="option", title="转人工")
    assert answer.status_code == 409
    assert (project / HOTLINE).read_text(encoding="utf-8") == changed
    assert "已被别人修改" in error_of(answer)
    assert form_values(answer.text, "option-hotline-main_menu-0")["title"] == "转人工"
    assert form_values(answer.text, "menu-hotline-main_menu")["timeout"] == "9s"     # the file as it is now


@pytest.mark.parametrize("form_id, changes, message", [
    ("option-hotline-main_manu-0", {"op": "option", "menu": "main_manu"}, "流程 hotline 中没有菜单 main_manu"),
    ("option-hotline-main_menu-0", {"op": "option", "new_key": "12"}, "'12' 不是电话按键:请用 0-9、* 或 #"),
    ("option-hotline-main_menu-0", {"op": "option", "new_key": "1"}, "已有按键 1「话费余额查询」"),
    ("menu-hotline-main_menu", {"timeout": "八秒"}, "超时 '八秒' 不是时长"),
], ids=["unknown menu", "bad key", "key used twice", "bad timeout"])
def test_a_wrong_value_in_a_menu_form_says_what_and_writes_nothing(app, project, form_id, changes, message):
    client = supervisor(app)
    before = (project / HOTLINE).read_text(encoding="utf-8")
    page = opened(client, HOTLINE)
    real = form_id.replace("main_manu", "main_menu")
    answer = client.post("/workspace/form", data={**form_values(page, real), "form_id": form_id, **changes})
    assert answer.status_code == 400
    assert message in error_of(answer) and "文件没有修改" in error_of(answer)
    assert (project / HOTLINE).read_text(encoding="utf-8") == before


def test_a_time_that_is_not_a_time_is_named(app, project):
    client = supervisor(app)
    before = (project / "flows/hours.flow").read_text(encoding="utf-8")
    answer = send(client, opened(client, "flows/hours.flow"), "hours-office-2", op="hours_line", line="mon-fri 09:00-25:00")
    assert answer.status_code == 400
    assert "营业时间 office 第 2 行的 09:00-25:00 不是一天中的时间" in error_of(answer)
    assert form_values(answer.text, "hours-office-2")["line"] == "mon-fri 09:00-25:00"
    assert (project / "flows/hours.flow").read_text(encoding="utf-8") == before


@pytest.mark.parametrize("agent", ["li_na", "zhao_min"])   # an agent, a team lead
def test_people_who_do_not_edit_flows_are_turned_away(app, project, agent):
    client = TestClient(app)
    log_in(client, agent)
    token = re.search(r'"X-CSRF-Token": "([^"]+)"', client.get("/crm").text).group(1)
    assert client.get("/workspace/form", params={"path": HOTLINE}).status_code == 403
    before = (project / HOTLINE).read_text(encoding="utf-8")
    answer = client.post("/workspace/form", data={"csrf_token": token, "path": HOTLINE, "op": "remove_option",
                                                  "flow": "hotline", "menu": "main_menu", "key": "0", "base": ""})
    assert answer.status_code == 403
    assert (project / HOTLINE).read_text(encoding="utf-8") == before


def test_an_edit_needs_the_csrf_token(app, project):
    client = supervisor(app)
    before = (project / HOTLINE).read_text(encoding="utf-8")
    values = form_values(opened(client, HOTLINE), "option-hotline-main_menu-0")
    del values["csrf_token"]
    assert client.post("/workspace/form", data={**values, "op": "remove_option"}).status_code == 403
    assert (project / HOTLINE).read_text(encoding="utf-8") == before


def test_a_prompt_typed_on_two_lines_keeps_its_line_break_as_an_escape(app, project):
    client = supervisor(app)
    answer = send(client, opened(client, HOTLINE), "menu-hotline-after_service", prompt="返回主菜单请按1,\r\n人工服务请按0。")
    assert answer.status_code == 200, answer.text
    assert '        prompt "返回主菜单请按1,\\n人工服务请按0。"\n' in (project / HOTLINE).read_text(encoding="utf-8")


def test_typed_markup_stays_text_in_the_page(app, project):
    client = supervisor(app)
    answer = send(client, opened(client, HOTLINE), "say-hotline-1", text='<script>alert("x")</script>您好')
    assert answer.status_code == 200, answer.text
    assert "<script>alert" not in answer.text
    assert form_values(answer.text, "say-hotline-1")["text"] == '<script>alert("x")</script>您好'


def test_the_text_editor_and_the_form_editor_link_to_each_other(app):
    client = supervisor(app)
    assert 'href="/workspace/form?path=flows/hotline.flow"' in client.get("/workspace/file", params={"path": HOTLINE}).text
    assert 'href="/workspace/file?path=flows/hotline.flow"' in opened(client, HOTLINE)


def test_paths_outside_the_sources_and_files_that_do_not_parse(app, project):
    client = supervisor(app)
    assert client.get("/workspace/form", params={"path": "../flowdesk.yaml"}).status_code == 400
    (project / "flows/broken.flow").write_text("flow broken {\n", encoding="utf-8")
    page = client.get("/workspace/form", params={"path": "flows/broken.flow"})
    assert page.status_code == 200 and 'id="syntax-error"' in page.text
