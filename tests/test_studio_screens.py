"""The studio over HTTP (Starlette's TestClient): log-in, CSRF, the generated CRM screens, and
permissions refused on the server.  SQLite throughout; create and list also on PostgreSQL."""
from __future__ import annotations

import datetime as dt
import re
import shutil
import stat
import uuid
from pathlib import Path

import pytest
import sqlalchemy

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

from starlette.testclient import TestClient  # noqa: E402

from runtime.crm.listing import ListQuery  # noqa: E402
from runtime.crm.users import SYSTEM  # noqa: E402
from studio.app import StudioError, create_app  # noqa: E402
from studio.auth import Throttle  # noqa: E402
from tests.conftest import postgres_schema

REPO = Path(__file__).resolve().parent.parent
PASSWORD = "correct horse"
# Monday 23 November 2026, 10:00 in Shanghai: inside office hours.
NOW = dt.datetime(2026, 11, 23, 2, 0, tzinfo=dt.timezone.utc)


def make_project(folder: Path, extra_schema: str | None = None, extra_role: str | None = None) -> Path:
    """The example project, where 张伟 is an account manager only (not also an agent), plus
    `extra_schema` with `extra_role` given to 孙丽."""
    for name in ("flows", "schemas"):
        shutil.copytree(REPO / name, folder / name)
    shutil.copy(REPO / "flowdesk.yaml", folder / "flowdesk.yaml")
    for test in (folder / "flows").glob("*.test.yaml"):
        test.unlink()
    agents = folder / "flows" / "agents.flow"
    text = agents.read_text(encoding="utf-8").replace("roles agent, account_manager\n    skills vip 4",
                                                      "roles account_manager\n    skills vip 4")
    if extra_schema:
        (folder / "schemas" / "extra.schema").write_text(extra_schema, encoding="utf-8")
        text = 'import "../schemas/extra.schema"\n' + text.replace("roles qa", f"roles qa, {extra_role}")
    agents.write_text(text, encoding="utf-8")
    return folder


class Studio:
    """A client for one person, with the app's record store at hand for setting things up."""

    def __init__(self, app):
        self.app = app
        self.client = TestClient(app, follow_redirects=False)
        self.store = app.state.studio.store

    def user(self, name):
        return self.app.state.studio.accounts.users[name]

    def csrf(self) -> str:
        page = self.client.get("/login")
        return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)

    def login(self, name: str, password: str = PASSWORD, next_: str = "/"):
        return self.client.post("/login", data={"user": name, "password": password, "next": next_,
                                                "csrf_token": self.csrf()})

    def post(self, url: str, data: dict | None = None, **kwargs):
        return self.client.post(url, data={**(data or {}), "csrf_token": self.token}, **kwargs)

    @property
    def token(self) -> str:
        page = self.client.get("/crm")
        return re.search(r'"X-CSRF-Token": "([^"]+)"', page.text).group(1)

    def customer(self, **fields) -> dict:
        return self.store.create(SYSTEM, "Customer", {"name": "客户", "phone": f"138{uuid.uuid4().int % 10**8:08d}",
                                                      **fields})


def open_studio(project: Path, db_url: str | None = None) -> Studio:
    app = create_app(project, db_url=db_url, clock=lambda: NOW)
    accounts = app.state.studio.accounts
    for name in accounts.users:
        accounts.set_password(name, PASSWORD)
    return Studio(app)


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    return make_project(tmp_path_factory.mktemp("project"))


@pytest.fixture
def studio(project, tmp_path) -> Studio:
    return open_studio(project, f"sqlite:///{tmp_path / 'crm.db'}")


@pytest.fixture
def managers(studio) -> dict[str, dict]:
    return {agent: studio.store.create(SYSTEM, "AccountManager", {"name": name, "phone": phone, "agent": agent})
            for agent, name, phone in [("zhang_wei", "张伟", "13900001001"), ("chen_jing", "陈静", "13900001002")]}


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def listed(html: str) -> list[str]:
    """The customers' names in a list page's table, in order."""
    body = re.search(r"<tbody>(.*?)</tbody>", html, re.S).group(1)
    return re.findall(r"客户\d\d", body)


def field_errors(html: str) -> dict[str, str]:
    """The messages shown beside fields, by field."""
    return dict(re.findall(r'data-error-for="(\w+)">([^<]+)<', html))


def input_value(html: str, name: str) -> str | None:
    found = re.search(rf'<input[^>]*name="{name}"[^>]*value="([^"]*)"', html)
    return found.group(1) if found else None


