"""An entity's list: search, filters, sort and keyset pagination that stays fast at any depth.

A page is found by where the last row stood, not by counting rows (no OFFSET): the cursor
carries the last row's sort value and id, and the next page is the rows after that pair in the
index (sort column, id) that tables.py makes for every sortable column.  Rows without a value
(NULL) come where the database's index keeps them (SQLite: lowest; PostgreSQL: highest), read
as a run of their own ordered by id, so that every page stays an index range scan.

Search (runtime.crm.search): each word must be in one of the list's search fields (contains,
case-insensitive for A-Z; a word of digits also finds phone numbers starting with it).  Rows are
found from the trigram and phone indexes, or, when the words are common, by reading the sort
order a bounded stretch at a time and checking each row.
"""
from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field
from sqlalchemy import Boolean, Date, DateTime, Integer, MetaData, Numeric, func, literal, select, tuple_
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.util import ClauseAdapter

from compiler import ir
from runtime.crm import search
from runtime.crm.validation import Invalid
from runtime.times import as_utc
from runtime.values import plain

if TYPE_CHECKING:
    from runtime.crm.records import RecordStore

MAX_LIMIT = 500


class ListQuery(BaseModel):
    list: str | None = None           # the list view; the entity's first list when not given
    search: str = ""
    filters: dict[str, str] = {}
    sort: str | None = None           # a column of the list; the list's own sort when not given
    descending: bool | None = None    # None: the list's own order
    after: str | None = None          # cursor: the page after this row
    before: str | None = None         # cursor: the page before this row
    limit: int = Field(50, ge=1, le=MAX_LIMIT)
    count: bool = False               # also count every matching row (slow on big tables)


class Page(BaseModel):
    rows: list[dict]
    next: str | None = None
    previous: str | None = None
    total: int | None = None


# ------------------------------------------------------------------ which list

def view_for(bundle: ir.Bundle, entity: str, name: str | None) -> ir.ListView:
    if name is not None:
        view = bundle.lists.get(name)
        if view is None or view.entity != entity:
            raise Invalid({"list": f"there is no list '{name}' of {entity}"})
        return view
    for view in bundle.lists.values():
        if view.entity == entity:
            return view
    fields = [f for f in bundle.entities[entity].fields if f.type != "list"]
    return ir.ListView(name=entity, entity=entity, columns=[f.name for f in fields],
                       filters=[f.name for f in fields if f.type in ("enum", "ref", "agent", "bool")],
                       search=[f.name for f in fields if f.type in ("text", "phone", "email")])


# ------------------------------------------------------------------ one page

def page(connection: Connection, store: RecordStore, entity: str, query: ListQuery,
         restrict: ColumnElement | None = None) -> Page:
    view = view_for(store.bundle, entity, query.list)
    table = store.table(entity)
    sort, descending = _order(view, table, query)
    column = table.c[sort]
    conditions = [c for c in [restrict, *_filters(store, entity, view, table, query.filters)] if c is not None]
    found = search.plan(connection, store.bundle, entity, view, table, query.search)
    shown = list(dict.fromkeys(["id", *[c for c in view.columns if c in table.c], sort]))
    read = list(dict.fromkeys(shown + (found.fields if found else [])))
    base = select(*[table.c[c] for c in read]).where(*conditions)
    nulls_low = connection.dialect.name == "sqlite"
    segments = (["values", "nulls"] if nulls_low == descending else ["nulls", "values"]) if column.nullable else ["values"]
    backward = query.before is not None
    key = _decode(query.before if backward else query.after, sort, descending, column)
    start = segments.index("nulls" if key and key[0] is None else "values") if key else (len(segments) - 1 if backward else 0)
    walk = segments[start::-1] if backward else segments[start:]
    rows: list[dict] = []
    for segment in walk:
        wanted = query.limit + 1 - len(rows)
        if wanted <= 0:
            break
        statement = _segment(base, column, table.c.id, segment, descending, backward,
                             key if segment == segments[start] else None)
        rows += [store.record(entity, r._mapping) for r in _matching(connection, statement, found, wanted)]
    more, rows = len(rows) > query.limit, rows[:query.limit]
    if backward:
        rows.reverse()
    cursor = lambda row: _encode(sort, descending, row[sort], row["id"])  # noqa: E731
    following = cursor(rows[-1]) if rows and (more or backward) else None
    preceding = cursor(rows[0]) if rows and ((more and backward) or (not backward and key)) else None
    if query.count:
        everything = conditions + ([found.narrowed] if found else [])
        total = connection.execute(select(func.count()).select_from(table).where(*everything)).scalar()
    else:
        total = None
    shown_rows = [{c: row[c] for c in shown if c in view.columns or c == "id"} for row in rows]
    return Page(rows=shown_rows, next=following, previous=preceding, total=total)


