"""The agent desktop: state buttons, and the screen pop pushed the moment the ACD reserves the agent.

    /desktop                 the page (logs the agent in to the telephony, not ready)
    /desktop/events          Server-Sent Events: `pop` (the caller's record), `call` (ringing,
                             talking, ended, with the wrap-up codes), `state` (state and after-call
                             work countdown), `callback` (a callback that fell due)
    POST /desktop/state      ready / not ready with a reason / after-call work done
    POST /desktop/answer, /desktop/decline, /desktop/hangup          the simulated phone
    POST /desktop/ticket, /desktop/customer, /desktop/callback, /desktop/wrapup   from the pop
    POST /desktop/call       a simulated caller dials in (demos)

Every action is the logged-in agent's, on their own desk: no request names another agent.
The page uses htmx and its SSE extension; the server renders every fragment.  The live call
centre is `app.state.telephony` (see `start_telephony`).
"""
from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.engine import Engine
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response, StreamingResponse
from starlette.routing import Route

from compiler import ir
from runtime.crm.permissions import Forbidden, may, row_filter
from runtime.crm.tables import crm_metadata, table_name
from runtime.crm.users import User
from runtime.crm.validation import Invalid
from runtime.storage import Call, EventLog
from studio import auth, render
from studio.telephony import (CallbackDue, Connected, Ended, LiveCallCenter, Reserved, StateChanged,
                              TelephonyError, Withdrawn, WrapUp)

POP_FORM = "customer_card"   # the form the screen pop shows the caller's record with
RECENT_CALLS = 5
OPEN_TICKETS = 10
KEEP_ALIVE_S = 15.0
STATE_TITLES = {"logged_out": "未登录", "ready": "就绪", "not_ready": "未就绪", "ringing": "振铃中",
                "on_call": "通话中", "wrap_up": "话后处理"}


# ---------------------------------------------------------------------- the live call centre

async def start_telephony(app) -> None:
    """The studio's first start-up hook (`studio.app.create_app`): calls on Asterisk when
    `app.state.ari` holds ARI settings (`studio.telephony_ari.start_ari`), else the simulated
    telephony on the studio's database (flows' lookups go to the record store).  Either sets
    `app.state.telephony`."""
    settings = getattr(app.state, "ari", None)
    if settings is not None:
        from studio.telephony_ari import start_ari  # only the Asterisk edge needs it
        await start_ari(app, settings)
        return
    studio = app.state.studio
    url = studio.engine.url.render_as_string(hide_password=False)
    live = LiveCallCenter(studio.bundle, crm=studio.store, event_log=EventLog(url), clock=studio.clock)
    await live.start()
    app.state.telephony = live


def telephony(request: Request) -> LiveCallCenter:
    return request.app.state.telephony


# ---------------------------------------------------------------------- who is calling

@dataclass(frozen=True)
class PopEntities:
    customer: ir.Entity | None
    phone: str | None            # the customer's unique phone field
    ticket: ir.Entity | None
    ticket_customer: str | None  # the ticket's ref to the customer
    ticket_phone: str | None
    ticket_call: str | None      # the ticket's text field holding the call id


def pop_entities(bundle: ir.Bundle) -> PopEntities:
    """The customer: the entity of the screen-pop form, else the first with a unique phone field.
    The ticket: the first entity with a workflow that refers to the customer."""
    customer = None
    if POP_FORM in bundle.forms:
        customer = bundle.entities[bundle.forms[POP_FORM].entity]
    else:
        customer = next((e for e in bundle.entities.values() if _unique_phone(e)), None)
    phone = _unique_phone(customer) if customer else None
    ticket = ticket_customer = None
    for entity in bundle.entities.values():
        ref = next((f.name for f in entity.fields if f.type == "ref" and customer and f.target == customer.name), None)
        if entity.workflow and ref:
            ticket, ticket_customer = entity, ref
            break
    ticket_phone = next((f.name for f in ticket.fields if f.type == "phone"), None) if ticket else None
    ticket_call = next((f.name for f in ticket.fields if f.name == "call_id"), None) if ticket else None
    return PopEntities(customer, phone, ticket, ticket_customer, ticket_phone, ticket_call)


