"""The CRM's screens, generated for every entity: list, detail, create and edit, delete, workflow
transitions, CSV export and import.

Every read and write goes through the RecordStore as the logged-in user, so the project's role
permissions are enforced on the server: a forbidden page or action answers 403 with a plain
message, whatever buttons the page showed.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from compiler import ir
from runtime.crm import permissions, validation
from runtime.crm.listing import ListQuery
from runtime.crm.records import Conflict, NotFound
from runtime.crm.users import User
from studio import auth, render

PAGE_SIZE = 25
PICK_SIZE = 8
FILTER_CHOICES = 200   # records offered in a reference filter's select


# ------------------------------------------------------------------ the frame of every page

@dataclass
class Screen:
    """One request on one entity's screens."""
    request: Request
    user: User
    entity: ir.Entity

    @property
    def studio(self):
        return self.request.app.state.studio

    @property
    def bundle(self) -> ir.Bundle:
        return self.studio.bundle

    @property
    def store(self):
        return self.studio.store

    @property
    def slug(self) -> str:
        return render.slug(self.entity.name)

    @property
    def title(self) -> str:
        return self.entity.title or self.entity.name

    def may(self, access: str) -> bool:
        return permissions.may(self.bundle, self.user, self.entity.name, access)


def readable_entities(bundle: ir.Bundle, user: User | None) -> list[tuple[str, str]]:
    """(slug, title) of the entities the user may read, in the order of the project's lists."""
    if user is None:
        return []
    order = [v.entity for v in bundle.lists.values()] + list(bundle.entities)
    seen: list[str] = []
    for name in order:
        if name not in seen and permissions.may(bundle, user, name, "read"):
            seen.append(name)
    return [(render.slug(n), bundle.entities[n].title or n) for n in seen]


def unread_count(request: Request, user: User) -> int:
    from runtime.crm import notifications

    with request.app.state.studio.engine.connect() as connection:
        return notifications.unread(connection, user.name)


def chrome(request: Request) -> dict:
    """What the frame of every page needs (a Jinja2 context processor)."""
    user = auth.current_user(request)
    return {
        "user": user,
        "csrf": auth.csrf_token(request.session),
        "nav": readable_entities(request.app.state.studio.bundle, user),
        "unread": unread_count(request, user) if user else 0,
    }


def page(request: Request, template: str, context: dict, status: int = 200) -> Response:
    return request.app.state.studio.templates.TemplateResponse(request, template, context, status_code=status)


def message(request: Request, title: str, text: str, status: int, back: str = "/") -> Response:
    return page(request, "message.html", {"title": title, "message": text, "back": back}, status)


def screen(handler):
    """An endpoint on `/crm/{entity}/...`: finds the entity and turns refusals into plain pages."""
    async def endpoint(request: Request) -> Response:
        studio = request.app.state.studio
        entity = render.entity_of(studio.bundle, request.path_params["entity"])
        if entity is None:
            return message(request, "找不到页面", f"没有名为 {request.path_params['entity']} 的数据类型。", 404)
        here = Screen(request, auth.current_user(request), entity)
        try:
            return await handler(here)
        except permissions.Forbidden as refused:
            return message(request, "无权操作", f"您没有权限执行此操作({refused})。", 403, f"/crm/{here.slug}")
        except NotFound as missing:
            return message(request, "找不到记录", f"记录不存在或已被删除({missing})。", 404, f"/crm/{here.slug}")
    endpoint.__name__ = handler.__name__
    return endpoint


def record_id(here: Screen) -> int:
    return int(here.request.path_params["id"])


# ------------------------------------------------------------------ names of referenced records

