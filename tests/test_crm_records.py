"""The CRM's record store on SQLite and PostgreSQL: validation, audit, version checks, unique
fields, permissions, workflow moves, and flows whose lookups read the database."""
from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from compiler import compile_project
from runtime import commands as c
from runtime.callcenter import CallCenter
from runtime.crm.records import Conflict, Forbidden, Invalid, NotFound, RecordStore, TransitionRefused
from runtime.crm.users import SYSTEM, users_from_bundle
from runtime.crm.validation import Validator, from_form

from ir_helpers import const, op, var  # noqa: E402
from tests.conftest import database_engine  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
UTC = dt.timezone.utc
T0 = dt.datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai


@pytest.fixture(scope="module")
def bundle():
    return compile_project([ROOT / "flows", ROOT / "schemas"]).bundle


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def engine(request, tmp_path_factory):
    """One database per test module: a SQLite file, or a PostgreSQL schema of its own."""
    with database_engine(request.param, tmp_path_factory.mktemp("crm"), "crm") as engine:
        yield engine


class Clock:
    def __init__(self):
        self.at = T0

    def __call__(self):
        self.at += dt.timedelta(seconds=1)
        return self.at


@pytest.fixture(scope="module")
def store(engine, bundle):
    store = RecordStore(engine, bundle, now=Clock())
    store.create_tables()
    return store


@pytest.fixture(scope="module")
def users(bundle):
    return users_from_bundle(bundle)


def phone(n: int = None) -> str:
    """A phone number no other test uses (the tables are shared by the module)."""
    return "139" + (f"{n:08d}" if n is not None else uuid.uuid4().int.__str__()[:8])


def customer(store, **fields):
    return store.create(SYSTEM, "Customer", {"name": "张三", "phone": phone(), **fields})


# ------------------------------------------------------------------ validation (no database)

def test_form_values_become_typed_values(bundle):
    form = {"name": " 张三 ", "phone": "+86 138-0013-8000", "tier": "金卡", "balance": "1,234.50",
            "suspended_at": "2026-11-23T09:30", "joined": "2020-01-02", "email": "zs@example.cn",
            "id_card": "", "csrf": "x"}
    values = Validator(bundle).validate("Customer", from_form(bundle.entities["Customer"], form), creating=True)
    assert values["name"] == "张三" and values["phone"] == "+8613800138000" and values["tier"] == "gold"
    assert values["balance"] == Decimal("1234.50") and values["id_card"] is None
    # naive times are read in the project's zone (Asia/Shanghai, from its hours) and kept in UTC
    assert values["suspended_at"] == dt.datetime(2026, 11, 23, 1, 30, tzinfo=UTC)
    assert values["joined"] == dt.date(2020, 1, 2)
    on = Validator(bundle).validate("AccountManager", {"on_duty": "是", "agent": "李娜"}, creating=False)
    assert on == {"on_duty": True, "agent": "li_na"}
    for word, meaning in [("on", True), ("1", True), ("true", True), ("否", False), ("off", False), ("0", False)]:
        assert Validator(bundle).validate("AccountManager", {"on_duty": word}, creating=False)["on_duty"] is meaning


@pytest.mark.parametrize("field, value, message", [
    ("name", "长" * 41, "姓名 is 41 characters long; at most 40 are allowed"),
    ("phone", "12", "手机号码 must be a phone number of 5 to 20 digits, optionally starting with +"),
    ("phone", "138abc", "手机号码 must be a phone number of 5 to 20 digits, optionally starting with +"),
    ("email", "zs@", "电子邮箱 must be an e-mail address like name@example.com"),
    ("tier", "diamond", "客户等级 must be one of 白金 (platinum), 金卡 (gold), 星级 (star), 普通 (general)"),
    ("balance", "12.345", "话费余额 has more than 2 decimal places"),
    ("balance", "lots", "话费余额 must be an amount of money, like 58.20"),
    ("balance", "NaN", "话费余额 must be an amount of money, like 58.20"),
    ("balance", "1" * 15, "话费余额 is too large"),
    ("monthly_spend", "-1", "月均消费 must be between 0 and 100000"),
    ("monthly_spend", "100000.01", "月均消费 must be between 0 and 100000"),
    ("joined", "2026-02-30", "入网日期 must be a date like 2026-11-23"),
    ("suspended_at", "yesterday", "停机时间 must be a date and time like 2026-11-23 09:30"),
    ("manager", "abc", "客户经理 must be the id of an AccountManager"),
    ("nickname", "x", "Customer has no field 'nickname'"),
    ("state", "new", "the state changes only through the workflow's transitions"),
    ("version", "3", "version is kept by the system and cannot be set"),
])
def test_each_wrong_value_is_told_in_plain_words(bundle, field, value, message):
    with pytest.raises(Invalid) as refused:
        Validator(bundle).validate("Customer", {field: value}, creating=False)
    assert refused.value.errors == {field: message}


