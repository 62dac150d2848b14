"""Lists of records on SQLite and PostgreSQL: search, filters, sort, keyset pages both ways with
ties and empty values, the errors a tampered URL gets, and query plans that read an index."""
from __future__ import annotations

import itertools

import pytest
import sqlalchemy as sa

from bench.crm_list import customers
from runtime.crm.listing import ListQuery
from runtime.crm.records import Forbidden, Invalid, RecordStore
from runtime.crm.users import SYSTEM, users_from_bundle
from test_crm_records import bundle, engine  # noqa: F401 - the module's database, SQLite and PostgreSQL

ROWS = 3000


@pytest.fixture(scope="module")
def store(engine, bundle):  # noqa: F811
    store = RecordStore(engine, bundle)
    store.create_tables()
    rows = list(customers(ROWS))
    for i, row in enumerate(rows):  # ties and empty values to page through
        row["name"] = ["Ann", "ann", "Bob", None][i % 4] if i < 40 else row["name"]
        row["tier"] = None if i % 7 == 0 else row["tier"]
    with engine.begin() as connection:
        connection.execute(store.table("Customer").insert(), rows)
        connection.execute(sa.text("ANALYZE"))
    return store


def listed(store, **query):
    return store.list(SYSTEM, "Customer", ListQuery(**query))


def walk(store, **query) -> list[int]:
    """Every id, page by page forward."""
    ids, cursor = [], None
    while True:
        page = listed(store, after=cursor, **query)
        ids += [row["id"] for row in page.rows]
        if page.next is None:
            return ids
        cursor = page.next


def native_order(store, column: str, descending: bool) -> list[int]:
    """The order the database itself gives (NULLs where its index keeps them)."""
    table = store.table("Customer")
    order = [table.c[column].desc(), table.c.id.desc()] if descending else [table.c[column], table.c.id]
    with store.engine.connect() as connection:
        return [i for (i,) in connection.execute(sa.select(table.c.id).order_by(*order))]


@pytest.mark.parametrize("sort, descending", [("name", False), ("name", True), ("tier", False), ("tier", True),
                                              ("balance", True), ("id", False)])
def test_pages_give_every_row_once_in_order_with_ties_and_empty_values(store, sort, descending):
    ids = walk(store, sort=sort, descending=descending, limit=97)
    assert ids == native_order(store, sort, descending)


def test_previous_pages_retrace_the_next_ones(store):
    pages, cursor = [], None
    for _ in range(5):
        page = listed(store, sort="tier", limit=50, after=cursor)
        pages.append(page)
        cursor = page.next
    assert pages[0].previous is None and all(p.previous for p in pages[1:])
    back = listed(store, sort="tier", limit=50, before=pages[4].previous)
    assert [r["id"] for r in back.rows] == [r["id"] for r in pages[3].rows]
    first = listed(store, sort="tier", limit=50, before=pages[1].previous)
    assert [r["id"] for r in first.rows] == [r["id"] for r in pages[0].rows] and first.previous is None
    assert first.next is not None


def test_the_list_default_order_and_columns(store):
    page = listed(store, limit=5, count=True)
    assert [r["id"] for r in page.rows] == native_order(store, "name", False)[:5] and page.total == ROWS
    assert set(page.rows[0]) == {"id", "name", "phone", "tier", "status", "plan", "balance", "manager"}


def test_search_is_case_insensitive_contains_and_phone_prefix(store):
    found = listed(store, search="ANN", limit=500)
    assert {r["name"] for r in found.rows} == {"Ann", "ann"}
    some = store.get(SYSTEM, "Customer", 1234)
    by_prefix = listed(store, search=some["phone"][:9], limit=500).rows
    assert some["id"] in [r["id"] for r in by_prefix] and all(r["phone"].startswith(some["phone"][:9]) for r in by_prefix)
    assert listed(store, search=some["phone"][2:9]).rows == [] or all(
        some["phone"][2:9] not in r["phone"] or r["phone"].startswith(some["phone"][2:9]) for r in listed(store, search=some["phone"][2:9]).rows)
    both = listed(store, search="ann " + some["phone"][:3], limit=500).rows
    assert {r["name"] for r in both} == {"Ann", "ann"}
    assert listed(store, search="100%_x").rows == []


def test_filters_by_choice_name_or_label(store):
    gold = walk(store, filters={"tier": "金卡"})
    assert gold == walk(store, filters={"tier": "gold"}) and gold
    assert all(store.get(SYSTEM, "Customer", i)["tier"] == "gold" for i in gold[:20])
    both = listed(store, filters={"tier": "gold", "status": "suspended"}, limit=500).rows
    assert all(r["tier"] == "gold" and r["status"] == "suspended" for r in both)
    assert listed(store, filters={"tier": ""}, limit=5).rows == listed(store, limit=5).rows