def names_for(here: Screen, entity: ir.Entity, records: list[dict]) -> dict[tuple[str, int], str]:
    """(target entity, id) -> the target's name, for every reference in `records` the user may read."""
    wanted: dict[str, set[int]] = {}
    for f in entity.fields:
        if f.type not in ("ref", "list"):
            continue
        for record in records:
            value = record.get(f.name)
            ids = value if isinstance(value, list) else [value]
            wanted.setdefault(f.target, set()).update(i for i in ids if isinstance(i, int))
    names = {}
    for target, ids in wanted.items():
        for i in ids:
            try:
                names[(target, i)] = record_name(here.bundle, target, here.store.get(here.user, target, i))
            except (permissions.Forbidden, NotFound):
                pass
    return names


def record_name(bundle: ir.Bundle, entity: str, record: dict) -> str:
    field = render.title_field(bundle.entities[entity])
    return str(record.get(field) or f"#{record['id']}") if field else f"#{record['id']}"


# ------------------------------------------------------------------ lists

def list_state(request: Request, view: ir.ListView) -> dict[str, Any]:
    """What the list shows, from the query string: search, filters, sort and the page's cursor."""
    params = request.query_params
    sort = params.get("sort") or None
    return {
        "q": params.get("q", "").strip(),
        "filters": {f: params[f"f_{f}"] for f in view.filters if params.get(f"f_{f}")},
        "sort": sort,
        "desc": params.get("desc") == "1" if sort else (view.sort.order == "desc" if view.sort else False),
        "after": params.get("after") or None,
        "before": params.get("before") or None,
    }


def list_link(slug: str, state: dict, **changes) -> str:
    """The list's address with `changes` applied to the current state."""
    merged = {**state, **changes}
    pairs = [("q", merged["q"])] if merged["q"] else []
    pairs += [(f"f_{k}", v) for k, v in merged["filters"].items()]
    if merged["sort"]:
        pairs += [("sort", merged["sort"]), ("desc", "1" if merged["desc"] else "0")]
    pairs += [(k, merged[k]) for k in ("after", "before") if merged[k]]
    return f"/crm/{slug}?{urlencode(pairs)}"


def filter_views(here: Screen, view: ir.ListView, state: dict) -> list[dict]:
    out = []
    for name in view.filters:
        f = render.field_of(here.bundle, here.entity, name)
        choices = render.choices_for(f, here.bundle.agents)
        if f.type == "ref":
            rows = here.store.list(here.user, f.target, ListQuery(limit=FILTER_CHOICES)).rows \
                if permissions.may(here.bundle, here.user, f.target, "read") else []
            choices = [(str(r["id"]), record_name(here.bundle, f.target, r)) for r in rows]
        out.append({"name": name, "label": render.label(f), "choices": choices,
                    "value": state["filters"].get(name, "")})
    return out


@screen
async def list_page(here: Screen) -> Response:
    view = render.list_of(here.bundle, here.entity)
    state = list_state(here.request, view)
    query = ListQuery(search=state["q"], filters=state["filters"], sort=state["sort"],
                      descending=state["desc"] if state["sort"] else None, after=state["after"],
                      before=state["before"], limit=PAGE_SIZE)
    try:
        result = here.store.list(here.user, here.entity.name, query)
    except validation.Invalid as bad:   # a hand-made address: unknown sort, bad cursor or filter value
        return message(here.request, "无法显示列表", str(bad), 400, f"/crm/{here.slug}")
    tz = render.zone(here.bundle)
    names = names_for(here, here.entity, result.rows)
    fields = [render.field_of(here.bundle, here.entity, c) for c in view.columns]
    rows = [{"id": r["id"], "cells": [render.shown(f, r.get(f.name), tz=tz, names=names, agents=here.bundle.agents)
                                       for f in fields]} for r in result.rows]
    sorted_by = state["sort"] or (view.sort.field if view.sort else "id")
    columns = [{"name": f.name, "label": render.label(f), "sorted": sorted_by == f.name,
                "link": list_link(here.slug, state, sort=f.name, desc=sorted_by == f.name and not state["desc"],
                                  after=None, before=None)} for f in fields]
    paging = {
        "next": list_link(here.slug, state, after=result.next, before=None) if result.next else None,
        "previous": list_link(here.slug, state, before=result.previous, after=None) if result.previous else None,
    }
    context = {"screen": here, "view": view, "state": state, "columns": columns, "rows": rows, "paging": paging,
               "total": result.total, "filters": filter_views(here, view, state), "current": here.slug,
               "title": view.title or here.title, "may_create": here.may("create")}
    template = "partials/table.html" if here.request.headers.get("hx-target") == "table" else "list.html"
    return page(here.request, template, context)


