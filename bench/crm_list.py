"""List view and search latency on 1,000,000 customers, in SQLite and in PostgreSQL.

    .venv/bin/python bench/crm_list.py [--rows 1000000] [--runs 100] [--only sqlite|postgresql]

Fills the example project's Customer table (SQLite: a temporary file; PostgreSQL: a schema of its
own, dropped at the end) with multi-row inserts, then times the store's list pages as the studio
asks for them: p50 and p99 in milliseconds.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from compiler import compile_project  # noqa: E402
from runtime.crm.listing import ListQuery, create_search_indexes  # noqa: E402
from runtime.crm.records import RecordStore  # noqa: E402
from runtime.crm.users import SYSTEM  # noqa: E402

POSTGRES = os.environ.get("FLOWDESK_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华玉萍红娥玲芬燕彬鹏辉斌宇浩凯健俊帆"
TIERS = ["platinum"] * 2 + ["gold"] * 8 + ["star"] * 30 + ["general"] * 60
PLANS = ["畅享 5G 套餐", "4G 飞享", "亲情融合", "宽带融合 199", "学生卡"]
CHUNK = 20_000
T0 = dt.datetime(2018, 1, 1, tzinfo=dt.timezone.utc)


def customers(count: int, seed: int = 7):
    rng = random.Random(seed)
    for i in range(count):
        at = T0 + dt.timedelta(seconds=i * 240)
        yield {"name": rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2)))),
               "phone": f"13{(i * 7919) % 10**9:09d}", "tier": rng.choice(TIERS),
               "status": "active" if rng.random() < 0.95 else "suspended", "plan": rng.choice(PLANS),
               "balance": Decimal(rng.randrange(-5000, 50000)) / 100,
               "id_card": None if rng.random() < 0.3 else f"{rng.randrange(10**17):018d}",
               "vip_card": None, "created_at": at, "updated_at": at, "version": 1}


def fill(store: RecordStore, count: int) -> float:
    started = time.perf_counter()
    store.metadata.create_all(store.engine)
    table = store.table("Customer")
    rows = customers(count)
    with store.engine.begin() as connection:
        for index in table.indexes:  # filling first and indexing after is several times faster
            index.drop(connection)
        if connection.dialect.name == "postgresql":
            _copy(connection, table, rows)
        else:
            while chunk := [row for _, row in zip(range(CHUNK), rows)]:
                connection.execute(table.insert(), chunk)
        for index in table.indexes:
            index.create(connection)
    create_search_indexes(store.engine, store.bundle, store.metadata)  # the trigram table, filled in bulk
    with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        # what autovacuum would do soon after: statistics, and the visibility map for index-only reads
        connection.execute(sa.text("VACUUM ANALYZE" if connection.dialect.name == "postgresql" else "ANALYZE"))
    return time.perf_counter() - started


def _copy(connection, table, rows) -> None:
    """PostgreSQL's COPY: the fastest way in."""
    names = [c.name for c in table.columns if c.name != "id"]
    with connection.connection.cursor() as cursor:
        with cursor.copy(f'COPY {table.name} ({", ".join(f"{n!r}".replace(chr(39), chr(34)) for n in names)}) '
                         f"FROM STDIN") as copy:
            for row in rows:
                copy.write_row([row.get(n) for n in names])


def timed(call, runs: int) -> tuple[float, float]:
    times = []
    for i in range(runs):
        started = time.perf_counter()
        call(i)
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(len(times) * 0.99))]


def measure(store: RecordStore, runs: int) -> dict[str, tuple[float, float]]:
    rng = random.Random(11)
    listed = lambda **query: store.list(SYSTEM, "Customer", ListQuery(**query))  # noqa: E731
    cursor, deep_rows = None, 0
    for _ in range(499):  # the cursor of page 499, walked once
        page = listed(after=cursor)
        cursor, deep_rows = page.next, deep_rows + len(page.rows)
    plan_cursor = listed(sort="plan").next
    ones = [rng.choice([SURNAMES, GIVEN][i % 2]) for i in range(runs)]
    twos = [rng.choice(GIVEN) + rng.choice(GIVEN) for _ in range(runs)]
    threes = [rng.choice(SURNAMES) + rng.choice(GIVEN) + rng.choice(GIVEN) for _ in range(runs)]
    prefixes = [f"13{rng.randrange(10**5):05d}" for _ in range(runs)]
    cards = [f"{rng.randrange(10**6):06d}" for _ in range(runs)]
    tiers = ["platinum", "gold"]
    return {
        "first page, by name": timed(lambda i: listed(), runs),
        "page 500, by cursor": timed(lambda i: listed(after=cursor), runs),
        "tier filter + name sort": timed(lambda i: listed(filters={"tier": tiers[i % 2]}), runs),
        "sort by balance, desc": timed(lambda i: listed(sort="balance", descending=True), runs),
        "sort by plan, page 2": timed(lambda i: listed(sort="plan", after=plan_cursor), runs),
        "name search, 1 char": timed(lambda i: listed(search=ones[i]), runs),
        "name search, 2 chars": timed(lambda i: listed(search=twos[i]), runs),
        "name search, 3 chars": timed(lambda i: listed(search=threes[i]), runs),
        "phone prefix (7 digits)": timed(lambda i: listed(search=prefixes[i]), runs),
        "id card digits (6)": timed(lambda i: listed(search=cards[i]), runs),
        "1 char + tier filter": timed(lambda i: listed(search=ones[i], filters={"tier": tiers[i % 2]}), runs),
    }


def sqlite_engine(folder: str) -> sa.Engine:
    engine = sa.create_engine(f"sqlite:///{folder}/crm.db")

    @sa.event.listens_for(engine, "connect")
    def fast_fill(connection, record):  # a throw-away file: no need to survive a crash
        connection.execute("PRAGMA synchronous = OFF")
        connection.execute("PRAGMA journal_mode = MEMORY")
    return engine


def run(kind: str, rows: int, runs: int, bundle) -> dict[str, tuple[float, float]] | None:
    with tempfile.TemporaryDirectory() as folder:
        schema = f"bench_crm_{uuid.uuid4().hex[:8]}"
        admin = sa.create_engine(POSTGRES.replace("postgresql://", "postgresql+psycopg://"))
        if kind == "sqlite":
            engine = sqlite_engine(folder)
        else:
            with admin.begin() as connection:
                connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
            engine = sa.create_engine(admin.url, connect_args={
                "options": f"-csearch_path={schema} -cmaintenance_work_mem=512MB -cwork_mem=256MB"})
        try:
            store = RecordStore(engine, bundle)
            seconds = fill(store, rows)
            print(f"{kind}: {rows:,} customers filled in {seconds:.0f} s", flush=True)
            return measure(store, runs)
        finally:
            engine.dispose()
            if kind == "postgresql":
                with admin.begin() as connection:
                    connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--only", choices=["sqlite", "postgresql"])
    args = parser.parse_args()
    bundle = compile_project([ROOT / "flows", ROOT / "schemas"]).bundle
    results = {kind: run(kind, args.rows, args.runs, bundle)
               for kind in ["sqlite", "postgresql"] if args.only in (None, kind)}
    print(f"\nlist latency on {args.rows:,} customers, {args.runs} runs each, 50 rows a page (ms)")
    print(f"{'':28}" + "".join(f"{kind + ' p50':>16}{kind + ' p99':>16}" for kind in results))
    for name in next(iter(results.values())):
        print(f"{name:28}" + "".join(f"{results[k][name][0]:16.1f}{results[k][name][1]:16.1f}" for k in results))


if __name__ == "__main__":
    main()
