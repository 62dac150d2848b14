"""Search on SQLite and PostgreSQL finds exactly what a plain contains-search finds (A-Z without
case, phone numbers by prefix), on random records written, changed and deleted through the store,
for words of any length, with filters, sorts and pages; and each way of finding rows reads an
index."""
from __future__ import annotations

import random

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runtime.crm import search
from runtime.crm.listing import ListQuery
from runtime.crm.records import RecordStore
from runtime.crm.search import fold
from runtime.crm.users import SYSTEM
from test_crm_records import bundle, engine  # noqa: F401 - the module's database, SQLite and PostgreSQL

LETTERS = "aAbBzZ王伟芳李1%_\\.- é"
TEXT_FIELDS = ("name", "vip_card", "id_card")


def random_text(rng: random.Random, most: int) -> str:
    return "".join(rng.choice(LETTERS) for _ in range(rng.randint(1, most)))


@pytest.fixture(scope="module")
def store(engine, bundle):  # noqa: F811
    store = RecordStore(engine, bundle)
    store.create_tables()
    rng = random.Random(5)
    ids = []
    for i in range(240):
        ids.append(store.create(SYSTEM, "Customer", {
            "name": random_text(rng, 6).strip() or "王", "phone": f"13{rng.choice('0189')}{i:06d}",
            "vip_card": random_text(rng, 5) if rng.random() < 0.5 else None,
            "id_card": random_text(rng, 8) if rng.random() < 0.5 else None,
            "tier": rng.choice(["gold", "star", "general"])})["id"])
    for record_id in rng.sample(ids, 60):  # the triggers follow changes and deletions
        store.update(SYSTEM, "Customer", record_id, {"name": random_text(rng, 6).strip() or "李",
                                                     "vip_card": rng.choice([None, random_text(rng, 4)])})
    for record_id in rng.sample(ids, 30):
        store.delete(SYSTEM, "Customer", record_id)
    return store


def everyone(store) -> list[dict]:
    table = store.table("Customer")
    with store.engine.connect() as connection:
        return [dict(r._mapping) for r in connection.execute(sa.select(table))]


def expected(rows: list[dict], query: str, tier: str | None = None) -> set[int]:
    """A plain contains-search: every word in some text field (A-Z without case), or a phone prefix."""
    def has(row, word):
        digits = word.replace(" ", "").replace("-", "").replace("(", "").replace(")", "").replace(".", "")
        if digits.lstrip("+").isdigit() and row["phone"].startswith(digits):
            return True
        return any(row[f] is not None and fold(word) in fold(row[f]) for f in TEXT_FIELDS)
    return {r["id"] for r in rows if all(has(r, w) for w in query.split()) and tier in (None, r["tier"])}


def found(store, **query) -> list[int]:
    ids, cursor = [], None
    while True:
        page = store.list(SYSTEM, "Customer", ListQuery(after=cursor, limit=7, **query))
        ids += [r["id"] for r in page.rows]
        if page.next is None:
            return ids
        cursor = page.next


@pytest.fixture(params=["indexes", "walk"])
def thresholds(request, monkeypatch):
    """`walk`: every word counts as common, so pages come from reading the sort order a stretch at a
    time (and from the indexes when a stretch holds too few)."""
    if request.param == "walk":
        monkeypatch.setattr(search, "COMMON", 1)
        monkeypatch.setattr(search, "SCAN", 9)


words = st.text(alphabet=LETTERS, min_size=1, max_size=5).filter(lambda w: w.strip())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=st.lists(words, min_size=1, max_size=2).map(" ".join),
       tier=st.sampled_from([None, "gold"]), sort=st.sampled_from([None, "balance", "tier"]))
def test_search_finds_exactly_what_a_contains_search_finds(store, thresholds, query, tier, sort):
    got = found(store, search=query, filters={"tier": tier} if tier else {}, sort=sort)
    assert len(got) == len(set(got))
    assert set(got) == expected(everyone(store), query, tier)


def test_short_and_long_words_and_phone_prefixes(store, thresholds):
    rows = everyone(store)
    rng = random.Random(9)
    for row in rng.sample(rows, 25):
        for word in [row["name"][:1], row["name"][-2:], row["name"][1:4], row["phone"][:6], row["phone"][:3]]:
            if word.strip():
                assert set(found(store, search=word)) == expected(rows, word), word
                assert row["id"] in found(store, search=word) or not expected(rows, word) & {row["id"]}


def test_pages_of_a_search_follow_the_sort_without_repeats(store, thresholds):
    ids = found(store, search="a", sort="name")
    table = store.table("Customer")
    with store.engine.connect() as connection:
        order = [i for (i,) in connection.execute(sa.select(table.c.id).where(table.c.id.in_(ids))
                                                  .order_by(table.c.name, table.c.id))]
    assert ids == order


def test_words_no_record_holds_find_nothing(store):
    assert found(store, search="不存在的名字") == []
    assert found(store, search="%") == sorted(found(store, search="%"))[:0] + found(store, search="%")
    assert set(found(store, search="%")) == expected(everyone(store), "%")


# ------------------------------------------------------------------ each way reads an index

def plans_of(store, query: ListQuery) -> list[str]:
    sent = []
    listen = lambda conn, cursor, statement, parameters, context, many: sent.append((statement, parameters))  # noqa: E731
    sa.event.listen(store.engine, "before_cursor_execute", listen)
    try:
        store.list(SYSTEM, "Customer", query)
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", listen)
    explain = "EXPLAIN QUERY PLAN " if store.engine.dialect.name == "sqlite" else "EXPLAIN "
    with store.engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql("SET enable_seqscan = off")  # a tiny table: show what an index can serve
        return ["\n".join(str(row[-1]) for row in connection.exec_driver_sql(explain + s, p)) for s, p in sent]


@pytest.mark.parametrize("word", ["王", "伟芳", "ab1", "1380"])
def test_each_word_is_looked_up_in_an_index_not_read_from_every_row(store, word):
    plans = plans_of(store, ListQuery(search=word))
    assert any("crm_search__customer" in p for p in plans), plans
    for plan in plans:
        assert "SCAN crm_search__customer" not in plan and "SCAN crm_customer\n" not in plan + "\n", plan
        assert "Seq Scan" not in plan, plan


def test_the_index_follows_writes(store):
    made = store.create(SYSTEM, "Customer", {"name": "Qx欧阳", "phone": "13755500001"})
    assert made["id"] in found(store, search="qX")
    store.update(SYSTEM, "Customer", made["id"], {"name": "Zy"})
    assert made["id"] not in found(store, search="欧阳") and made["id"] in found(store, search="ZY")
    store.delete(SYSTEM, "Customer", made["id"])
    assert made["id"] not in found(store, search="zy")
    grams = search.grams_table("Customer")
    with store.engine.connect() as connection:
        left = connection.execute(sa.select(grams).where(grams.c.record_id == made["id"])).all()
    assert left == []