def _unique_phone(entity: ir.Entity) -> str | None:
    return next((f.name for f in entity.fields if f.type == "phone" and f.unique), None)


def digits(number: str) -> str:
    """A number as the CRM keeps phones: digits with an optional leading +."""
    return "".join(ch for ch in number if ch.isdigit() or ch == "+")


class Directory:
    """Reads the pop's records straight from the CRM's tables, filtered by the user's permissions."""

    def __init__(self, engine: Engine, bundle: ir.Bundle):
        self.engine, self.bundle = engine, bundle
        self.metadata = crm_metadata(bundle)
        self.entities = pop_entities(bundle)

    def customer(self, user: User, number: str) -> tuple[dict | None, bool]:
        """(the caller's record, whether the user may see it)."""
        found = self._rows(user, self.entities.customer, lambda t: t.c[self.entities.phone] == digits(number), 1,
                           check=False)
        if not found:
            return None, True
        allowed = self._rows(user, self.entities.customer, lambda t: t.c.id == found[0]["id"], 1)
        return (allowed[0], True) if allowed else (None, False)

    def open_tickets(self, user: User, customer_id: int | None, number: str) -> list[dict]:
        e = self.entities
        if e.ticket is None:
            return []
        final = [s.name for s in self.bundle.workflows[e.ticket.workflow].states if s.final]

        def where(table):
            linked = [table.c[e.ticket_customer] == customer_id] if customer_id is not None else []
            if e.ticket_phone:
                linked.append(table.c[e.ticket_phone] == digits(number))
            return and_(or_(*linked), table.c.state.not_in(final)) if linked else None
        return self._rows(user, e.ticket, where, OPEN_TICKETS, order=lambda t: t.c.id.desc())

    def _rows(self, user, entity, where, limit, *, order=None, check=True) -> list[dict]:
        if entity is None or (check and not may(self.bundle, user, entity.name, "read")):
            return []
        table = self.metadata.tables[table_name(entity.name)]
        condition = where(table)
        if condition is None:
            return []
        query = select(table).where(condition)
        allowed = row_filter(self.bundle, user, entity.name, "read", table, self.metadata) if check else None
        if allowed is not None:
            query = query.where(allowed)
        query = query.order_by(order(table) if order else table.c.id).limit(limit)
        with self.engine.connect() as connection:
            return [dict(row._mapping) for row in connection.execute(query)]

    def recent_calls(self, number: str) -> list[Call]:
        with self.engine.connect() as connection:
            rows = connection.execute(select(Call.__table__).where(Call.__table__.c.caller == number)
                                      .order_by(Call.__table__.c.started_at.desc()).limit(RECENT_CALLS + 1))
            return [Call(**dict(row._mapping)) for row in rows]


def directory(request: Request) -> Directory:
    state = request.app.state
    if not hasattr(state, "desktop_directory"):
        state.desktop_directory = Directory(state.studio.engine, state.studio.bundle)
    return state.desktop_directory


# ---------------------------------------------------------------------- rendering

def _fragment(request: Request, template: str, **context) -> str:
    studio = request.app.state.studio
    return studio.templates.get_template(template).render(
        csrf=auth.csrf_token(request.session), tz=render.zone(studio.bundle), **context)


def state_html(request: Request, user: User, error: str | None = None) -> str:
    live = telephony(request)
    state, reason = live.state(user.name)
    desk = live.hub.desk(user.name)
    now = live.clock()
    left = max(0, int((desk.wrapup_until - now).total_seconds() + 0.999)) if desk.wrapup_until else 0
    return _fragment(request, "desktop_state.html", state=state, reason=reason, title=STATE_TITLES.get(state, state),
                     reason_title=live.not_ready_reasons.get(reason, reason), reasons=live.not_ready_reasons,
                     wrapup_left=left, wrapup_until=desk.wrapup_until,
                     queues=live.bundle.agents[user.name].queues, error=error)


