"""Role permissions on SQLite and PostgreSQL: the SQL filter and the check on a loaded record agree."""
from __future__ import annotations

import datetime
import random

import pytest
import sqlalchemy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from compiler import compile_project, ir
from runtime.crm.permissions import (Forbidden, RuleError, check_roles, forbidden, may, require, row_allowed,
                                     row_filter)
from runtime.crm.tables import crm_metadata, table_name
from runtime.crm.users import SYSTEM, users_from_bundle

from tests.conftest import database_engine

NOW = datetime.datetime(2026, 3, 2, 9, 0, tzinfo=datetime.timezone.utc)
TIERS = ["platinum", "gold", "star", "general"]


@pytest.fixture(scope="module")
def bundle():
    return compile_project(["flows", "schemas"]).bundle


@pytest.fixture(scope="module")
def people(bundle):
    return users_from_bundle(bundle)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def engine(request, tmp_path_factory):
    with database_engine(request.param, tmp_path_factory.mktemp("perm"), "perm") as engine:
        yield engine


@pytest.fixture(scope="module")
def crm(engine, bundle):
    """Managers for zhang_wei and chen_jing (and one without an agent's customers), customers of
    every tier with and without a manager, tickets with and without a customer."""
    metadata = crm_metadata(bundle)
    metadata.create_all(engine)
    t = {name: metadata.tables[table_name(name)] for name in ("AccountManager", "Customer", "Ticket")}
    stamp = {"created_at": NOW, "updated_at": NOW, "version": 1}
    rng = random.Random(5)
    with engine.begin() as conn:
        for i, agent in enumerate(["zhang_wei", "chen_jing", "zhao_min"], start=1):
            conn.execute(t["AccountManager"].insert().values(id=i, name=agent, phone=f"1390000000{i}", agent=agent,
                                                             on_duty=i != 2, **stamp))
        for i in range(1, 61):
            conn.execute(t["Customer"].insert().values(
                id=i, name=f"客户{i}", phone=f"1380000{i:04d}", tier=rng.choice(TIERS + [None]),
                manager=rng.choice([1, 2, 3, None]), status=rng.choice(["active", "suspended", None]),
                balance=rng.choice([None, 0, 50, 150]), **stamp))
        for i in range(1, 81):
            conn.execute(t["Ticket"].insert().values(
                id=i, customer=rng.choice(list(range(1, 61)) + [None] * 5), caller_phone="13800000000",
                category="complaint", state="new", **stamp))
    return metadata, t


def ids(engine, table, condition):
    query = select(table.c.id).order_by(table.c.id)
    if condition is not None:
        query = query.where(condition)
    with engine.connect() as conn:
        return list(conn.execute(query).scalars())


def rows(engine, table):
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(table).order_by(table.c.id))]


def fetcher(engine, metadata):
    def fetch(entity, record_id):
        table = metadata.tables[table_name(entity)]
        with engine.connect() as conn:
            found = conn.execute(select(table).where(table.c.id == record_id)).first()
        return dict(found._mapping) if found else None
    return fetch


def agree(bundle, engine, metadata, user, entity, access):
    """The ids the SQL filter keeps, after checking that the row check keeps exactly the same."""
    table = metadata.tables[table_name(entity)]
    kept = ids(engine, table, row_filter(bundle, user, entity, access, table, metadata))
    fetch = fetcher(engine, metadata)
    checked = [r["id"] for r in rows(engine, table) if row_allowed(bundle, user, entity, access, r, fetch)]
    assert kept == checked, (user.name, entity, access)
    return kept


# ------------------------------------------------------------------ may

def test_what_each_role_may_do(bundle, people):
    assert may(bundle, people["li_na"], "Ticket", "update")
    assert not may(bundle, people["li_na"], "Ticket", "delete")
    assert may(bundle, people["zhao_min"], "Ticket", "delete")
    assert not may(bundle, people["sun_li"], "Ticket", "update")
    assert may(bundle, people["sun_li"], "SurveyResponse", "read")
    assert not may(bundle, people["li_na"], "SurveyResponse", "read")
    assert may(bundle, SYSTEM, "AccountManager", "delete")


def test_refusals_say_who_may_not_do_what(bundle, people):
    with pytest.raises(Forbidden, match=r"^李娜 \(agent\) may not delete 工单$"):
        require(bundle, people["li_na"], "Ticket", "delete")
    with pytest.raises(Forbidden, match=r"^孙丽 \(qa\) may not update 客户$"):
        require(bundle, people["sun_li"], "Customer", "update")
    message = str(forbidden(bundle, people["zhang_wei"], "Customer", "read", 7))
    assert message == "张伟 (agent, account_manager) may not read 客户 #7"


def test_an_unknown_access_is_an_error(bundle, people):
    with pytest.raises(ValueError, match="unknown access 'erase'"):
        may(bundle, people["li_na"], "Ticket", "erase")


# ------------------------------------------------------------------ rows

def test_every_role_condition_of_the_example_translates(bundle):
    check_roles(bundle)


def test_account_manager_sees_only_their_own_key_accounts(bundle, engine, crm, people):
    metadata, t = crm
    # zhang_wei is also an agent, and agents read every customer: the account manager role alone.
    manager = people["zhang_wei"].__class__("zhang_wei", "张伟", ("account_manager",))
    seen = agree(bundle, engine, metadata, manager, "Customer", "read")
    expected = [r["id"] for r in rows(engine, t["Customer"]) if r["manager"] == 1 and r["tier"] in ("platinum", "gold")]
    assert seen == expected and seen
    assert agree(bundle, engine, metadata, manager, "Customer", "delete") == []
    own_tickets = agree(bundle, engine, metadata, manager, "Ticket", "update")
    customers = {r["id"]: r for r in rows(engine, t["Customer"])}
    assert own_tickets == [r["id"] for r in rows(engine, t["Ticket"])
                           if r["customer"] and customers[r["customer"]]["manager"] == 1]
    assert agree(bundle, engine, metadata, manager, "AccountManager", "read") == [1]