# ------------------------------------------------------------------ detail

@screen
async def detail_page(here: Screen) -> Response:
    if here.request.method == "DELETE":
        return await _delete(here)
    record = here.store.get(here.user, here.entity.name, record_id(here))
    return detail(here, record)


def detail(here: Screen, record: dict, *, refusal: str | None = None, status: int = 200) -> Response:
    from runtime.crm import workflows

    names = names_for(here, here.entity, [record])
    context = {
        "screen": here, "record": record, "current": here.slug, "refusal": refusal,
        "title": f"{here.title} #{record['id']}",
        "sections": render.sections(here.bundle, here.entity, record, user=here.user.name, editing=False, names=names),
        "state": render.state_title(here.bundle, here.entity, record.get("state")),
        "transitions": workflows.transitions_for(here.bundle, here.entity.name, record, here.user)
        if here.entity.workflow else [],
        "clocks": sla_view(here, record),
        "history": history_view(here, record),
        "may_update": here.may("update"), "may_delete": here.may("delete"),
    }
    return page(here.request, "detail.html", context, status)


def history_view(here: Screen, record: dict) -> list[dict]:
    """The audit log of the record, newest first, in people's words."""
    tz = render.zone(here.bundle)
    actions = {"create": "新建", "update": "修改", "delete": "删除", "transition": "流转"}
    out = []
    for entry in reversed(here.store.history(here.user, here.entity.name, record["id"])):
        f = render.field_of(here.bundle, here.entity, entry.field) if entry.field else None
        out.append({
            "at": entry.at.astimezone(tz).strftime("%Y-%m-%d %H:%M"),
            "who": _agent_name(here.bundle, entry.user), "action": actions.get(entry.action, entry.action),
            "field": render.label(f) if f else "",
            "before": _logged(here, f, entry.before), "after": _logged(here, f, entry.after),
        })
    return out


def _logged(here: Screen, f: ir.EntityField | None, text: str | None) -> str:
    """A value as the audit log keeps it (text), shown as the field's values are."""
    if f is None or text is None:
        return text or ""
    value: Any = text
    if f.type == "ref" and text.isdigit():
        value = int(text)
    elif f.type == "bool":
        value = text == "true"
    try:
        return render.shown(f, value, tz=render.zone(here.bundle), agents=here.bundle.agents)
    except (ValueError, TypeError):
        return text


def _agent_name(bundle: ir.Bundle, name: str) -> str:
    agent = bundle.agents.get(name)
    return (agent.title or name) if agent else name


def sla_view(here: Screen, record: dict) -> list[dict]:
    """The record's SLA clocks, when its workflow has any."""
    if not here.entity.workflow or not here.bundle.workflows[here.entity.workflow].slas:
        return []
    from runtime.crm import sla

    flow = here.bundle.workflows[here.entity.workflow]
    clocks = sla.sla_clocks(here.bundle, flow, state_history(here, record), here.studio.clock())
    tz = render.zone(here.bundle)
    return [{"name": c.name, "percent": int(c.percent), "breached": c.breached, "stopped": c.stopped,
             "elapsed": _hours(c.elapsed_ms), "target": _hours(c.target_ms),
             "due": c.due_at.astimezone(tz).strftime("%Y-%m-%d %H:%M") if c.due_at else None} for c in clocks]


