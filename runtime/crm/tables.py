"""The CRM's tables, made from the bundle's entities.

Each entity is one table named `crm_<entity in snake case>` (`Customer` -> `crm_customer`,
`AccountManager` -> `crm_account_manager`) with:

- `id`          integer primary key, given by the database;
- one column per field, typed from the field (see `COLUMN_TYPES`); `ref` fields hold the target's
  id with a foreign key; `list of` fields are a link table `crm_<entity>__<field>`;
- `state`       for an entity with a workflow, the record's state;
- `created_at`, `updated_at` (UTC) and `version` (counts the record's changes, so that two people
  editing one record cannot overwrite each other without knowing it).

Indexes follow what the lists show, sort and filter on, each ending in `id` so that keyset
pagination reads an index in order at any depth:

- (column, id) for every column a list shows (any of them can be sorted on) and for its sort;
  refs always, since deleting a record looks up who points at it;
- (filter, sort, id) for each filter of a list with that list's own sort, so a filtered first
  page is an index range read in order, not a sort of every matching row.

That is one index per shown column plus one per filter; unique fields are left out (their unique
index serves), and filters combined with a sort other than the list's own read the sort's or the
filter's index and sort or skip what they must (a choice of index per pair would multiply them).
"""
from __future__ import annotations

import hashlib
import re

from sqlalchemy import (Boolean, Column, Date, DateTime, ForeignKey, Index, Integer, MetaData, Numeric, String,
                        Table, Text, UniqueConstraint)
from sqlalchemy.types import TypeEngine

from compiler import ir

PREFIX = "crm_"

# Longest values of the types that have no `max`: the widest phone numbers (E.164 with a
# extension) and e-mail addresses (RFC 5321) people enter; agents and enum choices are names.
PHONE_LENGTH = 32
EMAIL_LENGTH = 254
NAME_LENGTH = 64
TEXT_INLINE_LIMIT = 1000  # longer texts are TEXT columns


def table_name(entity: str) -> str:
    """`AccountManager` -> `crm_account_manager`."""
    return PREFIX + re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", entity).lower()


def link_table_name(entity: str, field: str) -> str:
    return f"{table_name(entity)}__{field}"


def column_type(field: ir.EntityField) -> TypeEngine:
    """The SQL type that holds a field's values."""
    kind = field.type
    if kind == "text":
        length = field.max_length
        return String(length) if length and length <= TEXT_INLINE_LIMIT else Text()
    if kind == "phone":
        return String(field.max_length or PHONE_LENGTH)
    if kind == "email":
        return String(field.max_length or EMAIL_LENGTH)
    if kind in ("enum", "agent"):
        return String(NAME_LENGTH)
    if kind == "number":
        return Numeric(20, 6)
    if kind == "money":
        return Numeric(16, 2)
    if kind == "bool":
        return Boolean()
    if kind == "date":
        return Date()
    if kind == "datetime":
        return DateTime(timezone=True)
    if kind == "ref":
        return Integer()
    raise ValueError(f"a field of type {kind} has no column")


def field_column(entity: ir.Entity, field: ir.EntityField) -> Column:
    """The column of one field (not for `list of` fields, which are link tables)."""
    args = [ForeignKey(f"{table_name(field.target)}.id", ondelete="SET NULL")] if field.type == "ref" else []
    return Column(field.name, column_type(field), *args, nullable=True)


def entity_table(metadata: MetaData, entity: ir.Entity, views: list[ir.ListView] = ()) -> Table:
    """The table of one entity, with the indexes its lists need."""
    name = table_name(entity.name)
    columns: list = [Column("id", Integer, primary_key=True, autoincrement=True)]
    columns += [field_column(entity, f) for f in entity.fields if f.type != "list"]
    if entity.workflow:
        columns.append(Column("state", String(NAME_LENGTH), nullable=False, index=True))
    columns += [
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("updated_at", DateTime(timezone=True), nullable=False),
        Column("version", Integer, nullable=False, default=1),
    ]
    constraints = [UniqueConstraint(f.name, name=f"uq_{name}_{f.name}") for f in entity.fields if f.unique]
    table = Table(name, metadata, *columns, *constraints)
    for columns in sorted(list_indexes(entity, views)):
        Index(index_name(name, columns), *[table.c[c] for c in columns])
    for f in entity.fields:
        if f.type == "list":
            link_table(metadata, entity, f)
    return table


def list_indexes(entity: ir.Entity, views: list[ir.ListView]) -> set[tuple[str, ...]]:
    """The column tuples (each ending in id) that the entity's lists read in order."""
    own = {f.name for f in entity.fields if f.type != "list" and not f.unique}
    own |= {"created_at", "updated_at"} | ({"state"} if entity.workflow else set())
    refs = {f.name for f in entity.fields if f.type == "ref" and not f.unique}
    wanted = {(r, "id") for r in refs}
    for view in views:
        if view.entity != entity.name:
            continue
        sort = view.sort.field if view.sort else "id"
        wanted |= {(c, "id") for c in [*view.columns, sort] if c in own}
        wanted |= {(f, sort, "id") if sort in own else (f, "id") for f in view.filters if f in own and f != sort}
    return wanted


def index_name(table: str, columns: tuple[str, ...]) -> str:
    """`ix_<table>_<columns>`, shortened with a hash past PostgreSQL's 63 characters."""
    name = f"ix_{table}_{'_'.join(columns)}"
    if len(name) <= 63:
        return name
    return name[:54] + "_" + hashlib.sha1(name.encode()).hexdigest()[:8]


def link_table(metadata: MetaData, entity: ir.Entity, field: ir.EntityField) -> Table:
    """The links of a `list of` field: one row per (record, linked record)."""
    return Table(
        link_table_name(entity.name, field.name), metadata,
        Column("record_id", Integer, ForeignKey(f"{table_name(entity.name)}.id", ondelete="CASCADE"),
               primary_key=True),
        Column("target_id", Integer, ForeignKey(f"{table_name(field.target)}.id", ondelete="CASCADE"),
               primary_key=True, index=True),
    )


def crm_metadata(bundle: ir.Bundle) -> MetaData:
    """All the CRM's tables for a bundle, in a MetaData of their own."""
    metadata = MetaData()
    views = list(bundle.lists.values())
    for entity in bundle.entities.values():
        entity_table(metadata, entity, views)
    return metadata