def pop_html(request: Request, user: User, call: Reserved, *, errors: dict | None = None,
             typed: dict | None = None, notice: str | None = None) -> str:
    """The caller's record (or a new-customer form with the number), recent calls and open tickets."""
    studio, found = request.app.state.studio, directory(request)
    entities = found.entities
    record, visible = found.customer(user, call.caller) if entities.customer else (None, True)
    customer_form = None
    if entities.customer is not None and record is None and visible:
        values = {entities.phone: digits(call.caller), **(typed or {})}
        customer_form = render.sections(studio.bundle, entities.customer, values, user=user.name, editing=True,
                                        errors=errors or {})
    card = render.sections(studio.bundle, entities.customer, record, user=user.name, editing=False) if record else []
    calls = [c for c in found.recent_calls(call.caller) if c.id != call.call_id][:RECENT_CALLS]
    tickets = found.open_tickets(user, record["id"] if record else None, call.caller)
    ticket_entity = entities.ticket
    return _fragment(
        request, "desktop_pop.html", call=call, record=record, visible=visible, card=card,
        customer_form=customer_form, customer_entity=entities.customer, calls=calls, tickets=tickets,
        ticket_entity=ticket_entity, ticket_rows=[_ticket_row(studio.bundle, ticket_entity, t) for t in tickets],
        ticket_choices=_ticket_choices(ticket_entity), may_create_ticket=bool(
            ticket_entity and may(studio.bundle, user, ticket_entity.name, "create")),
        may_create_customer=bool(entities.customer and may(studio.bundle, user, entities.customer.name, "create")),
        queue_title=_queue_title(studio.bundle, call.queue), notice=notice,
        customer_name=record.get(render.title_field(entities.customer) or "id") if record else None,
        slug=render.slug, wrapup_codes=telephony(request).wrapup_codes)


def call_html(request: Request, user: User, call: Reserved | None, phase: str) -> str:
    """The call bar: ringing (answer, decline), talking (hang up), ended (wrap-up code)."""
    live = telephony(request)
    return _fragment(request, "desktop_call.html", call=call, phase=phase, wrapup_codes=live.wrapup_codes,
                     queue_title=_queue_title(live.bundle, call.queue if call else None),
                     answers_on_desk=getattr(live, "answers_on_desk", True))


def _queue_title(bundle: ir.Bundle, queue: str | None) -> str:
    q = bundle.queues.get(queue or "")
    return (q.title or q.name) if q else ""


def _ticket_row(bundle: ir.Bundle, entity: ir.Entity, row: dict) -> dict:
    tz = render.zone(bundle)
    shown = {f.name: render.shown(f, row.get(f.name), tz=tz, agents=bundle.agents) for f in entity.fields}
    shown["state"] = render.state_title(bundle, entity, row.get("state"))
    shown["id"] = row["id"]
    return shown


def _ticket_choices(entity: ir.Entity | None) -> dict[str, tuple[str, list[tuple[str, str]]]]:
    """The ticket's required choices (category...): {field: (label, [(value, label)])}."""
    if entity is None:
        return {}
    return {f.name: (render.label(f), [(c.name, c.label or c.name) for c in f.choices]) for f in entity.fields
            if f.type == "enum" and f.required}


def sse(event: str, html: str) -> str:
    """One Server-Sent Event; each line of the HTML is a data line."""
    return f"event: {event}\n" + "".join(f"data: {line}\n" for line in html.splitlines() or [""]) + "\n"


# ---------------------------------------------------------------------- pages and the stream

def _agent(request: Request) -> User:
    user = auth.current_user(request)
    if user.name not in request.app.state.studio.bundle.agents:
        raise TelephonyError("only agents have a desktop")
    return user


async def desktop_page(request: Request) -> Response:
    user = auth.current_user(request)
    studio = request.app.state.studio
    if user.name not in studio.bundle.agents:
        return HTMLResponse("<p>只有坐席才有工作台。</p>", status_code=403)
    live = telephony(request)
    live.login(user.name)
    simulated = getattr(request.app.state, "ari", None) is None  # real callers dial in on Asterisk
    context = {"state": state_html(request, user), "simulated": simulated, "numbers": sorted(studio.bundle.numbers),
               "current": "desktop"}  # the frame (user, csrf, nav) comes from the studio's context processor
    return studio.templates.TemplateResponse(request, "desktop.html", context)