# ------------------------------------------------------------------ log-in, sessions, CSRF

def test_logged_out_pages_send_to_login_and_back(studio):
    page = studio.client.get("/crm/customer?q=li")
    assert page.status_code == 303
    assert page.headers["location"] == "/login?next=%2Fcrm%2Fcustomer%3Fq%3Dli"
    htmx = studio.client.get("/crm/customer", headers={"HX-Request": "true"})
    assert htmx.status_code == 401 and htmx.headers["HX-Redirect"].startswith("/login?next=")
    done = studio.login("李娜", next_="/crm/customer?q=li")       # the agent's title is a log-in too
    assert done.status_code == 303 and done.headers["location"] == "/crm/customer?q=li"
    assert studio.client.get("/crm/customer").status_code == 200


def test_wrong_password_is_refused_and_other_sites_are_not_a_next(studio):
    wrong = studio.login("li_na", "not the password")
    assert wrong.status_code == 400 and "用户名或密码不正确" in wrong.text
    assert studio.client.get("/crm/customer").status_code == 303
    unknown = studio.login("nobody")
    assert unknown.status_code == 400 and "用户名或密码不正确" in unknown.text
    done = studio.login("li_na", next_="//evil.example/steal")
    assert done.headers["location"] == "/"


def test_repeated_failures_make_the_name_wait(studio):
    clock = [1000.0]
    studio.app.state.studio.throttle = Throttle(clock=lambda: clock[0])
    for _ in range(5):
        assert studio.login("li_na", "wrong password").status_code == 400
    blocked = studio.login("li_na")
    assert blocked.status_code == 429 and "秒后再试" in blocked.text
    assert studio.login("wang_fang").status_code == 303        # only that name waits
    clock[0] += 301
    assert studio.login("li_na").status_code == 303


def test_session_cookie_and_secret_file(studio, project):
    page = studio.client.get("/login")
    cookie = page.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie
    secret = project / ".flowdesk" / "studio_secret"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600


def test_unsafe_requests_without_the_csrf_token_are_refused(studio):
    studio.login("zhao_min")
    data = {"caller_phone": "13800138000", "category": "complaint"}
    missing = studio.client.post("/crm/ticket/new", data=data)
    wrong = studio.client.post("/crm/ticket/new", data={**data, "csrf_token": "forged"})
    forged_header = studio.client.post("/crm/ticket/new", data=data, headers={"X-CSRF-Token": "forged"})
    for refused in (missing, wrong, forged_header):
        assert refused.status_code == 403 and "安全令牌" in refused.text
    assert studio.store.list(SYSTEM, "Ticket").rows == []
    by_header = studio.client.post("/crm/ticket/new", data=data, headers={"X-CSRF-Token": studio.token})
    assert by_header.status_code == 303
    assert len(studio.store.list(SYSTEM, "Ticket").rows) == 1


def test_login_itself_needs_the_token(studio):
    refused = studio.client.post("/login", data={"user": "li_na", "password": PASSWORD})
    assert refused.status_code == 403


def test_logout(studio):
    studio.login("li_na")
    assert studio.client.post("/logout").status_code == 403    # no token: still logged in
    assert studio.client.get("/crm/customer").status_code == 200
    assert studio.post("/logout").headers["location"] == "/login"
    assert studio.client.get("/crm/customer").status_code == 303


# ------------------------------------------------------------------ lists

def test_list_shows_labels_and_formats_values(studio, managers):
    studio.customer(name="刘德明", tier="platinum", balance="1250.5", manager=managers["zhang_wei"]["id"])
    studio.login("zhao_min")
    page = studio.client.get("/crm/customer")
    shown = text_of(page.text)
    assert "客户列表" in shown and "客户等级" in shown and "话费余额" in shown
    assert "刘德明" in shown and "白金" in shown and "¥1,250.50" in shown and "张伟" in shown
    assert "platinum" not in shown