def _matching(connection: Connection, statement, found: search.Search | None, wanted: int):
    """The first `wanted` rows of `statement` that the search finds.  Common words: the first
    search.SCAN rows in page order are read and checked, which fills the page when matches are
    dense; otherwise (and when that stretch held too few) the rows come from the indexes."""
    if found is None:
        return connection.execute(statement.limit(wanted)).all()
    if found.common:
        stretch = statement.limit(search.SCAN).subquery()
        inside = ClauseAdapter(stretch)
        checked = (select(*stretch.c).where(inside.traverse(found.matches))
                   .order_by(*[inside.traverse(o) for o in statement._order_by_clauses]).limit(wanted))
        rows = connection.execute(checked).all()
        if len(rows) == wanted or _shorter_than_scan(connection, statement):
            return rows
    return connection.execute(statement.where(found.narrowed).limit(wanted)).all()


def _shorter_than_scan(connection: Connection, statement) -> bool:
    """Whether the stretch just read was all there is (then what it held is every match)."""
    ids = statement.with_only_columns(list(statement.selected_columns)[0]).limit(search.SCAN).subquery()
    return connection.execute(select(func.count()).select_from(ids)).scalar() < search.SCAN


def _order(view: ir.ListView, table, query: ListQuery) -> tuple[str, bool]:
    sortable = ["id", *[c for c in view.columns if c in table.c]]
    if query.sort is None:
        sort = view.sort.field if view.sort else "id"
        descending = view.sort.order == "desc" if view.sort else False
    elif query.sort not in sortable:
        raise Invalid({"sort": f"the list can be sorted by {', '.join(sortable)}, not by '{query.sort}'"})
    else:
        sort, descending = query.sort, False
    return sort, descending if query.descending is None else query.descending


def _segment(base, column, id_column, segment: str, descending: bool, backward: bool, key):
    """The rows of one run (those with a sort value, or those without) in page order, after
    (or, going backward, before) `key`."""
    later = descending == backward  # does "after the key" mean greater?
    if segment == "values":
        statement = base.where(column.is_not(None)) if column.nullable else base
        if key is not None:
            pair, at = tuple_(column, id_column), tuple_(literal(key[0], column.type), literal(key[1]))
            statement = statement.where(pair > at if later else pair < at)
        order = [column, id_column]
    else:
        statement = base.where(column.is_(None))
        if key is not None:
            statement = statement.where(id_column > key[1] if later else id_column < key[1])
        order = [id_column]
    return statement.order_by(*[c.desc() if descending != backward else c.asc() for c in order])


# ------------------------------------------------------------------ cursors

def _encode(sort: str, descending: bool, value: Any, record_id: int) -> str:
    if isinstance(value, dt.datetime):
        value = value.astimezone(dt.timezone.utc)
    data = {"s": sort, "d": descending, "v": plain(value), "i": record_id}
    return base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).decode().rstrip("=")


def _decode(cursor: str | None, sort: str, descending: bool, column) -> tuple[Any, int] | None:
    if not cursor:
        return None
    stale = Invalid({"cursor": "this page link no longer fits the list's order; start again from the first page"})
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if data["s"] != sort or data["d"] != descending:
            raise stale
        value, record_id = data["v"], int(data["i"])
        return (None if value is None else _typed(column.type, value)), record_id
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError):
        raise Invalid({"cursor": "this page link is damaged; start again from the first page"}) from None


def _typed(kind, value: Any) -> Any:
    if isinstance(kind, DateTime):
        return as_utc(dt.datetime.fromisoformat(value))
    if isinstance(kind, Date):
        return dt.date.fromisoformat(value)
    if isinstance(kind, Numeric):
        return Decimal(value)
    if isinstance(kind, Boolean):
        return bool(value)
    if isinstance(kind, Integer):
        return int(value)
    return str(value)


# ------------------------------------------------------------------ search and filters

def _filters(store: RecordStore, entity: str, view: ir.ListView, table, filters: dict[str, str]) -> list[ColumnElement]:
    conditions = []
    for name, value in filters.items():
        if value is None or str(value).strip() == "":
            continue
        if name not in view.filters:
            raise Invalid({name: f"the list can be filtered by {', '.join(view.filters) or 'nothing'}, not by '{name}'"})
        conditions.append(table.c[name] == _filter_value(store, entity, name, str(value)))
    return conditions


def _filter_value(store: RecordStore, entity: str, name: str, value: str) -> Any:
    if name == "state":
        workflow = store.bundle.workflows[store.entity(entity).workflow]
        for state in workflow.states:
            if value.strip() in (state.name, state.title):
                return state.name
        raise Invalid({"state": f"the state must be one of {', '.join(s.name for s in workflow.states)}"})
    if name in ("created_at", "updated_at", "id"):
        raise Invalid({name: f"the list cannot be filtered by {name}"})
    return store.validator.validate(entity, {name: value}, creating=False)[name]


# ------------------------------------------------------------------ indexes for search

def create_search_indexes(engine: Engine, bundle: ir.Bundle, metadata: MetaData | None = None) -> list[str]:
    """The lists' search indexes and the triggers that keep them (runtime.crm.search), made or
    brought up to date; returns what was done."""
    with engine.begin() as connection:
        return search.install(connection, bundle)