async def events(request: Request) -> Response:
    user = _agent(request)
    live = telephony(request)
    inbox = live.hub.subscribe(user.name)

    async def stream():
        try:
            yield sse("state", state_html(request, user))
            desk = live.hub.desk(user.name)
            if desk.call is not None:  # a page opened (or reloaded) while a call is with the agent
                yield sse("pop", pop_html(request, user, desk.call))
                yield sse("call", call_html(request, user, desk.call, "talking" if desk.connected else "ringing"))
            while True:
                try:
                    event = await asyncio.wait_for(inbox.get(), KEEP_ALIVE_S)
                except asyncio.TimeoutError:
                    yield ": keep-alive\n\n"
                    continue
                for chunk in _translate(request, user, event):
                    yield chunk
        finally:
            live.hub.unsubscribe(user.name, inbox)

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def _translate(request: Request, user: User, event) -> list[str]:
    desk = telephony(request).hub.desk(user.name)
    if isinstance(event, Reserved):
        return [sse("pop", pop_html(request, user, event)), sse("call", call_html(request, user, event, "ringing"))]
    if isinstance(event, Connected):
        return [sse("call", call_html(request, user, desk.call, "talking"))] if desk.call else []
    if isinstance(event, Ended):
        ended = Reserved(event.call_id, "", None, 0, event.at)
        return [sse("call", call_html(request, user, ended, "ended"))]
    if isinstance(event, Withdrawn):
        return [sse("call", call_html(request, user, None, "withdrawn")),
                sse("pop", '<p class="muted">来电已结束,等待下一个来电。</p>')]
    if isinstance(event, (StateChanged, WrapUp)):
        return [sse("state", state_html(request, user))]
    if isinstance(event, CallbackDue):
        return [sse("callback", _fragment(request, "desktop_callback.html", due=event))]
    return []


# ---------------------------------------------------------------------- actions

def _message(text: str, status: int = 200, kind: str = "ok") -> HTMLResponse:
    from markupsafe import escape
    return HTMLResponse(f'<p class="{kind}" role="status">{escape(text)}</p>', status_code=status)


def _refused(error: Exception) -> HTMLResponse:
    # htmx swaps 4xx answers only when told; the desktop's message area asks for them (desktop.html)
    return _message(str(error), 409, "error")


async def change_state(request: Request) -> Response:
    form = await request.form()
    user, live = _agent(request), telephony(request)
    action = str(form.get("action", ""))
    try:
        if action == "ready":
            live.ready(user.name)
        elif action == "not_ready":
            live.not_ready(user.name, str(form.get("reason", "")))
        elif action == "wrap_up_done":
            live.wrap_up_done(user.name)
        else:
            return _message(f"未知操作 {action!r}", 400, "error")
    except TelephonyError as error:
        return HTMLResponse(state_html(request, user, str(error)), status_code=409)
    return HTMLResponse(state_html(request, user))


def _phone_action(name: str):
    async def act(request: Request) -> Response:
        user, live = _agent(request), telephony(request)
        try:
            getattr(live, name)(user.name)
        except TelephonyError as error:
            return _refused(error)
        return _message({"answer": "已接听", "decline": "已拒接", "hangup": "已挂断,进入话后处理"}[name])
    return act


async def place_call(request: Request) -> Response:
    form = await request.form()
    live = telephony(request)
    if getattr(request.app.state, "ari", None) is not None:
        return _message("模拟来电只在模拟话务中可用;现在的来电来自 Asterisk", 400, "error")
    caller = digits(str(form.get("caller", "")))
    if not caller:
        return _message("请填写来电号码", 400, "error")
    try:
        call_id = live.place_call(caller, str(form.get("dialed", "")), keys=str(form.get("keys", "")).strip())
    except TelephonyError as error:
        return _message(str(error), 400, "error")
    return _message(f"模拟来电 {caller} 已拨入({call_id})")


def _owned_call(request: Request, user: User, call_id: str) -> Reserved | None:
    """The agent's current or last call, when `call_id` names it: agents act only on their own calls."""
    desk = telephony(request).hub.desk(user.name)
    if desk.call is not None and desk.call.call_id == call_id:
        return desk.call
    if desk.last_call == call_id:
        return Reserved(call_id, "", None, 0, telephony(request).clock())
    return None