def test_a_role_without_where_gives_every_row(bundle, engine, crm, people):
    metadata, t = crm
    table = t["Customer"]
    # zhang_wei as agent reads every customer, whatever his account-manager line says.
    assert row_filter(bundle, people["zhang_wei"], "Customer", "read", table, metadata) is None
    assert row_filter(bundle, SYSTEM, "Customer", "delete", table, metadata) is None
    assert len(agree(bundle, engine, metadata, people["zhang_wei"], "Customer", "read")) == 60
    # ...but updates only his own key accounts: agent's update has no where either.
    assert row_filter(bundle, people["zhang_wei"], "Customer", "update", table, metadata) is None


def test_no_access_means_no_rows(bundle, engine, crm, people):
    metadata, _ = crm
    assert agree(bundle, engine, metadata, people["li_na"], "Ticket", "delete") == []
    assert agree(bundle, engine, metadata, people["sun_li"], "Ticket", "update") == []
    assert agree(bundle, engine, metadata, people["sun_li"], "AccountManager", "read") == []


@pytest.mark.parametrize("access", ["read", "create", "update", "delete"])
@pytest.mark.parametrize("entity", ["Customer", "Ticket", "AccountManager"])
def test_every_agent_filter_agrees_with_the_row_check(bundle, engine, crm, people, entity, access):
    metadata, _ = crm
    for user in people.values():
        agree(bundle, engine, metadata, user, entity, access)
        alone = [user.__class__(user.name, user.title, (role,)) for role in user.roles]
        for one_role in alone:
            agree(bundle, engine, metadata, one_role, entity, access)


# ------------------------------------------------------------------ generated conditions

def var(type_, *path):
    return ir.Var(type=type_, path=["@record", *path])


USER = ir.Var(type="agent", path=["@user"])
NONE = ir.Const(type="none", value=None)
TIER = "enum:Customer.tier"

atoms = st.one_of(
    st.lists(st.sampled_from(TIERS), min_size=1, max_size=3, unique=True).map(
        lambda chosen: ir.Op(type="bool", op="in", args=[var(TIER, "tier")] + [ir.Const(type=TIER, value=c) for c in chosen])),
    st.sampled_from(["==", "!="]).map(lambda op: ir.Op(type="bool", op=op, args=[var("agent", "manager", "agent"), USER])),
    st.sampled_from(["==", "!="]).map(lambda op: ir.Op(type="bool", op=op, args=[var("record:AccountManager", "manager"), NONE])),
    st.sampled_from(["active", "suspended", None]).map(
        lambda s: ir.Op(type="bool", op="==", args=[var("enum:Customer.status", "status"),
                                                      ir.Const(type="enum:Customer.status", value=s) if s else NONE])),
    st.just(var("bool", "manager", "on_duty")),
    st.sampled_from(["==", "!="]).map(lambda op: ir.Op(type="bool", op=op, args=[
        var("bool", "manager", "on_duty"), ir.Const(type="bool", value=True)])),
)
conditions = st.recursive(atoms, lambda inner: st.one_of(
    inner.map(lambda e: ir.Op(type="bool", op="not", args=[e])),
    st.tuples(st.sampled_from(["and", "or"]), inner, inner).map(lambda t: ir.Op(type="bool", op=t[0], args=[t[1], t[2]])),
), max_leaves=5)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(where=conditions)
def test_generated_conditions_agree_in_sql_and_on_rows(bundle, engine, crm, people, where):
    metadata, _ = crm
    role = ir.Role(name="probe", permissions=[ir.Permission(access=["read"], entity="Customer", where=where)])
    probing = bundle.model_copy(update={"roles": {"probe": role}})
    for name in ("zhang_wei", "chen_jing", "li_na"):
        agree(probing, engine, metadata, people[name].__class__(name, None, ("probe",)), "Customer", "read")


def test_several_lines_combine_with_or(bundle, engine, crm, people):
    metadata, t = crm
    lines = [ir.Permission(access=["read"], entity="Customer",
                           where=ir.Op(type="bool", op="==", args=[var(TIER, "tier"), ir.Const(type=TIER, value=tier)]))
             for tier in ("gold", "star")]
    probing = bundle.model_copy(update={"roles": {"probe": ir.Role(name="probe", permissions=lines)}})
    seen = agree(probing, engine, metadata, people["li_na"].__class__("x", None, ("probe",)), "Customer", "read")
    assert seen == [r["id"] for r in rows(engine, t["Customer"]) if r["tier"] in ("gold", "star")]


def test_a_condition_the_database_cannot_apply_is_refused_at_build_time(bundle):
    opened = ir.Fn(type="bool", name="open", args=[ir.Const(type="text", value="office")])
    bad = ir.Role(name="night", permissions=[ir.Permission(access=["read"], entity="Customer", where=opened)])
    with pytest.raises(RuleError, match=r"role night, Customer: the function open\(\) cannot be checked"):
        check_roles(bundle.model_copy(update={"roles": {"night": bad}}))
    through_text = ir.Op(type="bool", op="==", args=[var("text", "name", "x"), USER])
    odd = ir.Role(name="odd", permissions=[ir.Permission(access=["read"], entity="Customer", where=through_text)])
    with pytest.raises(RuleError, match="'name.x' \\(name is not a reference to follow\\)"):
        check_roles(bundle.model_copy(update={"roles": {"odd": odd}}))
