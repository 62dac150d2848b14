"""The workspace: a supervisor edits the example project's flows and schemas in the studio.

A check shows what `flowdesk check` prints for the same text; a save writes the file only when the
project compiles without errors; paths stay inside flows/ and schemas/; agents are turned away."""
from __future__ import annotations

import html
import re
import shutil
from pathlib import Path

import pytest

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

from starlette.testclient import TestClient  # noqa: E402

from flowdesk import cli  # noqa: E402
from studio import workspace  # noqa: E402
from test_studio_app import MONDAY_10, Clock, log_in, studio_app  # noqa: E402

HOTLINE = "flows/hotline.flow"
TO_AGENT = '0 "人工服务" -> to_agent'


@pytest.fixture(autouse=True)
def secret(monkeypatch):
    monkeypatch.setenv("FLOWDESK_SECRET", "workspace-tests")


@pytest.fixture
def app(tmp_path):
    return studio_app(tmp_path, Clock(MONDAY_10), extra_routes=workspace.routes)


@pytest.fixture
def project(app) -> Path:
    return app.state.studio.project


def supervisor(app) -> tuple[TestClient, str]:
    """A client logged in as the supervisor 周强, and the session's CSRF token."""
    client = TestClient(app)
    log_in(client, "zhou_qiang")
    page = client.get("/workspace")
    assert page.status_code == 200, page.text
    return client, re.search(r'"X-CSRF-Token": "([^"]+)"', page.text).group(1)


def editor_form(client: TestClient, path: str) -> dict:
    page = client.get("/workspace/file", params={"path": path})
    assert page.status_code == 200, page.text
    field = lambda name: html.unescape(re.search(rf'name="{name}" value="([^"]*)"', page.text).group(1))
    text = html.unescape(re.search(r"<textarea[^>]*>\n(.*?)</textarea>", page.text, re.S).group(1))
    return {"csrf_token": field("csrf_token"), "path": path, "base": field("base"), "text": text}


def flowdesk_check(project: Path, tmp_path: Path, path: str, text: str, capsys) -> str:
    """What `flowdesk check flows schemas` prints for a copy of the project with `text` saved in `path`."""
    copy = tmp_path / "checked"
    for name in ("flows", "schemas"):
        shutil.copytree(project / name, copy / name)
    shutil.copy(project / "flowdesk.yaml", copy / "flowdesk.yaml")
    (copy / path).write_text(text, encoding="utf-8")
    capsys.readouterr()
    cli.main(["check", str(copy / "flows"), str(copy / "schemas")])
    return capsys.readouterr().err


def problems(page: str) -> list[tuple[str, str, int, int]]:
    """(code, file, line, column) of each diagnostic on the page."""
    return [(m[0], m[1], int(m[2]), int(m[3])) for m in re.findall(
        r'class="problem [^"]*" data-code="(\w+)"\s+data-file="([^"]+)" data-line="(\d+)" data-column="(\d+)"', page)]


def test_a_typo_in_a_menu_shows_what_flowdesk_check_prints_and_writes_nothing(app, project, tmp_path, capsys):
    client, token = supervisor(app)
    saved = (project / HOTLINE).read_text(encoding="utf-8")
    typo = saved.replace(TO_AGENT, '0 "人工服务" -> to_agnet', 1)

    answer = client.post("/workspace/check", data={"path": HOTLINE, "text": typo}, headers={"X-CSRF-Token": token})
    assert answer.status_code == 200

    printed = flowdesk_check(project, tmp_path, HOTLINE, typo, capsys)
    headline = re.search(r"^(flows/hotline\.flow):(\d+):(\d+): error\[(E\d+)\]: unknown step 'to_agnet' in flow 'hotline'$", printed, re.M)
    assert headline, printed
    assert problems(answer.text) == [(headline[4], headline[1], int(headline[2]), int(headline[3]))]
    block = printed.split("\n\n")[0]              # the headline, the caret excerpt and the hint
    assert "^^^^^^^^" in block and "did you mean 'to_agent'?" in block
    assert block in html.unescape(answer.text)
    assert "1 error" in answer.text
    # No picture for text with errors: the page keeps the last one and says so.
    assert 'id="pictures-status" class="stale" hx-swap-oob="true"' in answer.text
    assert (project / HOTLINE).read_text(encoding="utf-8") == saved


def test_a_check_of_text_without_errors_draws_each_flow_of_the_file(app, project):
    client, token = supervisor(app)
    text = (project / HOTLINE).read_text(encoding="utf-8").replace(TO_AGENT, '0 "人工服务" -> vip_queue', 1)

    answer = client.post("/workspace/check", data={"path": HOTLINE, "text": text}, headers={"X-CSRF-Token": token})
    assert answer.status_code == 200
    assert problems(answer.text) == []
    assert 'id="pictures" class="pictures" hx-swap-oob="true"' in answer.text
    assert 'data-kind="flow" data-name="hotline"' in answer.text
    assert "<svg" in answer.text and "<?xml" not in answer.text
    assert "<title>main_menu&#45;&gt;vip_queue</title>" in answer.text   # the new edge, drawn by Graphviz