async def wrapup(request: Request) -> Response:
    form = await request.form()
    user, live = _agent(request), telephony(request)
    call_id = str(form.get("call_id", ""))
    if _owned_call(request, user, call_id) is None:
        return _message("这不是您的通话", 403, "error")
    try:
        await asyncio.to_thread(live.record_wrapup, user.name, call_id, str(form.get("code", "")))
    except TelephonyError as error:
        return _message(str(error), 400, "error")
    return _message(f"话后代码已记录:{live.wrapup_codes[str(form.get('code'))]}")


async def callback(request: Request) -> Response:
    form = await request.form()
    user, live = _agent(request), telephony(request)
    call_id = str(form.get("call_id", "")) or None
    if call_id and _owned_call(request, user, call_id) is None:
        return _message("这不是您的通话", 403, "error")
    when = str(form.get("when", "")).strip()
    try:
        at = dt.datetime.fromisoformat(when)
    except ValueError:
        return _message(f"回电时间 {when!r} 不是日期时间,例如 2026-11-24T10:00", 400, "error")
    if at.tzinfo is None:
        at = at.replace(tzinfo=render.zone(live.bundle))
    try:
        await asyncio.to_thread(live.schedule_callback, user.name, str(form.get("number", "")), at, call_id)
    except TelephonyError as error:
        return _message(str(error), 400, "error")
    return _message(f"已预约 {at.astimezone(render.zone(live.bundle)):%m-%d %H:%M} 回电 {form.get('number')}")


async def open_ticket(request: Request) -> Response:
    """A ticket with the call linked: its id, the caller's number and the customer filled in."""
    form = await request.form()
    user, studio = _agent(request), request.app.state.studio
    entities = directory(request).entities
    call = _owned_call(request, user, str(form.get("call_id", "")))
    if call is None:
        return _message("这不是您的通话", 403, "error")
    if entities.ticket is None or studio.store is None:
        return _message("本项目没有可创建的工单", 400, "error")
    data = {k: str(v) for k, v in form.items() if k not in ("csrf_token",) and str(v).strip()}
    data.pop("call_id", None)
    if entities.ticket_call:
        data[entities.ticket_call] = call.call_id
    try:
        ticket = await asyncio.to_thread(studio.store.create, user, entities.ticket.name, data)
    except Forbidden as error:
        return _message(str(error), 403, "error")
    except Invalid as error:
        return _message(";".join(error.errors.values()), 400, "error")
    slug = render.slug(entities.ticket.name)
    return HTMLResponse(f'<p class="ok" role="status">工单 <a href="/crm/{slug}/{ticket["id"]}">#{ticket["id"]}</a> '
                        f'已创建,已关联本次通话</p>')


async def create_customer(request: Request) -> Response:
    """The new-customer form of the pop: on success the pop shows the record; on errors the form
    again, with what was typed and the messages beside the fields."""
    form = await request.form()
    user, studio = _agent(request), request.app.state.studio
    entity = directory(request).entities.customer
    call = _owned_call(request, user, str(form.get("call_id", "")))
    if call is None:
        return _message("这不是您的通话", 403, "error")
    if entity is None or studio.store is None:
        return _message("本项目没有客户资料", 400, "error")
    typed = {k: str(v) for k, v in form.items() if k not in ("csrf_token", "call_id")}
    data = {k: v for k, v in typed.items() if v.strip()}
    try:
        await asyncio.to_thread(studio.store.create, user, entity.name, data)
    except Forbidden as error:
        return _message(str(error), 403, "error")
    except Invalid as error:
        return HTMLResponse(pop_html(request, user, call, errors=error.errors, typed=typed))
    return HTMLResponse(pop_html(request, user, call, notice="客户资料已创建"))


routes = [
    Route("/desktop", desktop_page),
    Route("/desktop/events", events),
    Route("/desktop/state", change_state, methods=["POST"]),
    Route("/desktop/answer", _phone_action("answer"), methods=["POST"]),
    Route("/desktop/decline", _phone_action("decline"), methods=["POST"]),
    Route("/desktop/hangup", _phone_action("hangup"), methods=["POST"]),
    Route("/desktop/call", place_call, methods=["POST"]),
    Route("/desktop/wrapup", wrapup, methods=["POST"]),
    Route("/desktop/callback", callback, methods=["POST"]),
    Route("/desktop/ticket", open_ticket, methods=["POST"]),
    Route("/desktop/customer", create_customer, methods=["POST"]),
]