def state_history(here: Screen, record: dict) -> list[tuple[Any, str]]:
    """(when, state entered), oldest first, from the audit log."""
    out = []
    for entry in here.store.history(here.user, here.entity.name, record["id"]):
        if entry.field == "state" and entry.after:
            out.append((entry.at, entry.after))
    return out or [(record["created_at"], record["state"])]


def _hours(ms: int) -> str:
    minutes = ms // 60000
    return f"{minutes // 60}小时{minutes % 60:02d}分"


# ------------------------------------------------------------------ transitions

@screen
async def transition(here: Screen) -> Response:
    from runtime.crm.workflows import TransitionRefused

    name = here.request.path_params["name"]
    try:
        here.store.transition(here.user, here.entity.name, record_id(here), name)
    except TransitionRefused as refused:
        record = here.store.get(here.user, here.entity.name, record_id(here))
        return detail(here, record, refusal=str(refused), status=409)
    return RedirectResponse(f"/crm/{here.slug}/{record_id(here)}", status_code=303)


# ------------------------------------------------------------------ create and edit

def editable_names(here: Screen, record: dict, creating: bool) -> list[str]:
    """The fields the form lets the user change for this record (visible, not read-only; on a new
    record, required read-only fields too, since nothing else could fill them)."""
    facts = render.condition_values(here.entity, record)
    names = []
    for section in render.form_of(here.bundle, here.entity).sections:
        if not render.holds(section.when, facts, here.user.name):
            continue
        for item in section.fields:
            f = next((f for f in here.entity.fields if f.name == item.name), None)
            if f is None or not render.holds(item.when, facts, here.user.name):
                continue
            if not item.readonly or (creating and f.required):
                names.append(f.name)
    return names


def submitted(here: Screen, form: FormData, base: dict, creating: bool) -> tuple[dict, dict]:
    """(what the form shows: the record with the typed text over it, the data for the store).
    Which fields count is decided on what was typed, so a field a condition hides is left as it is."""
    typed = {k: v for k, v in form.items() if k in {f.name for f in here.entity.fields}}
    shown = {**base, **typed}
    names = editable_names(here, shown, creating)
    data = validation.from_form(here.entity, {n: form[n] for n in names if n in form})
    return shown, data


def form_page(here: Screen, record: dict, *, creating: bool, errors: dict | None = None,
              conflict: str | None = None, status: int = 200, partial: bool = False) -> Response:
    names = names_for(here, here.entity, [{k: v for k, v in record.items()}])
    editable = set(editable_names(here, record, creating))
    sections = render.sections(here.bundle, here.entity, record, user=here.user.name, editing=True,
                               errors=errors or {}, names=names)
    for section in sections:
        for f in section.fields:
            if f.name in editable and f.readonly:   # required read-only field on a new record
                f.readonly = False
                f.value = render.input_value(render.field_of(here.bundle, here.entity, f.name), record.get(f.name),
                                             render.zone(here.bundle))
                f.choices = render.choices_for(render.field_of(here.bundle, here.entity, f.name), here.bundle.agents)
    action = f"/crm/{here.slug}/new" if creating else f"/crm/{here.slug}/{record['id']}/edit"
    other = {k: v for k, v in (errors or {}).items() if k not in {f.name for s in sections for f in s.fields}}
    context = {"screen": here, "record": record, "sections": sections, "creating": creating, "action": action,
               "errors": errors or {}, "other_errors": other, "conflict": conflict, "current": here.slug,
               "title": f"新建{here.title}" if creating else f"编辑{here.title} #{record['id']}"}
    return page(here.request, "partials/form.html" if partial else "form.html", context, status)


