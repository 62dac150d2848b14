"""Publishing from the studio: the difference from the live version, the checks that refuse a
publish, activating a new numbered version in the running studio, and rolling back."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import inspect as sa_inspect

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

from starlette.testclient import TestClient  # noqa: E402

from runtime import versions  # noqa: E402
from studio.app import create_app  # noqa: E402
from test_studio_app import MONDAY_10, Clock, log_in, studio_app  # noqa: E402
from test_studio_workspace import supervisor  # noqa: E402

HOTLINE = "flows/hotline.flow"
OLD_GREETING = "您好,欢迎致电星海通信客服热线。"
NEW_GREETING = "您好,这里是星海通信新版热线。"
GREETING_TEST = """flow: hotline
from: "01088886666"
at: 2026-11-23 10:00
tests:
  - name: 陌生号码听到欢迎语,按 9 转英文热线
    steps:
      - hear: xinghai-jingle
      - hear: 欢迎致电星海通信客服热线
      - hear: 话费余额查询请按1
      - press: "9"
    expect:
      transferred_to: "4008001009"
      ended: transferred
"""


@pytest.fixture(autouse=True)
def secret(monkeypatch):
    monkeypatch.setenv("FLOWDESK_SECRET", "publish-tests")


@pytest.fixture
def app(tmp_path):
    return studio_app(tmp_path, Clock(MONDAY_10))


@pytest.fixture
def project(app) -> Path:
    return app.state.studio.project


def edit(project: Path, path: str, old: str, new: str) -> None:
    target = project / path
    text = target.read_text(encoding="utf-8")
    assert old in text
    target.write_text(text.replace(old, new, 1), encoding="utf-8")


def publish_button_enabled(page: str) -> bool:
    return re.search(r'<button type="submit" id="publish"( disabled)?>', page).group(1) is None


def live_number(app) -> int:
    return versions.live(app.state.studio.engine).number


def test_the_first_start_records_the_files_as_version_1(app, project):
    live = versions.live(app.state.studio.engine)
    assert (live.number, live.bundle_hash, live.published_by) == (1, app.state.studio.bundle.hash, "system")
    assert versions.sources(app.state.studio.engine, 1)[HOTLINE] == (project / HOTLINE).read_text(encoding="utf-8")
    assert [a.kind for a in versions.activations(app.state.studio.engine)] == ["start"]


def test_nothing_changed_means_nothing_to_publish(app):
    client, _ = supervisor(app)
    page = client.get("/workspace/publish").text
    assert "没有可发布的改动" in page and not publish_button_enabled(page)
    assert 'id="no-file-changes"' in page


def test_an_edit_shows_the_text_diff_and_what_changed_in_the_flows(app, project):
    edit(project, HOTLINE, OLD_GREETING, NEW_GREETING)
    client, _ = supervisor(app)
    page = client.get("/workspace/publish").text
    diff = re.search(r'<details class="file-diff" open data-path="flows/hotline.flow">(.*?)</details>', page, re.S)
    assert diff is not None
    assert f'<span class="del">-    say &#34;{OLD_GREETING}' in diff.group(1)
    assert f'<span class="add">+    say &#34;{NEW_GREETING}' in diff.group(1)
    assert re.search(r'<li class="change changed">修改流程 hotline:修改步骤 \w+', page)
    assert "数据表不需要改动" in page
    assert publish_button_enabled(page)


def test_publishing_makes_a_new_version_live_in_the_running_studio(app, project):
    edit(project, HOTLINE, OLD_GREETING, NEW_GREETING)
    with TestClient(app) as served:        # the telephony runs
        log_in(served, "zhou_qiang")
        token = re.search(r'"X-CSRF-Token": "([^"]+)"', served.get("/workspace/publish").text).group(1)
        before = app.state.studio.bundle
        done = served.post("/workspace/publish", data={"csrf_token": token, "note": "新欢迎语"}, follow_redirects=False)
        assert done.status_code == 303 and done.headers["location"] == "/workspace/publish?published=2"
        after = app.state.studio.bundle
        assert after.hash != before.hash and any(NEW_GREETING in step.model_dump_json()
                                                 for step in after.flows["hotline"].steps)
        assert app.state.telephony.bundle is after and app.state.telephony.center.bundle is after
        assert app.state.studio.store.bundle is after
        page = served.get("/workspace/publish?published=2").text
    assert "已发布版本 2" in page and '线上版本 <strong data-version="2">' in page
    assert "新欢迎语" in page and "回滚到版本 1" in page
    live = versions.live(app.state.studio.engine)
    assert (live.number, live.published_by, live.note, live.bundle_hash) == (2, "zhou_qiang", "新欢迎语", after.hash)


def test_a_restart_runs_the_live_version_not_saved_files(app, project, tmp_path):
    edit(project, HOTLINE, OLD_GREETING, NEW_GREETING)
    client, token = supervisor(app)
    assert client.post("/workspace/publish", data={"csrf_token": token}, follow_redirects=False).status_code == 303
    published = app.state.studio.bundle.hash
    edit(project, HOTLINE, NEW_GREETING, "您好,这句还没有发布。")    # saved, never published
    again = create_app(project, db_url=f"sqlite:///{tmp_path / 'studio.db'}", clock=Clock(MONDAY_10))
    try:
        assert again.state.studio.bundle.hash == published
    finally:
        again.state.studio.engine.dispose()


def test_rolling_back_makes_the_previous_version_live(app, project):
    first = app.state.studio.bundle
    edit(project, HOTLINE, OLD_GREETING, NEW_GREETING)
    client, token = supervisor(app)
    client.post("/workspace/publish", data={"csrf_token": token}, follow_redirects=False)
    done = client.post("/workspace/rollback", data={"csrf_token": token, "number": "1"}, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/workspace/publish?rolled_back=1"
    assert app.state.studio.bundle.hash == first.hash and live_number(app) == 1
    page = client.get(done.headers["location"]).text
    assert "已回滚到版本 1" in page and '线上版本 <strong data-version="1">' in page
    assert "回滚到版本 2" in page        # back to what was live before the rollback
    assert [a.kind for a in versions.activations(app.state.studio.engine)] == ["rollback", "publish", "start"]


def test_a_compile_error_refuses_the_publish(app, project):
    edit(project, HOTLINE, "-> to_agent", "-> to_agnet")
    client, token = supervisor(app)
    page = client.get("/workspace/publish").text
    assert "个错误,不能发布" in page and 'class="compile-error"' in page and "to_agnet" in page
    assert not publish_button_enabled(page)
    refused = client.post("/workspace/publish", data={"csrf_token": token}, follow_redirects=False)
    assert refused.status_code == 422 and "个错误,不能发布" in refused.text
    assert live_number(app) == 1 and len(versions.history(app.state.studio.engine)) == 1


def test_a_failing_flow_test_refuses_the_publish(app, project):
    (project / "flows" / "greeting.test.yaml").write_text(GREETING_TEST, encoding="utf-8")
    client, token = supervisor(app)
    edit(project, HOTLINE, "-> to_agent", "-> to_agent ")      # something to publish; the test passes
    page = client.get("/workspace/publish").text
    assert '<tr class="passed">' in page and "1 个通过,0 个失败" in page
    edit(project, HOTLINE, OLD_GREETING, NEW_GREETING)
    page = client.get("/workspace/publish").text
    assert '<tr class="failed">' in page and "个流程测试没有通过(陌生号码听到欢迎语,按 9 转英文热线)" in page
    assert not publish_button_enabled(page)
    refused = client.post("/workspace/publish", data={"csrf_token": token}, follow_redirects=False)
    assert refused.status_code == 422 and "流程测试没有通过" in refused.text
    assert live_number(app) == 1


def test_a_migration_that_would_lose_data_refuses_the_publish(app, project):
    edit(project, "schemas/customer.schema", 'notes: text max 500', 'notes: text max 100')
    client, token = supervisor(app)
    page = client.get("/workspace/publish").text
    assert 'id="migration-refusals"' in page and "changing field notes of Customer" in page
    assert not publish_button_enabled(page)
    refused = client.post("/workspace/publish", data={"csrf_token": token}, follow_redirects=False)
    assert refused.status_code == 422 and "数据库迁移会丢失数据,不能发布" in refused.text
    assert live_number(app) == 1


def test_a_new_field_is_migrated_and_rolling_back_over_it_is_refused(app, project):
    edit(project, "schemas/customer.schema", '    notes: text max 500 label "备注"\n',
         '    notes: text max 500 label "备注"\n    wechat: text max 40 label "微信"\n')
    client, token = supervisor(app)
    page = client.get("/workspace/publish").text
    assert "Customer: add field wechat" in page and "修改数据实体 Customer" in page
    client.post("/workspace/publish", data={"csrf_token": token}, follow_redirects=False)
    assert "wechat" in {f.name for f in app.state.studio.bundle.entities["Customer"].fields}
    refused = client.post("/workspace/rollback", data={"csrf_token": token, "number": "1"}, follow_redirects=False)
    assert refused.status_code == 409
    assert "回滚到版本 1 需要把数据库改回当时的结构,这会丢失数据" in refused.text and "wechat" in refused.text
    assert live_number(app) == 2


def test_people_who_may_not_edit_may_not_publish_or_roll_back(app):
    client = TestClient(app)
    log_in(client, "li_na")
    assert client.get("/workspace/publish").status_code == 403
    token = re.search(r'"X-CSRF-Token": "([^"]+)"', client.get("/crm/customer").text).group(1)
    assert client.post("/workspace/publish", data={"csrf_token": token}).status_code == 403
    assert client.post("/workspace/rollback", data={"csrf_token": token, "number": "1"}).status_code == 403


def test_a_publish_without_the_csrf_token_is_refused(app, project):
    edit(project, HOTLINE, OLD_GREETING, NEW_GREETING)
    client, _ = supervisor(app)
    assert client.post("/workspace/publish", data={}).status_code == 403
    assert client.post("/workspace/rollback", data={"number": "1"}).status_code == 403
    assert live_number(app) == 1


def test_rolling_back_to_a_version_that_does_not_exist_says_so(app):
    client, token = supervisor(app)
    refused = client.post("/workspace/rollback", data={"csrf_token": token, "number": "9"}, follow_redirects=False)
    assert refused.status_code == 409 and "没有版本 9" in refused.text


def test_a_comment_alone_is_a_version_too_with_no_change_to_the_flows(app, project):
    edit(project, HOTLINE, OLD_GREETING, OLD_GREETING)
    (project / HOTLINE).write_text("# 欢迎语经法务审核\n" + (project / HOTLINE).read_text(encoding="utf-8"),
                                   encoding="utf-8")
    client, token = supervisor(app)
    page = client.get("/workspace/publish").text
    assert 'data-path="flows/hotline.flow"' in page and 'id="changes"' not in page
    assert publish_button_enabled(page)
    before = app.state.studio.bundle.hash
    assert client.post("/workspace/publish", data={"csrf_token": token}, follow_redirects=False).status_code == 303
    assert live_number(app) == 2 and app.state.studio.bundle.hash == before


def test_a_version_that_cannot_be_recorded_leaves_the_tables_as_they_were(app, project, monkeypatch):
    """The migration and the version it serves are one transaction: when recording the version
    fails, the new column is not there either, and the live version stays."""
    from runtime.crm import migrate
    from studio import release

    edit(project, "schemas/customer.schema", '    notes: text max 500 label "备注"\n',
         '    notes: text max 500 label "备注"\n    wechat: text max 40 label "微信"\n')
    engine = app.state.studio.engine
    candidate = release.check(project, engine)
    assert not candidate.blockers
    deployed = len(migrate.history(engine))

    def broken(*args, **kwargs):
        raise RuntimeError("the disk is full")
    monkeypatch.setattr(versions, "publish_in", broken)
    with pytest.raises(RuntimeError):
        release.publish(engine, candidate, by="zhou_qiang", at=MONDAY_10)
    assert len(migrate.history(engine)) == deployed
    with engine.connect() as connection:
        columns = {c["name"] for c in sa_inspect(connection).get_columns("crm_customer")}
    assert "wechat" not in columns and "notes" in columns
    assert live_number(app) == 1