def test_list_search_filter_sort_and_pages(studio):
    for n in range(30):
        studio.customer(name=f"客户{n:02d}", phone=f"1380000{n:04d}", tier="gold" if n % 3 == 0 else "general")
    studio.login("zhao_min")
    first = studio.client.get("/crm/customer")
    names = listed(first.text)
    assert names == [f"客户{n:02d}" for n in range(25)]
    next_link = re.search(r'rel="next" href="([^"]+)"', first.text).group(1).replace("&amp;", "&")
    second = studio.client.get(next_link)
    assert listed(second.text) == [f"客户{n:02d}" for n in range(25, 30)]
    assert 'rel="next"' not in second.text
    back = re.search(r'rel="prev" href="([^"]+)"', second.text).group(1).replace("&amp;", "&")
    assert listed(studio.client.get(back).text) == names

    found = studio.client.get("/crm/customer", params={"q": "客户07"})
    assert listed(found.text) == ["客户07"]
    gold = studio.client.get("/crm/customer", params={"f_tier": "gold"})
    assert listed(gold.text) == [f"客户{n:02d}" for n in range(0, 30, 3)]
    by_phone = studio.client.get("/crm/customer", params={"sort": "phone", "desc": "1"})
    assert listed(by_phone.text)[:2] == ["客户29", "客户28"]


def test_list_answers_htmx_with_the_table_only(studio):
    studio.customer(name="王秀英")
    studio.login("li_na")
    part = studio.client.get("/crm/customer", params={"q": "王"}, headers={"HX-Request": "true", "HX-Target": "table"})
    assert part.status_code == 200 and part.text.lstrip().startswith('<div id="table">')
    assert "<html" not in part.text and "王秀英" in part.text


def test_a_bad_sort_is_a_plain_error(studio):
    studio.login("li_na")
    page = studio.client.get("/crm/customer", params={"sort": "id_card"})
    assert page.status_code == 400 and "无法显示列表" in page.text


# ------------------------------------------------------------------ create and edit

def test_create_with_errors_keeps_what_was_typed(studio):
    studio.login("li_na")
    typed = {"name": "王小明", "phone": "12ab", "email": "not-an-email", "address": "北京市朝阳区"}
    page = studio.post("/crm/customer/new", typed)
    assert page.status_code == 400
    errors = field_errors(page.text)
    assert set(errors) == {"phone", "email"}
    assert "手机号码" in errors["phone"] and "电子邮箱" in errors["email"]
    assert input_value(page.text, "name") == "王小明" and input_value(page.text, "phone") == "12ab"
    assert "北京市朝阳区</textarea>" in page.text
    assert studio.store.list(SYSTEM, "Customer").rows == []
    fixed = studio.post("/crm/customer/new", {**typed, "phone": "13800138000", "email": "x@example.com"})
    assert fixed.status_code == 303
    created = studio.client.get(fixed.headers["location"])
    assert "王小明" in created.text and "13800138000" in created.text


def test_required_fields_are_named(studio):
    studio.login("li_na")
    page = studio.post("/crm/ticket/new", {"description": "没有号码"})
    assert page.status_code == 400
    assert set(field_errors(page.text)) == {"caller_phone", "category"}
    assert "没有号码</textarea>" in page.text


def test_edit_conflict_names_who_and_keeps_the_input(studio):
    record = studio.customer(name="李强", plan="畅享 128")
    studio.login("li_na")
    form = studio.client.get(f"/crm/customer/{record['id']}/edit")
    assert input_value(form.text, "version") == "1"
    studio.store.update(studio.user("wang_fang"), "Customer", record["id"], {"plan": "畅享 58"})
    stale = studio.post(f"/crm/customer/{record['id']}/edit", {"name": "李强强", "plan": "全球通", "version": "1"})
    assert stale.status_code == 409
    assert "已被他人修改" in stale.text and "wang_fang" in stale.text
    assert input_value(stale.text, "name") == "李强强" and input_value(stale.text, "plan") == "全球通"
    assert studio.store.get(SYSTEM, "Customer", record["id"])["plan"] == "畅享 58"
    again = studio.post(f"/crm/customer/{record['id']}/edit",
                        {"name": "李强强", "plan": "全球通", "version": input_value(stale.text, "version")})
    assert again.status_code == 303
    saved = studio.store.get(SYSTEM, "Customer", record["id"])
    assert (saved["name"], saved["plan"]) == ("李强强", "全球通")
    history = text_of(studio.client.get(f"/crm/customer/{record['id']}").text)
    assert "李娜 修改 套餐 畅享 58 全球通" in history and "王芳 修改 套餐 畅享 128 畅享 58" in history


def test_readonly_and_hidden_fields_are_not_written(studio):
    record = studio.customer(name="赵丽", tier="general", balance="10")
    studio.login("li_na")
    form = studio.client.get(f"/crm/customer/{record['id']}/edit")
    assert 'name="balance"' not in form.text and 'name="vip_card"' not in form.text
    studio.post(f"/crm/customer/{record['id']}/edit", {"name": "赵丽", "balance": "99999", "vip_card": "VIP9",
                                                       "version": "1"})
    saved = studio.store.get(SYSTEM, "Customer", record["id"])
    assert str(saved["balance"]) == "10.00" and saved["vip_card"] is None