def test_wrong_booleans_and_agents_are_refused(bundle):
    with pytest.raises(Invalid) as refused:
        Validator(bundle).validate("AccountManager", {"on_duty": "maybe", "agent": "nobody"}, creating=False)
    assert refused.value.errors["on_duty"] == "在岗 must be yes or no"
    assert refused.value.errors["agent"].startswith("坐席 must be one of the agents: chen_jing, li_na")


def test_required_fields_on_create_and_when_cleared(bundle):
    with pytest.raises(Invalid) as refused:
        Validator(bundle).validate("Customer", {"plan": "5G"}, creating=True)
    assert refused.value.errors == {"name": "姓名 is required", "phone": "手机号码 is required"}
    assert Validator(bundle).validate("Customer", {"plan": "5G"}, creating=False) == {"plan": "5G"}
    with pytest.raises(Invalid) as cleared:
        Validator(bundle).validate("Customer", from_form(bundle.entities["Customer"], {"name": ""}), creating=False)
    assert cleared.value.errors == {"name": "姓名 is required"}


# ------------------------------------------------------------------ the store

def test_create_gives_defaults_the_initial_state_and_an_audit_trail(store):
    made = customer(store, balance="58.2")
    assert made["tier"] == "general" and made["status"] == "active" and made["version"] == 1
    assert made["balance"] == Decimal("58.20") and made["created_at"].tzinfo is not None
    ticket = store.create(SYSTEM, "Ticket", {"caller_phone": made["phone"], "category": "投诉", "customer": made["id"]})
    assert ticket["state"] == "new" and ticket["priority"] == "normal" and ticket["customer"] == made["id"]
    logged = {e.field: (e.before, e.after) for e in store.history(SYSTEM, "Customer", made["id"])}
    assert logged["name"] == (None, "张三") and logged["balance"] == (None, "58.20") and logged["tier"] == (None, "general")
    assert {e.action for e in store.history(SYSTEM, "Customer", made["id"])} == {"create"}


def test_update_logs_each_changed_field_and_counts_the_version(store, users):
    made = customer(store, plan="4G")
    changed = store.update(users["li_na"], "Customer", made["id"], {"plan": "5G", "name": "张三"}, version=1)
    assert changed["plan"] == "5G" and changed["version"] == 2
    last = store.history(SYSTEM, "Customer", made["id"])[-1]
    assert (last.user, last.action, last.field, last.before, last.after) == ("li_na", "update", "plan", "4G", "5G")
    # nothing changed: nothing written, the version stays
    assert store.update(users["li_na"], "Customer", made["id"], {"plan": "5G"})["version"] == 2


def test_a_stale_version_is_a_conflict_naming_who_changed_the_record(store, users):
    made = customer(store)
    store.update(users["wang_fang"], "Customer", made["id"], {"plan": "5G"}, version=1)
    with pytest.raises(Conflict, match=rf"Customer {made['id']} was changed by wang_fang at 2026-11-23 10:\d\d after you opened it"):
        store.update(users["li_na"], "Customer", made["id"], {"plan": "4G"}, version=1)
    assert store.get(SYSTEM, "Customer", made["id"])["plan"] == "5G"


def test_a_taken_unique_value_names_the_record_that_has_it(store):
    first = customer(store, phone=phone(1))
    with pytest.raises(Invalid) as refused:
        customer(store, phone="139-0000-0001")
    assert refused.value.errors == {"phone": f"another Customer already has this 手机号码 (id {first['id']})"}
    other = customer(store)
    with pytest.raises(Invalid):
        store.update(SYSTEM, "Customer", other["id"], {"phone": phone(1)})