@screen
async def new_record(here: Screen) -> Response:
    if not here.may("create"):
        raise permissions.Forbidden(f"{here.user.name} may not create {here.entity.name} records")
    if here.request.method == "GET":
        prefill = {f.name: here.request.query_params[f.name] for f in here.entity.fields
                   if f.name in here.request.query_params}
        defaults = {f.name: f.default for f in here.entity.fields if f.default is not None}
        return form_page(here, {**defaults, **prefill}, creating=True)
    form = await here.request.form()
    shown, data = submitted(here, form, {}, True)
    try:
        saved = here.store.create(here.user, here.entity.name, data)
    except validation.Invalid as invalid:
        return form_page(here, shown, creating=True, errors=invalid.errors, status=400)
    return RedirectResponse(f"/crm/{here.slug}/{saved['id']}", status_code=303)


@screen
async def edit_record(here: Screen) -> Response:
    record = here.store.get(here.user, here.entity.name, record_id(here))
    if not here.may("update"):
        raise permissions.Forbidden(f"{here.user.name} may not update {here.entity.name} records")
    if here.request.method == "GET":
        return form_page(here, record, creating=False)
    form = await here.request.form()
    shown, data = submitted(here, form, record, False)
    version = form.get("version")
    try:
        saved = here.store.update(here.user, here.entity.name, record["id"], data,
                                  version=int(version) if str(version or "").isdigit() else None)
    except validation.Invalid as invalid:
        return form_page(here, {**shown, "version": version}, creating=False, errors=invalid.errors, status=400)
    except Conflict as conflict:
        # Keep what the user typed; the form now carries the current version, so saving again
        # overwrites the other change knowingly.
        return form_page(here, {**shown, "version": record["version"]}, creating=False, conflict=str(conflict),
                         status=409)
    return RedirectResponse(f"/crm/{here.slug}/{saved['id']}", status_code=303)


@screen
async def refresh_form(here: Screen) -> Response:
    """The form again for what has been typed so far: conditional fields and sections follow the
    values live (htmx posts the form here on every change)."""
    form = await here.request.form()
    existing = form.get("id")
    base = here.store.get(here.user, here.entity.name, int(existing)) if str(existing or "").isdigit() else {}
    shown, _ = submitted(here, form, base, not base)
    if base:
        shown["version"] = form.get("version", base["version"])
    return form_page(here, shown, creating=not base, partial=True)


# ------------------------------------------------------------------ reference pickers

@screen
async def pick(here: Screen) -> Response:
    """Matches for a reference field's search box, or the picker with a record chosen."""
    params = here.request.query_params
    field = params.get("field", "")
    chosen = params.get("choose")
    if chosen is not None:
        record = here.store.get(here.user, here.entity.name, int(chosen)) if chosen.isdigit() else None
        view = render.FieldView(name=field, label="", type="ref", value=str(record["id"]) if record else "",
                                target=here.slug, shown=record_name(here.bundle, here.entity.name, record) if record else "")
        return page(here.request, "partials/ref_picker.html", {"f": view})
    q = params.get(f"{field}__search", "").strip()
    rows = here.store.list(here.user, here.entity.name, ListQuery(search=q, limit=PICK_SIZE)).rows
    matches = [(r["id"], record_name(here.bundle, here.entity.name, r)) for r in rows]
    return page(here.request, "partials/ref_options.html", {"matches": matches, "field": field, "slug": here.slug})


# ------------------------------------------------------------------ delete

@screen
async def delete_record(here: Screen) -> Response:
    record = here.store.get(here.user, here.entity.name, record_id(here))
    if not here.may("delete"):
        raise permissions.Forbidden(f"{here.user.name} may not delete {here.entity.name} records")
    if here.request.method == "GET":
        return page(here.request, "confirm_delete.html", {
            "screen": here, "record": record, "current": here.slug, "title": f"删除{here.title} #{record['id']}",
            "name": record_name(here.bundle, here.entity.name, record)})
    return await _delete(here)


async def _delete(here: Screen) -> Response:
    here.store.delete(here.user, here.entity.name, record_id(here))
    target = f"/crm/{here.slug}"
    if here.request.headers.get("hx-request"):
        return Response(status_code=200, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)