CONDITIONAL = '''
entity Visit "回访" {
    channel: enum(phone "电话", home "上门") required label "方式"
    address: text max 100 label "地址"
    note: text max 100 label "说明"
}

form visit_card for Visit "回访" {
    section "回访" {
        channel
        address when channel == home
        note
    }
}

role visitor "回访员" {
    read, create, update Visit
}
'''


def test_conditional_fields_follow_the_typed_values(tmp_path):
    project = make_project(tmp_path / "project", CONDITIONAL, "visitor")
    studio = open_studio(project)
    studio.login("sun_li")
    new = studio.client.get("/crm/visit/new")
    assert 'name="address"' not in new.text
    # Only the field the condition reads asks for the form again when it changes.
    assert re.search(r'<select id="f-channel"[^>]*hx-post="/crm/visit/form"', new.text)
    assert not re.search(r'<input id="f-note"[^>]*hx-post', new.text)
    live = studio.post("/crm/visit/form", {"channel": "home", "note": "下午三点后"})
    assert 'name="address"' in live.text and input_value(live.text, "note") == "下午三点后"
    assert "<html" not in live.text
    hidden = studio.post("/crm/visit/form", {"channel": "phone", "address": "不应保存", "note": "x"})
    assert 'name="address"' not in hidden.text
    saved = studio.post("/crm/visit/new", {"channel": "phone", "address": "不应保存", "note": "x"})
    assert saved.status_code == 303
    assert studio.store.list(SYSTEM, "Visit").rows[0].get("address") is None
    studio.post("/crm/visit/new", {"channel": "home", "address": "和平路 1 号"})
    assert {r.get("address") for r in studio.store.list(SYSTEM, "Visit").rows} == {None, "和平路 1 号"}


def test_entity_without_form_or_list_gets_default_screens(tmp_path):
    bare = CONDITIONAL.split("form visit_card")[0] + 'role visitor "回访员" {\n    read, create, update Visit\n}\n'
    project = make_project(tmp_path / "project", bare, "visitor")
    studio = open_studio(project)
    studio.login("sun_li")
    form = studio.client.get("/crm/visit/new")
    assert all(f'name="{n}"' in form.text for n in ("channel", "address", "note"))
    assert studio.post("/crm/visit/new", {"channel": "home", "address": "和平路"}).status_code == 303
    listed = text_of(studio.client.get("/crm/visit").text)
    assert "方式" in listed and "上门" in listed and "和平路" in listed


def test_reference_fields_pick_by_search(studio, managers):
    studio.login("zhao_min")
    matches = studio.client.get("/crm/account_manager/pick", params={"field": "manager", "manager__search": "陈"})
    assert "陈静" in matches.text and "张伟" not in matches.text
    chosen = studio.client.get("/crm/account_manager/pick",
                               params={"field": "manager", "choose": managers["chen_jing"]["id"]})
    assert input_value(chosen.text, "manager") == str(managers["chen_jing"]["id"])
    assert input_value(chosen.text, "manager__search") == "陈静"
    ticket = studio.post("/crm/ticket/new", {"caller_phone": "13800138000", "category": "inquiry",
                                             "customer": str(studio.customer(name="周杰")["id"])})
    assert "周杰" in studio.client.get(ticket.headers["location"]).text


# ------------------------------------------------------------------ workflows

def ticket(studio, **fields) -> dict:
    return studio.store.create(SYSTEM, "Ticket", {"caller_phone": "13800138000", "category": "complaint", **fields})


def buttons(html: str) -> set[str]:
    return set(re.findall(r'name="transition" value="(\w+)"', html))


def test_transition_buttons_follow_roles_and_move_the_ticket(studio):
    record = ticket(studio)
    studio.login("li_na")
    page = studio.client.get(f"/crm/ticket/{record['id']}")
    assert buttons(page.text) == {"take"}
    assert "新建" in page.text and "first_response" in page.text
    taken = studio.post(f"/crm/ticket/{record['id']}/transition/take")
    assert taken.status_code == 303
    page = studio.client.get(taken.headers["location"])
    assert re.search(r'id="state">已分派<', page.text) and buttons(page.text) == {"start"}
    assert studio.store.get(SYSTEM, "Ticket", record["id"])["assignee"] == "li_na"
    studio.post(f"/crm/ticket/{record['id']}/transition/start")
    assert studio.store.get(SYSTEM, "Ticket", record["id"])["state"] == "in_progress"
    assert "流转 状态 已分派 处理中" in text_of(studio.client.get(f"/crm/ticket/{record['id']}").text)