def test_a_failed_write_leaves_nothing_behind(store):
    before = len(store.list(SYSTEM, "Customer").rows)
    with pytest.raises(Invalid) as refused:
        store.create(SYSTEM, "Customer", {"name": "王五", "phone": phone(), "manager": 999999})
    assert refused.value.errors == {"manager": "客户经理: there is no AccountManager 999999"}
    assert len(store.list(SYSTEM, "Customer").rows) == before


def test_missing_records_and_entities_are_not_found(store):
    with pytest.raises(NotFound, match="there is no Customer 999999"):
        store.get(SYSTEM, "Customer", 999999)
    with pytest.raises(NotFound, match="there is no Customer 999999"):
        store.update(SYSTEM, "Customer", 999999, {"plan": "5G"})
    with pytest.raises(NotFound, match="there is no entity 'Client'"):
        store.get(SYSTEM, "Client", 1)


def test_delete_logs_the_values_and_clears_references(store, users):
    manager = store.create(SYSTEM, "AccountManager", {"name": "陈静", "phone": phone(), "agent": "chen_jing"})
    looked_after = customer(store, manager=manager["id"], tier="gold")
    store.delete(users["zhou_qiang"], "AccountManager", manager["id"])
    with pytest.raises(NotFound):
        store.get(SYSTEM, "AccountManager", manager["id"])
    gone = [e for e in store.history(SYSTEM, "AccountManager", manager["id"]) if e.action == "delete"]
    assert {(e.field, e.before, e.after) for e in gone} >= {("name", "陈静", None), ("agent", "chen_jing", None)}
    assert store.get(SYSTEM, "Customer", looked_after["id"])["manager"] is None
    assert store.history(SYSTEM, "Customer", looked_after["id"])[-1].field == "manager"


def test_roles_refuse_reads_and_writes_not_just_hide_them(store, users):
    mine = store.create(SYSTEM, "AccountManager", {"name": "张伟", "phone": phone(), "agent": "zhang_wei"})
    vip = customer(store, manager=mine["id"], tier="platinum")
    with pytest.raises(Forbidden, match="may not delete"):
        store.delete(users["li_na"], "Customer", vip["id"])
    with pytest.raises(Forbidden, match="may not update"):
        store.update(users["sun_li"], "Customer", vip["id"], {"plan": "x"})
    with pytest.raises(Forbidden, match="may not create"):
        store.create(users["sun_li"], "Customer", {"name": "x", "phone": phone()})
    # an account manager who is also an agent reads every customer; their own manager record only
    assert store.get(users["zhang_wei"], "AccountManager", mine["id"])["agent"] == "zhang_wei"
    other = store.create(SYSTEM, "AccountManager", {"name": "某", "phone": phone(), "agent": "wang_fang"})
    with pytest.raises(Forbidden):
        store.get(users["sun_li"], "AccountManager", other["id"])
    assert store.get(users["li_na"], "AccountManager", other["id"])["id"] == other["id"]
    assert store.get(users["li_na"], "Customer", vip["id"])["id"] == vip["id"]


def test_a_ticket_moves_through_its_workflow_with_the_moves_logged(store, users):
    ticket = store.create(users["li_na"], "Ticket", {"caller_phone": phone(), "category": "complaint"})
    taken = store.transition(users["li_na"], "Ticket", ticket["id"], "take")
    assert taken["state"] == "assigned" and taken["assignee"] == "li_na"
    started = store.transition(users["li_na"], "Ticket", ticket["id"], "start")
    assert started["state"] == "in_progress"
    moves = [(e.field, e.before, e.after) for e in store.history(SYSTEM, "Ticket", ticket["id"]) if e.action == "transition"]
    assert ("state", "new", "assigned") in moves and ("assignee", None, "li_na") in moves and ("state", "assigned", "in_progress") in moves
    with pytest.raises(TransitionRefused):
        store.transition(users["li_na"], "Ticket", ticket["id"], "resolve")  # no resolution yet
    assert store.get(SYSTEM, "Ticket", ticket["id"])["state"] == "in_progress"
    with pytest.raises(Invalid):
        store.update(users["li_na"], "Ticket", ticket["id"], {"state": "closed"})


