"""The audit log: who changed which field of which record, when, from what to what.

One row per changed field (a create lists the values given, a delete the values there were, a
transition the state and what its actions set).  Values are kept as text in their plain form
(money "58.20", dates ISO, times ISO in UTC, `list of` ids joined by commas), so the log reads the
same whatever the field's type becomes later.
"""
from __future__ import annotations

import datetime as dt
from typing import Any, Literal, Mapping

from pydantic import BaseModel
from sqlalchemy import Column, DateTime, Index, Integer, MetaData, String, Table, Text, select
from sqlalchemy.engine import Connection

from runtime.times import as_utc
from runtime.values import plain

AUDIT_TABLE = "crm_audit"
Action = Literal["create", "update", "delete", "transition"]


class AuditEntry(BaseModel):
    at: dt.datetime
    user: str
    entity: str
    record_id: int
    action: Action
    field: str | None
    before: str | None
    after: str | None


def audit_table(metadata: MetaData) -> Table:
    """The `crm_audit` table, added to `metadata` once."""
    if AUDIT_TABLE in metadata.tables:
        return metadata.tables[AUDIT_TABLE]
    table = Table(
        AUDIT_TABLE, metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("at", DateTime(timezone=True), nullable=False),
        Column("user", String(64), nullable=False),
        Column("entity", String(64), nullable=False),
        Column("record_id", Integer, nullable=False),
        Column("action", String(16), nullable=False),
        Column("field", String(64)),
        Column("before", Text),
        Column("after", Text),
    )
    # A record's history is read by (entity, record_id) in order.
    Index("ix_crm_audit_record", table.c.entity, table.c.record_id, table.c.id)
    return table


def as_text(value: Any) -> str | None:
    """A field's value as the log keeps it."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        value = value.astimezone(dt.timezone.utc)
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(plain(value))


def changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, tuple[str | None, str | None]]:
    """The fields whose text differs between two versions of a record: field -> (before, after)."""
    found = {}
    for name in after:
        old, new = as_text(before.get(name)), as_text(after.get(name))
        if old != new:
            found[name] = (old, new)
    return found


def write(connection: Connection, table: Table, *, at: dt.datetime, user: str, entity: str, record_id: int,
          action: Action, fields: Mapping[str, tuple[str | None, str | None]]) -> None:
    """The rows of one change, in the caller's transaction (so a change is never without its log)."""
    rows = [{"at": at, "user": user, "entity": entity, "record_id": record_id, "action": action,
             "field": name, "before": old, "after": new} for name, (old, new) in fields.items()]
    if not rows:  # a change that set nothing still says who made it
        rows = [{"at": at, "user": user, "entity": entity, "record_id": record_id, "action": action,
                 "field": None, "before": None, "after": None}]
    connection.execute(table.insert(), rows)


def history(connection: Connection, table: Table, entity: str, record_id: int) -> list[AuditEntry]:
    """A record's changes, oldest first."""
    query = (select(table).where(table.c.entity == entity, table.c.record_id == record_id).order_by(table.c.id))
    return [AuditEntry(**{**row._mapping, "at": as_utc(row.at)}) for row in connection.execute(query)]


def last_change(connection: Connection, table: Table, entity: str, record_id: int) -> AuditEntry | None:
    query = (select(table).where(table.c.entity == entity, table.c.record_id == record_id)
             .order_by(table.c.id.desc()).limit(1))
    row = connection.execute(query).first()
    return AuditEntry(**{**row._mapping, "at": as_utc(row.at)}) if row else None