def test_refused_transitions_say_why_and_change_nothing(studio):
    record = ticket(studio)
    studio.login("li_na")
    not_mine = studio.post(f"/crm/ticket/{record['id']}/transition/assign")   # team leads only
    assert not_mine.status_code == 409 and "only 班组长, 值班主管 may" in not_mine.text
    studio.store.update(SYSTEM, "Ticket", record["id"], {"assignee": "li_na"})
    studio.store.transition(studio.user("zhao_min"), "Ticket", record["id"], "assign")
    studio.post(f"/crm/ticket/{record['id']}/transition/start")
    unresolved = studio.post(f"/crm/ticket/{record['id']}/transition/resolve")   # no resolution yet
    assert unresolved.status_code == 409 and "无法执行:解决 needs resolution != none" in unresolved.text
    assert studio.store.get(SYSTEM, "Ticket", record["id"])["state"] == "in_progress"


# ------------------------------------------------------------------ permissions on the server

def test_an_agent_cannot_delete_a_ticket(studio):
    record = ticket(studio)
    studio.login("li_na")
    page = studio.client.get(f"/crm/ticket/{record['id']}")
    assert "/delete" not in page.text
    by_delete = studio.client.delete(f"/crm/ticket/{record['id']}", headers={"X-CSRF-Token": studio.token})
    by_form = studio.post(f"/crm/ticket/{record['id']}/delete")
    confirm = studio.client.get(f"/crm/ticket/{record['id']}/delete")
    for refused in (by_delete, by_form, confirm):
        assert refused.status_code == 403 and "无权操作" in refused.text
    assert studio.store.get(SYSTEM, "Ticket", record["id"])["id"] == record["id"]


def test_a_team_lead_deletes_after_confirming(studio):
    record = ticket(studio)
    studio.login("zhao_min")
    confirm = studio.client.get(f"/crm/ticket/{record['id']}/delete")
    assert confirm.status_code == 200 and "确认删除" in confirm.text
    done = studio.post(f"/crm/ticket/{record['id']}/delete")
    assert done.status_code == 303 and done.headers["location"] == "/crm/ticket"
    assert studio.store.list(SYSTEM, "Ticket").rows == []


def test_account_managers_see_only_their_own_key_accounts(studio, managers):
    mine = studio.customer(name="我的客户", tier="gold", manager=managers["zhang_wei"]["id"])
    theirs = studio.customer(name="别人的客户", tier="gold", manager=managers["chen_jing"]["id"])
    studio.login("zhang_wei")
    listed = studio.client.get("/crm/customer").text
    assert "我的客户" in listed and "别人的客户" not in listed
    assert studio.client.get(f"/crm/customer/{mine['id']}").status_code == 200
    other = studio.client.get(f"/crm/customer/{theirs['id']}")
    assert other.status_code == 403 and "别人的客户" not in other.text
    changed = studio.post(f"/crm/customer/{theirs['id']}/edit", {"name": "改名", "version": "1"})
    assert changed.status_code == 403
    assert studio.store.get(SYSTEM, "Customer", theirs["id"])["name"] == "别人的客户"


def test_a_forbidden_read_and_write_are_refused(studio, managers):
    theirs = studio.customer(name="别人的客户", tier="gold", manager=managers["chen_jing"]["id"])
    studio.login("sun_li")                                       # quality staff: read only
    assert studio.client.get("/crm/customer/new").status_code == 403
    refused = studio.post(f"/crm/customer/{theirs['id']}/edit", {"name": "改名", "version": "1"})
    assert refused.status_code == 403
    assert studio.store.get(SYSTEM, "Customer", theirs["id"])["name"] == "别人的客户"
    assert studio.client.get("/crm/account_manager").status_code == 403   # qa may not read managers
    made = studio.post("/crm/ticket/new", {"caller_phone": "13800138000", "category": "complaint"})
    assert made.status_code == 403 and studio.store.list(SYSTEM, "Ticket").rows == []