def test_a_move_notifies_whom_its_actions_name_in_the_same_transaction(store, users):
    from runtime.crm import notifications
    with store.engine.connect() as connection:
        before = notifications.unread(connection, "wang_fang")
    ticket = store.create(users["zhao_min"], "Ticket", {"caller_phone": phone(), "category": "complaint",
                                                        "assignee": "wang_fang"})
    assigned = store.transition(users["zhao_min"], "Ticket", ticket["id"], "assign")
    assert assigned["state"] == "assigned"
    with store.engine.connect() as connection:
        assert notifications.unread(connection, "wang_fang") == before + 1
        notice = notifications.for_agent(connection, "wang_fang", limit=1)[0]
    assert (notice.entity, notice.record_id) == ("Ticket", ticket["id"]) and "投诉工单" in notice.message


# ------------------------------------------------------------------ the runtime's Crm protocol

def test_lookup_equals_in_sql_where_in_python_and_references_followed(store):
    manager = store.create(SYSTEM, "AccountManager", {"name": "赵", "phone": phone(), "agent": "zhao_min"})
    number = phone()
    store.create("Customer", {"name": "李四", "phone": number, "tier": "gold", "manager": {"id": manager["id"]}})
    found = store.lookup("Customer", {"phone": number}, None, ("manager",))
    assert found["name"] == "李四" and found["manager"]["agent"] == "zhao_min"
    gold = op("==", var("@record", "tier", type_="enum:Customer.tier"), const("enum:Customer.tier", "gold"))
    assert store.lookup("Customer", {"phone": number}, gold, ())["name"] == "李四"
    star = op("==", var("@record", "tier", type_="enum:Customer.tier"), const("enum:Customer.tier", "star"))
    assert store.lookup("Customer", {"phone": number}, star, ()) is None
    assert store.lookup("Customer", {"phone": "0000000"}, None, ()) is None
    with pytest.raises(ValueError, match="Customer has no field 'mobile' to look up by"):
        store.lookup("Customer", {"mobile": number}, None, ())
    updated = store.update("Customer", found["id"], {"plan": "畅享"})
    assert updated["plan"] == "畅享" and store.history(SYSTEM, "Customer", found["id"])[-1].user == "system"


def test_the_hotline_finds_a_caller_in_the_database_and_opens_a_ticket(store, bundle):
    number = phone()
    known = store.create(SYSTEM, "Customer", {"name": "王小明", "phone": number, "tier": "star"})
    at = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))  # a Monday, open
    center = CallCenter(bundle, epoch=at, crm=store, prompt_ms=lambda cmd: 0)
    center.start_call("c1", caller=number, flow="hotline", at=at)
    center.advance(at + dt.timedelta(seconds=1))
    center.press("c1", "2", at + dt.timedelta(seconds=2))   # complaints and suggestions
    center.press("c1", "1", at + dt.timedelta(seconds=3))   # a complaint: the flow opens a ticket
    center.advance(at + dt.timedelta(seconds=4))
    said = [m.command.text for m in center.take_outbox() if isinstance(m.command, c.Say)]
    ticket = store.lookup("Ticket", {"caller_phone": number}, None, ("customer",))
    assert ticket is not None and ticket["customer"]["id"] == known["id"] and ticket["state"] == "new"
    assert ticket["category"] == "complaint" and ticket["call_id"]
    assert f"您的投诉已登记,工单号是 {ticket['id']},请您记录。" in said
    assert store.history(SYSTEM, "Ticket", ticket["id"])[0].user == "system"


def test_times_are_kept_in_utc_whatever_zone_the_clock_gives(tmp_path):
    """A clock in Shanghai time (the studio's --at) must not shift the stored times by eight hours."""
    import datetime as dt
    from zoneinfo import ZoneInfo

    from sqlalchemy import create_engine

    from compiler import compile_project
    from runtime.crm.records import RecordStore
    from runtime.crm.users import SYSTEM

    bundle = compile_project(["flows", "schemas"]).bundle
    at = dt.datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
    store = RecordStore(create_engine(f"sqlite:///{tmp_path / 'crm.db'}"), bundle, now=lambda: at)
    store.create_tables()
    customer = store.create(SYSTEM, "Customer", {"name": "王小明", "phone": "13800138000"})
    again = store.get(SYSTEM, "Customer", customer["id"])
    assert again["created_at"] == at
    (entry, *_) = store.history(SYSTEM, "Customer", customer["id"])
    assert entry.at == at
