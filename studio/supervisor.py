"""The supervisor's list: every open ticket by the SLA time it has left.

    /supervisor     team leads and supervisors only (403 for anyone else)

Overdue tickets come first, the most overdue on top, with how long they are overdue; then the
running ones, the soonest due first; then the paused ones (waiting for the customer), which are
not counting down; then those with no clock running.  Time left is business time, as the SLA
counts it (runtime.crm.sla), from the audit log's state changes read as the SLA tick reads them.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from compiler import ir
from runtime.crm.notifications import state_histories
from runtime.crm.permissions import may, row_filter
from runtime.crm.sla import SlaClock, sla_clocks, time_left_ms
from runtime.crm.users import User
from studio import auth, render

ROLES = ("team_lead", "supervisor")


def may_supervise(user: User | None) -> bool:
    return user is not None and user.has_role(*ROLES)


@dataclass(frozen=True)
class OpenRecord:
    """One open record of a workflow with SLAs, and its clock with the least time left."""
    entity: ir.Entity
    record: dict
    clock: SlaClock | None      # None: no clock is counting for it (not started, or all stopped)
    left_ms: int | None         # business time left; negative when overdue

    @property
    def breached(self) -> bool:
        return self.left_ms is not None and self.left_ms <= 0

    @property
    def paused(self) -> bool:
        return self.clock is not None and self.clock.paused

    @property
    def order(self) -> tuple:
        """Overdue (most overdue first), running (soonest first), paused, no clock."""
        if self.left_ms is None:
            return (3, 0, self.record["id"])
        group = 0 if self.breached else 2 if self.paused else 1
        return (group, self.left_ms, self.record["id"])


def open_records(studio, user: User, now: dt.datetime) -> list[OpenRecord]:
    """The open records the user may read, of every workflow with SLAs, in the list's order."""
    bundle, out = studio.bundle, []
    with studio.engine.connect() as connection:
        for workflow in bundle.workflows.values():
            if not workflow.slas or not may(bundle, user, workflow.entity, "read"):
                continue
            entity, table = bundle.entities[workflow.entity], studio.store.table(workflow.entity)
            finals = [s.name for s in workflow.states if s.final]
            query = select(table).where(table.c.state.not_in(finals))
            allowed = row_filter(bundle, user, workflow.entity, "read", table, studio.store.metadata)
            if allowed is not None:
                query = query.where(allowed)
            records = {row.id: dict(row._mapping) for row in connection.execute(query)}
            if not records:
                continue
            histories = state_histories(connection, workflow.entity, records)
            for record_id, record in records.items():
                clocks = sla_clocks(bundle, workflow, histories[record_id], now)
                left = time_left_ms(clocks)
                counting = [c for c in clocks if c.started and not c.stopped and c.left_ms == left]
                out.append(OpenRecord(entity, record, counting[0] if counting else None, left))
    return sorted(out, key=lambda r: r.order)


def row_view(bundle: ir.Bundle, item: OpenRecord) -> dict:
    """What one line of the list shows, in people's words."""
    from studio.screens import _hours

    tz, entity, record = render.zone(bundle), item.entity, item.record
    assignee = next((f for f in entity.fields if f.type == "agent"), None)
    priority = next((f for f in entity.fields if f.name == "priority"), None)
    title = render.title_field(entity)
    clock = item.clock
    if item.left_ms is None:
        left = "—"
    elif item.breached:
        left = f"超时 {_hours(-item.left_ms)}"
    else:
        left = _hours(item.left_ms)
    return {
        "id": record["id"], "slug": render.slug(entity.name), "entity": entity.title or entity.name,
        "summary": render.shown(render.field_of(bundle, entity, title), record.get(title), tz=tz) if title else "",
        "assignee": render.shown(assignee, record.get(assignee.name), tz=tz, agents=bundle.agents) if assignee else "",
        "priority": render.shown(priority, record.get("priority"), tz=tz) if priority else "",
        "priority_name": record.get("priority") or "",
        "state": render.state_title(bundle, entity, record.get("state")),
        "clock": clock.name if clock else "", "left": left, "breached": item.breached, "paused": item.paused,
        "due": clock.due_at.astimezone(tz).strftime("%m-%d %H:%M") if clock and clock.due_at else "",
        "breached_at": clock.breached_at.astimezone(tz).strftime("%m-%d %H:%M")
        if clock and clock.breached_at else "",
    }


async def supervisor_page(request: Request) -> Response:
    from studio.screens import message, page

    user, studio = auth.current_user(request), request.app.state.studio
    if not may_supervise(user):
        return message(request, "无权查看", "SLA 监控只对班组长和值班主管开放。", 403)
    now = studio.clock()
    rows = [row_view(studio.bundle, item) for item in open_records(studio, user, now)]
    return page(request, "supervisor.html", {
        "title": "SLA 监控", "current": "supervisor", "rows": rows,
        "now": now.astimezone(render.zone(studio.bundle)).strftime("%Y-%m-%d %H:%M"),
        "overdue": sum(1 for r in rows if r["breached"])})


routes = [Route("/supervisor", supervisor_page)]