def test_navigation_lists_only_what_the_user_may_read(studio):
    studio.login("sun_li")
    nav = re.search(r"<nav>(.*?)</nav>", studio.client.get("/crm/customer").text, re.S).group(1)
    assert "/crm/customer" in nav and "/crm/ticket" in nav and "/crm/account_manager" not in nav


def test_unknown_entities_and_records(studio):
    studio.login("li_na")
    assert studio.client.get("/crm/nothing").status_code == 404
    assert studio.client.get("/crm/customer/999").status_code == 404


# ------------------------------------------------------------------ starting

def test_a_project_that_does_not_compile_is_refused_plainly(tmp_path):
    project = make_project(tmp_path / "project")
    (project / "schemas" / "broken.schema").write_text('entity Broken "坏" {\n    x: nosuchtype\n}\n')
    with pytest.raises(StudioError, match="does not compile"):
        create_app(project)


def test_the_default_database_is_the_projects(tmp_path):
    project = make_project(tmp_path / "project")
    app = create_app(project)
    assert str(app.state.studio.engine.url).endswith(".flowdesk/flowdesk.db")
    with app.state.studio.engine.connect() as connection:
        tables = set(sqlalchemy.inspect(connection).get_table_names())
    assert {"calls", "crm_customer", "crm_ticket", "crm_users", "crm_audit"} <= tables


# ------------------------------------------------------------------ PostgreSQL

@pytest.fixture(scope="module")
def postgres_url():
    with postgres_schema("studio") as url:
        yield url


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_create_and_list_on_both_databases(backend, project, tmp_path, request):
    url = request.getfixturevalue("postgres_url") if backend == "postgresql" else f"sqlite:///{tmp_path / 'crm.db'}"
    studio = open_studio(project, url)
    try:
        studio.login("li_na")
        made = studio.post("/crm/customer/new", {"name": "刘备", "phone": "13800138001", "plan": "全球通"})
        assert made.status_code == 303, made.text
        bad = studio.post("/crm/customer/new", {"name": "关羽", "phone": "13800138001"})   # phone is unique
        assert bad.status_code == 400 and input_value(bad.text, "name") == "关羽"
        studio.customer(name="刘禅", balance="58.2")
        page = text_of(studio.client.get("/crm/customer", params={"q": "刘"}).text)
        assert "刘备 13800138001 普通 正常 全球通" in page and "刘禅" in page and "¥58.20" in page
        assert len(studio.store.list(SYSTEM, "Customer", ListQuery()).rows) == 2
    finally:
        studio.client.close()
        studio.app.state.studio.engine.dispose()


# ------------------------------------------------------------------ CSV

def test_csv_export_and_import(studio):
    studio.customer(name="刘德明", phone="13800138001", balance="12.5")
    studio.login("zhao_min")
    exported = studio.client.get("/crm/customer/export.csv")
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    assert "刘德明" in exported.text and "手机号码" in exported.text.splitlines()[0]
    good = "name,phone,plan\n王秀英,13800138002,全球通\n刘德明,13800138001,畅享\n"
    done = studio.post("/crm/customer/import", {"key": "phone"},
                       files={"file": ("c.csv", good.encode(), "text/csv")})
    assert done.status_code == 200 and "新建 1 条,更新 1 条" in done.text
    assert {r["name"] for r in studio.store.list(SYSTEM, "Customer").rows} == {"刘德明", "王秀英"}


def test_a_csv_with_a_bad_row_applies_nothing_and_says_where(studio):
    studio.login("zhao_min")
    bad = "name,phone\n孙浩,13800138005\n,12ab\n"
    report = studio.post("/crm/customer/import", {"key": "id"}, files={"file": ("c.csv", bad.encode(), "text/csv")})
    assert report.status_code == 400 and "未导入任何记录" in report.text
    cells = text_of(re.search(r'<table class="import-errors">.*?</table>', report.text, re.S).group(0))
    assert "3 姓名" in cells and "3 手机号码" in cells
    assert studio.store.list(SYSTEM, "Customer").rows == []
    not_csv = studio.post("/crm/customer/import", {}, files={"file": ("c.csv", "姓名".encode("gbk"), "text/csv")})
    assert not_csv.status_code == 400 and "UTF-8" in not_csv.text


def test_import_needs_the_right_to_create(studio):
    studio.login("sun_li")
    refused = studio.post("/crm/customer/import", {}, files={"file": ("c.csv", b"name,phone\nx,13800138009\n", "text/csv")})
    assert refused.status_code == 403 and studio.store.list(SYSTEM, "Customer").rows == []