def test_a_schema_file_shows_its_workflow_states_and_transitions(app):
    client, token = supervisor(app)
    form = editor_form(client, "schemas/ticket.schema")
    page = client.get("/workspace/file", params={"path": "schemas/ticket.schema"})
    assert 'data-kind="workflow" data-name="complaint"' in page.text
    assert "<title>resolved&#45;&gt;closed</title>" in page.text
    assert "关闭" in page.text and "(team_lead, supervisor)" in page.text
    assert form["text"].startswith("# ")


def test_prompt_text_cannot_put_markup_into_the_page(app, project):
    client, token = supervisor(app)
    text = (project / HOTLINE).read_text(encoding="utf-8").replace(
        'goodbye: say "感谢您致电星海通信,再见。"', 'goodbye: say "<script>alert(1)</script>"')
    answer = client.post("/workspace/check", data={"path": HOTLINE, "text": text}, headers={"X-CSRF-Token": token})
    assert problems(answer.text) == []
    assert "<script>alert" not in answer.text


def test_a_save_with_errors_is_refused_and_nothing_is_written(app, project):
    client, _ = supervisor(app)
    form = editor_form(client, HOTLINE)
    saved = (project / HOTLINE).read_text(encoding="utf-8")
    form["text"] = form["text"].replace(TO_AGENT, '0 "人工服务" -> to_agnet', 1)

    answer = client.post("/workspace/save", data=form, follow_redirects=False)
    assert answer.status_code == 422
    assert "有 1 个错误,文件没有保存" in answer.text
    assert [p[0] for p in problems(answer.text)] == ["E205"]
    assert "-&gt; to_agnet" in answer.text          # what was typed is still in the editor
    assert (project / HOTLINE).read_text(encoding="utf-8") == saved


