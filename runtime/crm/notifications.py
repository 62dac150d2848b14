"""Notices to agents (a workflow's `notify`, SLA escalations and reminders), and the SLA tick.

`run_sla` is what a timer calls every minute or so: for every open record of a workflow with
SLAs it computes the clocks from the audit log's state changes and sends each escalation and
reminder once, remembering what it sent in `crm_sla_events` in the same transaction (so a restart
sends nothing twice, and of two ticks running at once the second fails on the events' key instead).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import (Column, DateTime, Index, Integer, MetaData, PrimaryKeyConstraint, String, Table, Text,
                        func, select, update)
from sqlalchemy.engine import Connection, Engine

from compiler import ir
from dsl.literals import format_duration
from runtime.crm.audit import audit_table
from runtime.crm.permissions import LinkedRecord, entity_title
from runtime.crm.sla import DueAction, due_actions, sla_clocks, workflow_hours
from runtime.crm.tables import table_name
from runtime.crm.workflows import recipients
from runtime.times import as_utc
from runtime.values import Scope

UTC = dt.timezone.utc
NOTIFICATIONS_TABLE = "crm_notifications"
SLA_EVENTS_TABLE = "crm_sla_events"


def notifications_table(metadata: MetaData) -> Table:
    """The `crm_notifications` table, added to `metadata` once."""
    if NOTIFICATIONS_TABLE in metadata.tables:
        return metadata.tables[NOTIFICATIONS_TABLE]
    table = Table(
        NOTIFICATIONS_TABLE, metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("agent", String(64), nullable=False),
        Column("message", Text, nullable=False),
        Column("entity", String(64)),
        Column("record_id", Integer),
        Column("at", DateTime(timezone=True), nullable=False),
        Column("read_at", DateTime(timezone=True)),
    )
    # The bell counts an agent's unread notices on every page.
    Index("ix_crm_notifications_agent", table.c.agent, table.c.read_at, table.c.id)
    return table


def sla_events_table(metadata: MetaData) -> Table:
    """`crm_sla_events`: which SLA rules have fired for which record (see `sla.DueAction.key`)."""
    if SLA_EVENTS_TABLE in metadata.tables:
        return metadata.tables[SLA_EVENTS_TABLE]
    return Table(
        SLA_EVENTS_TABLE, metadata,
        Column("entity", String(64), nullable=False),
        Column("record_id", Integer, nullable=False),
        Column("key", String(128), nullable=False),
        Column("at", DateTime(timezone=True), nullable=False),
        PrimaryKeyConstraint("entity", "record_id", "key", name="pk_crm_sla_events"),
    )


METADATA = MetaData()
NOTIFICATIONS = notifications_table(METADATA)
SLA_EVENTS = sla_events_table(METADATA)
AUDIT = audit_table(METADATA)


def create_tables(engine: Engine) -> None:
    """The notices and the SLA events (the audit log is the record store's)."""
    METADATA.create_all(engine, tables=[NOTIFICATIONS, SLA_EVENTS])


@dataclass(frozen=True)
class Notification:
    id: int
    agent: str
    message: str
    entity: str | None
    record_id: int | None
    at: dt.datetime
    read_at: dt.datetime | None

    @property
    def slug(self) -> str | None:
        """The entity's name in the studio's addresses (`crm/ticket/7`)."""
        return table_name(self.entity)[len("crm_"):] if self.entity else None


def notify(connection: Connection, metadata: MetaData | None = None, *, agent: str, message: str,
           entity: str | None = None, record_id: int | None = None, at: dt.datetime) -> None:
    """One notice to one agent, in the caller's transaction."""
    connection.execute(NOTIFICATIONS.insert().values(agent=agent, message=message, entity=entity,
                                                     record_id=record_id, at=at))


def unread(connection: Connection, agent: str) -> int:
    """How many notices the agent has not read (the bell's number)."""
    query = select(func.count()).where(NOTIFICATIONS.c.agent == agent, NOTIFICATIONS.c.read_at.is_(None))
    return connection.execute(query).scalar_one()


def for_agent(connection: Connection, agent: str, *, limit: int = 100, unread_only: bool = False) -> list[Notification]:
    """The agent's notices, newest first."""
    query = select(NOTIFICATIONS).where(NOTIFICATIONS.c.agent == agent)
    if unread_only:
        query = query.where(NOTIFICATIONS.c.read_at.is_(None))
    rows = connection.execute(query.order_by(NOTIFICATIONS.c.id.desc()).limit(limit))
    return [Notification(**{**r._mapping, "at": as_utc(r.at), "read_at": as_utc(r.read_at)}) for r in rows]


def mark_read(connection: Connection, agent: str, at: dt.datetime, ids: list[int] | None = None) -> int:
    """Marks the agent's own notices read (all, or those in `ids`); returns how many changed."""
    query = update(NOTIFICATIONS).where(NOTIFICATIONS.c.agent == agent, NOTIFICATIONS.c.read_at.is_(None))
    if ids is not None:
        query = query.where(NOTIFICATIONS.c.id.in_(ids))
    return connection.execute(query.values(read_at=at)).rowcount


# ------------------------------------------------------------------ the SLA tick

@dataclass(frozen=True)
class Sent:
    entity: str
    record_id: int
    key: str
    agents: tuple[str, ...]
    message: str


def run_sla(connection: Connection, bundle: ir.Bundle, now: dt.datetime, metadata: MetaData | None = None) -> list[Sent]:
    """Sends the escalations and reminders due now for every open record, each once; returns them."""
    from runtime.crm.tables import crm_metadata
    metadata = metadata or crm_metadata(bundle)
    sent = []
    for workflow in bundle.workflows.values():
        if workflow.slas:
            sent += _run_workflow(connection, bundle, workflow, metadata, now)
    return sent


def _run_workflow(connection: Connection, bundle: ir.Bundle, workflow: ir.Workflow, metadata: MetaData,
                  now: dt.datetime) -> list[Sent]:
    table = metadata.tables[table_name(workflow.entity)]
    finals = [s.name for s in workflow.states if s.final]
    records = {r.id: dict(r._mapping) for r in connection.execute(select(table).where(table.c.state.not_in(finals)))}
    if not records:
        return []
    histories = state_histories(connection, workflow.entity, records)
    fired = _fired(connection, workflow.entity, records)
    fetch = _fetcher(connection, metadata)
    sent = []
    for record_id, row in records.items():
        for clock in sla_clocks(bundle, workflow, histories[record_id], now):
            for action in due_actions(clock, fired.get(record_id, set())):
                sent.append(_send(connection, bundle, workflow, row, action, now, fetch))
    return sent


def state_histories(connection: Connection, entity: str, records: dict[int, dict]) -> dict[int, list]:
    """(when, state entered) per record from the audit log; the record's creation when it has none."""
    histories: dict[int, list] = {record_id: [] for record_id in records}
    query = (select(AUDIT.c.record_id, AUDIT.c.at, AUDIT.c.after)
             .where(AUDIT.c.entity == entity, AUDIT.c.field == "state", AUDIT.c.after.is_not(None),
                    AUDIT.c.record_id.in_(list(records)))
             .order_by(AUDIT.c.record_id, AUDIT.c.id))
    for record_id, at, state in connection.execute(query):
        histories[record_id].append((as_utc(at), state))
    for record_id, row in records.items():
        if not histories[record_id]:
            histories[record_id] = [(as_utc(row["created_at"]), row["state"])]
    return histories


def _fired(connection: Connection, entity: str, records: dict[int, dict]) -> dict[int, set[str]]:
    fired: dict[int, set[str]] = {}
    query = select(SLA_EVENTS.c.record_id, SLA_EVENTS.c.key).where(
        SLA_EVENTS.c.entity == entity, SLA_EVENTS.c.record_id.in_(list(records)))
    for record_id, key in connection.execute(query):
        fired.setdefault(record_id, set()).add(key)
    return fired


def _fetcher(connection: Connection, metadata: MetaData):
    def fetch(entity: str, record_id: int) -> dict | None:
        table = metadata.tables[table_name(entity)]
        found = connection.execute(select(table).where(table.c.id == record_id)).first()
        return dict(found._mapping) if found else None
    return fetch


def _send(connection: Connection, bundle: ir.Bundle, workflow: ir.Workflow, row: dict, action: DueAction,
          now: dt.datetime, fetch) -> Sent:
    rule, entity = action.rule, workflow.entity
    who = ir.Const(type="role", value=rule.role) if rule.role else rule.who
    scope = Scope(record=LinkedRecord(bundle, entity, row, fetch), now=now, hours=bundle.hours)
    agents = tuple(dict.fromkeys(recipients(bundle, who, scope)))
    message = sla_message(bundle, workflow, row, action)
    for agent in agents:
        notify(connection, agent=agent, message=message, entity=entity, record_id=row["id"], at=now)
    # Recorded even when nobody could be reached (no assignee yet), so it is not retried every tick.
    connection.execute(SLA_EVENTS.insert().values(entity=entity, record_id=row["id"], key=action.key, at=now))
    return Sent(entity, row["id"], action.key, agents, message)


def sla_message(bundle: ir.Bundle, workflow: ir.Workflow, row: dict, action: DueAction) -> str:
    """"工单 #7: first_response has used 80% of 4h, due 2026-03-02 13:00" and the like."""
    clock, zone = action.clock, workflow_hours(bundle, workflow).timezone
    what = f"{entity_title(bundle, workflow.entity)} #{row['id']}: {clock.name}"
    if clock.breached:
        when = f"overdue since {_local(clock.breached_at, zone)}"
    elif clock.due_at:
        when = f"due {_local(clock.due_at, zone)}"
    else:
        when = "paused"
    if action.rule.kind == "remind":
        return f"Reminder: {what} has {format_duration(max(clock.left_ms, 0) // 60000 * 60000)} left, {when}"
    return f"{what} has used {clock.percent:.0f}% of {format_duration(clock.target_ms)}, {when}"


def _local(moment: dt.datetime, zone: str) -> str:
    from zoneinfo import ZoneInfo
    return moment.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M")