@pytest.mark.parametrize("query, field, message", [
    ({"sort": "birthday"}, "sort", "the list can be sorted by id, name, phone, tier, status, plan, balance, manager, not by 'birthday'"),
    ({"filters": {"plan": "5G"}}, "plan", "the list can be filtered by tier, status, manager, not by 'plan'"),
    ({"filters": {"tier": "diamond"}}, "tier", "客户等级 must be one of 白金 (platinum), 金卡 (gold), 星级 (star), 普通 (general)"),
    ({"filters": {"manager": "x"}}, "manager", "客户经理 must be the id of an AccountManager"),
    ({"after": "not-a-cursor"}, "cursor", "this page link is damaged; start again from the first page"),
    ({"list": "tickets"}, "list", "there is no list 'tickets' of Customer"),
])
def test_a_wrong_list_request_is_told_plainly(store, query, field, message):
    with pytest.raises(Invalid) as refused:
        listed(store, **query)
    assert refused.value.errors == {field: message}


def test_a_cursor_of_another_order_is_refused(store):
    cursor = listed(store, sort="name", limit=3).next
    with pytest.raises(Invalid) as refused:
        listed(store, sort="tier", after=cursor)
    assert refused.value.errors == {"cursor": "this page link no longer fits the list's order; start again from the first page"}


def test_who_may_not_read_gets_no_list(store, bundle):  # noqa: F811
    users = users_from_bundle(bundle)
    with pytest.raises(Forbidden, match="may not read"):
        store.list(users["li_na"], "SurveyResponse", ListQuery())
    assert store.list(users["sun_li"], "Customer", ListQuery(limit=1)).rows


# ------------------------------------------------------------------ query plans

def statements(store, run) -> list[tuple[str, object]]:
    """The SQL a call sends (text and parameters)."""
    sent = []
    listen = lambda conn, cursor, statement, parameters, context, many: sent.append((statement, parameters))  # noqa: E731
    sa.event.listen(store.engine, "before_cursor_execute", listen)
    try:
        run()
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", listen)
    return [(s, p) for s, p in sent if "ORDER BY" in s]


def plans(store, run) -> list[str]:
    explain = "EXPLAIN QUERY PLAN " if store.engine.dialect.name == "sqlite" else "EXPLAIN "
    with store.engine.connect() as connection:
        return ["\n".join(str(row[-1]) for row in connection.exec_driver_sql(explain + s, p))
                for s, p in statements(store, run)]


@pytest.mark.parametrize("query", [{}, {"descending": True}, {"sort": "tier"}, {"sort": "tier", "descending": True}],
                         ids=["name", "name desc", "tier", "tier desc"])
def test_a_deep_page_reads_the_sort_index_without_sorting(store, query):
    cursor = None
    for _ in range(3):
        cursor = listed(store, after=cursor, **query).next
    found = plans(store, lambda: listed(store, after=cursor, **query))
    assert found
    sort = query.get("sort", "name")
    for plan in found:  # the run of empty values is in id order: the primary key serves it as well
        assert f"ix_crm_customer_{sort}_id" in plan or "crm_customer_pkey" in plan or "INTEGER PRIMARY KEY" in plan, plan
        assert "TEMP B-TREE" not in plan and "Sort" not in plan, plan


def test_a_filtered_page_reads_an_index(store):
    """A filter with the list's own sort reads the index (filter, sort, id): on SQLite in page
    order with nothing to sort; PostgreSQL may sort the few rows of a small table it finds there."""
    cursor = listed(store, filters={"tier": "gold"}).next
    for plan in plans(store, lambda: listed(store, filters={"tier": "gold"}, after=cursor)):
        assert "ix_crm_customer_tier_name_id" in plan, plan
        assert "Seq Scan" not in plan and "SCAN crm_customer\n" not in plan + "\n", plan
        assert "TEMP B-TREE" not in plan, plan


@pytest.mark.parametrize("sort", ["balance", "plan", "status", "manager"])
def test_every_column_of_the_list_sorts_from_its_own_index(store, sort):
    cursor = listed(store, sort=sort, descending=True).next
    for plan in plans(store, lambda: listed(store, sort=sort, descending=True, after=cursor)):
        assert f"ix_crm_customer_{sort}_id" in plan or "crm_customer_pkey" in plan or "PRIMARY KEY" in plan, plan
        assert "TEMP B-TREE" not in plan and "Sort" not in plan, plan


def test_phone_prefix_search_uses_the_phone_index(store):
    found = plans(store, lambda: store.list(SYSTEM, "AccountManager", ListQuery()) and None)
    assert found  # the managers list reads its own sort index
    table = store.table("Customer")
    prefix = sa.select(table.c.id).where(table.c.phone >= "1380", table.c.phone < "1381")
    with store.engine.connect() as connection:
        compiled = prefix.compile(connection, compile_kwargs={"literal_binds": True})
        explain = "EXPLAIN QUERY PLAN " if store.engine.dialect.name == "sqlite" else "EXPLAIN "
        plan = "\n".join(str(r[-1]) for r in connection.exec_driver_sql(explain + str(compiled)))
    assert "uq_crm_customer_phone" in plan or "sqlite_autoindex_crm_customer" in plan, plan