# ------------------------------------------------------------------ CSV

@screen
async def export_csv(here: Screen) -> Response:
    from runtime.crm import csv_io

    text = csv_io.export_csv(here.store, here.user, here.entity.name, all_fields=True, labels=True)
    # With a byte-order mark so that spreadsheet programs read the Chinese correctly.
    return Response("\ufeff" + text, media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{here.slug}.csv"'})


@screen
async def import_csv(here: Screen) -> Response:
    """Upload a CSV file: every row is applied, or, when any row is wrong, none and a report."""
    from runtime.crm import csv_io

    if not (here.may("create") or here.may("update")):
        raise permissions.Forbidden(f"{here.user.name} may not create or update {here.entity.name} records")
    keys = ["id", *[f.name for f in here.entity.fields if f.unique]]
    context = {"screen": here, "current": here.slug, "title": f"导入{here.title}", "report": None, "keys":
               [(k, render.label(render.field_of(here.bundle, here.entity, k))) for k in keys], "problem": None}
    if here.request.method == "GET":
        return page(here.request, "import.html", context)
    form = await here.request.form()
    upload = form.get("file")
    data = await upload.read() if upload and not isinstance(upload, str) else b""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return page(here.request, "import.html", {**context, "problem": "文件不是 UTF-8 编码的 CSV,请另存为 UTF-8 后重试。"}, 400)
    key = str(form.get("key") or "id")
    try:
        report = csv_io.import_csv(here.store, here.user, here.entity.name, text, key=key if key in keys else "id")
    except validation.Invalid as invalid:
        return page(here.request, "import.html", {**context, "problem": str(invalid)}, 400)
    rows = [{"row": n, "problems": [(render.label(render.field_of(here.bundle, here.entity, f))
                                     if f in {x.name for x in here.entity.fields} else f, m) for f, m in errors.items()]}
            for n, errors in sorted(report.errors.items())]
    return page(here.request, "import.html", {**context, "report": report, "rows": rows},
                200 if report.applied else 400)


# ------------------------------------------------------------------ notifications and the start page

async def notifications_page(request: Request) -> Response:
    from runtime.crm import notifications

    user, studio = auth.current_user(request), request.app.state.studio
    # What the page shows is read now: marked in the same transaction, and only those notices
    # (one that arrives meanwhile stays unread).  The page still marks them as new this once.
    with studio.engine.begin() as connection:
        items = notifications.for_agent(connection, user.name)
        shown = [n.id for n in items if n.read_at is None]
        if shown:
            notifications.mark_read(connection, user.name, studio.clock(), shown)
    return page(request, "notifications.html", {"items": items, "title": "通知", "current": "notifications",
                                                "tz": render.zone(studio.bundle)})


async def crm_index(request: Request) -> Response:
    return page(request, "message.html", {"title": "CRM", "message": "请从上方选择要查看的列表。"})


routes = [
    Route("/crm", crm_index),
    Route("/notifications", notifications_page),
    Route("/crm/{entity}", list_page),
    Route("/crm/{entity}/new", new_record, methods=["GET", "POST"]),
    Route("/crm/{entity}/form", refresh_form, methods=["POST"]),
    Route("/crm/{entity}/pick", pick),
    Route("/crm/{entity}/export.csv", export_csv),
    Route("/crm/{entity}/import", import_csv, methods=["GET", "POST"]),
    Route("/crm/{entity}/{id:int}", detail_page, methods=["GET", "DELETE"]),
    Route("/crm/{entity}/{id:int}/edit", edit_record, methods=["GET", "POST"]),
    Route("/crm/{entity}/{id:int}/delete", delete_record, methods=["GET", "POST"]),
    Route("/crm/{entity}/{id:int}/transition/{name}", transition, methods=["POST"]),
]