def test_a_save_without_errors_writes_the_file_with_the_lines_git_has(app, project):
    client, _ = supervisor(app)
    form = editor_form(client, HOTLINE)
    assert form["text"] == (project / HOTLINE).read_text(encoding="utf-8")
    changed = form["text"].replace(TO_AGENT, '0 "人工服务" -> vip_queue', 1)
    form["text"] = changed.replace("\n", "\r\n")     # as a browser sends a textarea

    answer = client.post("/workspace/save", data=form, follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/workspace/file?path=flows/hotline.flow&saved=1"
    assert (project / HOTLINE).read_bytes() == changed.encode("utf-8")
    assert not [p for p in (project / "flows").iterdir() if p.name.startswith(".hotline.flow.")]  # no temp file left
    assert "已保存" in client.get(answer.headers["location"]).text


def test_a_save_with_warnings_only_is_written(app, project):
    client, _ = supervisor(app)
    form = editor_form(client, HOTLINE)
    # Nothing leads to `business` any more: a warning, not an error.
    form["text"] = form["text"].replace('3 "业务办理" -> business', '3 "业务办理" -> to_agent')
    answer = client.post("/workspace/save", data=form, follow_redirects=False)
    assert answer.status_code == 303
    page = client.get(answer.headers["location"])
    assert [p[0] for p in problems(page.text)] == ["W302"]
    assert "-> to_agent" in (project / HOTLINE).read_text(encoding="utf-8")


def test_a_save_over_a_file_changed_since_it_was_opened_is_refused(app, project):
    client, _ = supervisor(app)
    form = editor_form(client, HOTLINE)
    theirs = form["text"].replace("# 星海通信", "# 星海通信(开发人员的修改)")
    (project / HOTLINE).write_text(theirs, encoding="utf-8")
    form["text"] = form["text"].replace(TO_AGENT, '0 "人工服务" -> vip_queue', 1)

    answer = client.post("/workspace/save", data=form, follow_redirects=False)
    assert answer.status_code == 409
    assert "已被别人修改" in answer.text
    assert (project / HOTLINE).read_text(encoding="utf-8") == theirs


def test_saving_needs_the_csrf_token(app, project):
    client, _ = supervisor(app)
    form = editor_form(client, HOTLINE)
    saved = (project / HOTLINE).read_text(encoding="utf-8")
    form["text"] = "# gone\n"
    del form["csrf_token"]
    assert client.post("/workspace/save", data=form, follow_redirects=False).status_code == 403
    assert (project / HOTLINE).read_text(encoding="utf-8") == saved


def test_format_lays_the_text_out_keeping_comments_and_does_not_save(app, project):
    client, _ = supervisor(app)
    form = editor_form(client, HOTLINE)
    saved = form["text"]
    form["text"] = saved.replace("    answer\n", "        answer   # picked up at once\n")
    answer = client.post("/workspace/format", data=form)
    assert answer.status_code == 200
    text = html.unescape(re.search(r"<textarea[^>]*>\n(.*?)</textarea>", answer.text, re.S).group(1))
    assert "\n    answer  # picked up at once\n" in text or "\n    answer # picked up at once\n" in text
    assert "# 星海通信 customer-service hotline" in text
    assert "尚未保存" in answer.text
    assert (project / HOTLINE).read_text(encoding="utf-8") == saved


def test_format_of_text_that_does_not_parse_says_so(app):
    client, _ = supervisor(app)
    form = editor_form(client, HOTLINE)
    form["text"] = form["text"].replace("main_menu: menu {", "main_menu: menu {{")
    answer = client.post("/workspace/format", data=form)
    assert answer.status_code == 422
    assert "无法格式化" in answer.text and problems(answer.text)


@pytest.mark.parametrize("path, status", [
    ("../flowdesk.yaml", 400),
    ("flows/../flowdesk.yaml", 400),
    ("flows/../../etc/passwd.flow", 400),
    ("/etc/passwd", 400),
    ("flowdesk.yaml", 400),
    ("runtime/x.flow", 400),
    ("flows/holidays/cn-2026.yaml", 400),
    ("flows\\hotline.flow", 400),
    ("", 400),
    ("flows/nowhere.flow", 404),
])
def test_only_flow_and_schema_files_under_flows_and_schemas_open(app, project, path, status):
    client, token = supervisor(app)
    assert client.get("/workspace/file", params={"path": path}).status_code == status
    answer = client.post("/workspace/check", data={"path": path, "text": "x"}, headers={"X-CSRF-Token": token})
    assert answer.status_code == status
    before = (project / "flowdesk.yaml").read_text(encoding="utf-8")
    saved = client.post("/workspace/save", data={"path": path, "text": "x", "base": "", "csrf_token": token})
    assert saved.status_code == status
    assert (project / "flowdesk.yaml").read_text(encoding="utf-8") == before


def test_a_link_out_of_the_folder_is_refused(app, project, tmp_path):
    outside = tmp_path / "outside.flow"
    outside.write_text("# not the project's\n", encoding="utf-8")
    (project / "flows" / "linked.flow").symlink_to(outside)
    client, token = supervisor(app)
    page = client.get("/workspace/file", params={"path": "flows/linked.flow"})
    assert page.status_code == 400 and "之外" in page.text


def test_the_file_list_shows_every_source_with_what_it_declares(app):
    client, _ = supervisor(app)
    page = client.get("/workspace").text
    listed = re.findall(r'<tr data-path="([^"]+)">', page)
    assert listed[:2] == ["flows/agents.flow", "flows/hotline.flow"]
    assert "schemas/ticket.schema" in listed and not [p for p in listed if p.endswith((".yaml", ".test.yaml"))]
    assert "flow hotline「星海通信客服热线」" in page and "workflow complaint" in page


@pytest.mark.parametrize("agent", ["li_na", "zhao_min", "sun_li"])   # an agent, a team lead, QA
def test_people_who_do_not_edit_flows_are_turned_away(app, project, agent):
    client = TestClient(app)
    log_in(client, agent)
    token = re.search(r'"X-CSRF-Token": "([^"]+)"', client.get("/crm").text).group(1)
    assert client.get("/workspace").status_code == 403
    assert client.get("/workspace/file", params={"path": HOTLINE}).status_code == 403
    assert client.post("/workspace/check", data={"path": HOTLINE, "text": ""},
                       headers={"X-CSRF-Token": token}).status_code == 403
    saved = (project / HOTLINE).read_text(encoding="utf-8")
    answer = client.post("/workspace/save", data={"path": HOTLINE, "text": "# gone\n", "base": "", "csrf_token": token})
    assert answer.status_code == 403
    assert (project / HOTLINE).read_text(encoding="utf-8") == saved


def test_nobody_logged_in_is_sent_to_log_in(app):
    answer = TestClient(app).get("/workspace", follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"].startswith("/login")



def test_a_file_that_is_not_utf8_is_not_opened(app, project):
    (project / "flows" / "legacy.flow").write_bytes("# 旧文件\n".encode("gbk"))
    client, _ = supervisor(app)
    page = client.get("/workspace/file", params={"path": "flows/legacy.flow"})
    assert page.status_code == 400 and "不是 UTF-8 文本" in page.text


def test_a_text_too_long_to_check_is_refused(app, project):
    client, token = supervisor(app)
    saved = (project / HOTLINE).read_text(encoding="utf-8")
    text = "#" * (workspace.MAX_TEXT + 1)
    answer = client.post("/workspace/check", data={"path": HOTLINE, "text": text}, headers={"X-CSRF-Token": token})
    assert answer.status_code == 413 and "文本太长" in answer.text
    form = editor_form(client, HOTLINE) | {"text": text}
    assert client.post("/workspace/save", data=form).status_code == 413
    # Beyond what a form field may carry at all: the same answer, not a bare error.
    huge = client.post("/workspace/save", data=form | {"text": "号" * (workspace.MAX_FORM_FIELD // 3)})
    assert huge.status_code == 413 and "文本太长" in huge.text
    assert (project / HOTLINE).read_text(encoding="utf-8") == saved
