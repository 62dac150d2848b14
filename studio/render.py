"""From the bundle's forms and lists and a record's values to what the templates show.

Pure functions: no requests, no database.  Values are the runtime's (runtime.values): Decimal for
money, date, aware datetime, enum choices by name, refs as the target's id.  What people see is
Chinese from the DSL: enum labels, field labels, money as ¥1,234.50, times in the project's zone.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Mapping
from zoneinfo import ZoneInfo

from compiler import ir
from runtime import values
from runtime.crm import listing
from runtime.crm.tables import table_name

DEFAULT_ZONE = "Asia/Shanghai"
# Columns every record has, beside the entity's fields.
BUILT_IN_LABELS = {"id": "编号", "state": "状态", "created_at": "创建时间", "updated_at": "更新时间",
                   "version": "版本"}
BUILT_IN_TYPES = {"id": "number", "state": "enum", "created_at": "datetime", "updated_at": "datetime",
                  "version": "number"}
DEFAULT_COLUMNS = 6
LONG_TEXT = 100                      # characters; longer texts are edited in a text area
YES, NO, NOTHING = "是", "否", ""


# ------------------------------------------------------------------ names

def slug(entity: str) -> str:
    """The entity's name in URLs: `AccountManager` -> `account_manager`."""
    return table_name(entity)[len("crm_"):]


def entity_of(bundle: ir.Bundle, slug_: str) -> ir.Entity | None:
    return next((e for e in bundle.entities.values() if slug(e.name) == slug_), None)


def zone(bundle: ir.Bundle) -> ZoneInfo:
    """The time zone people read times in: the project's business hours' zone."""
    for hours in bundle.hours.values():
        return ZoneInfo(hours.timezone)
    return ZoneInfo(DEFAULT_ZONE)


# ------------------------------------------------------------------ fields

def field_of(bundle: ir.Bundle, entity: ir.Entity, name: str) -> ir.EntityField:
    """The entity's field, or a stand-in for the built-in columns (id, state, created_at...)."""
    for f in entity.fields:
        if f.name == name:
            return f
    if name == "state" and entity.workflow:
        flow = bundle.workflows[entity.workflow]
        return ir.EntityField(name="state", type="enum", label=BUILT_IN_LABELS["state"],
                              choices=[ir.EnumChoice(name=s.name, label=s.title) for s in flow.states])
    if name in BUILT_IN_TYPES:
        return ir.EntityField(name=name, type=BUILT_IN_TYPES[name], label=BUILT_IN_LABELS[name])
    raise KeyError(f"{entity.name} has no field {name!r}")


def label(f: ir.EntityField) -> str:
    return f.label or f.name


def title_field(entity: ir.Entity) -> str | None:
    """The field that names a record in lists and pickers: the first text field."""
    return next((f.name for f in entity.fields if f.type == "text"), None)


# ------------------------------------------------------------------ forms and lists, with defaults

def form_of(bundle: ir.Bundle, entity: ir.Entity) -> ir.Form:
    """The entity's first form; one section with every field when the project declares none."""
    for form in bundle.forms.values():
        if form.entity == entity.name:
            return form
    fields = [ir.FormField(name=f.name) for f in entity.fields if f.type != "list"]
    if entity.workflow:
        fields.append(ir.FormField(name="state", readonly=True))
    return ir.Form(name=slug(entity.name), entity=entity.name, title=entity.title,
                   sections=[ir.FormSection(title=entity.title or entity.name, fields=fields)])


def list_of(bundle: ir.Bundle, entity: ir.Entity) -> ir.ListView:
    """The entity's first list, or the record store's default one (every field)."""
    return listing.view_for(bundle, entity.name, None)


# ------------------------------------------------------------------ showing values

def shown(f: ir.EntityField, value: Any, *, tz: ZoneInfo, names: Mapping[tuple[str, int], str] = {},
          agents: Mapping[str, ir.Agent] = {}) -> str:
    """A value as people read it.  `names` gives referenced records' names by (entity, id)."""
    if value is None or value == "":
        return NOTHING
    kind = f.type
    if kind == "enum":
        return next((c.label or c.name for c in f.choices if c.name == value), str(value))
    if kind == "ref":
        return names.get((f.target, value)) or f"#{value}"
    if kind == "list":
        return "、".join(names.get((f.target, v)) or f"#{v}" for v in value)
    if kind == "agent":
        agent = agents.get(value)
        return (agent.title or agent.name) if agent else str(value)
    if kind == "money":
        return money(value)
    if kind == "bool":
        return YES if value else NO
    if kind == "datetime":
        moment = values.coerce(value, "datetime")
        return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M")
    if kind == "date":
        return values.coerce(value, "date").isoformat()
    if kind == "number" and isinstance(value, Decimal):
        return values.to_text(value)
    return str(value)


def money(value: Any) -> str:
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return str(value)
    sign = "-" if amount < 0 else ""
    return f"{sign}¥{abs(amount):,.2f}"


def input_value(f: ir.EntityField, value: Any, tz: ZoneInfo) -> str:
    """A value as an <input> holds it (what the user typed stays as typed)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if f.type == "bool":
        return "true" if value else "false"
    if f.type == "datetime" and isinstance(value, dt.datetime):
        return value.astimezone(tz).strftime("%Y-%m-%dT%H:%M")
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return values.to_text(value)
    return str(value)


# ------------------------------------------------------------------ conditions

def condition_values(entity: ir.Entity, record: Mapping[str, Any]) -> dict[str, Any]:
    """The record's values in the types conditions compare (text typed into a form is converted
    where it can be; what cannot is none, so a condition on it does not hold)."""
    out = dict(record)
    for f in entity.fields:
        value = record.get(f.name)
        if isinstance(value, str) and f.type in ("number", "money", "date", "datetime"):
            try:
                out[f.name] = values.coerce(value, f.type)
            except (ValueError, values.EvalError):
                out[f.name] = None
    return out


def condition_fields(form: ir.Form) -> set[str]:
    """The fields that the form's `when` conditions read."""
    found: set[str] = set()

    def walk(expr) -> None:
        if expr is None:
            return
        if expr.kind == "var" and expr.path[:1] == [values.RECORD] and len(expr.path) > 1:
            found.add(expr.path[1])
        for arg in getattr(expr, "args", []):
            walk(arg)
    for section in form.sections:
        walk(section.when)
        for item in section.fields:
            walk(item.when)
    return found


def holds(expr: ir.Expr | None, record: Mapping[str, Any], user: str | None) -> bool:
    """Whether a form's `when` holds for the record (true when there is no condition)."""
    if expr is None:
        return True
    try:
        return values.truth(values.evaluate(expr, values.Scope(record=record, user=user)))
    except values.EvalError:
        return False


# ------------------------------------------------------------------ what the templates get

@dataclass
class FieldView:
    name: str
    label: str
    type: str
    value: str                       # as shown (read-only) or as the input holds it (editing)
    readonly: bool = False
    required: bool = False
    error: str | None = None
    choices: list[tuple[str, str]] = field(default_factory=list)   # (value, label) for selects
    target: str | None = None        # slug of a ref's target
    shown: str = ""                  # a ref's or agent's name beside its id
    multiline: bool = False          # long texts get a text area
    live: bool = False               # a condition reads it: changing it re-renders the form


@dataclass
class SectionView:
    title: str
    fields: list[FieldView]


def choices_for(f: ir.EntityField, agents: Mapping[str, ir.Agent]) -> list[tuple[str, str]]:
    if f.type == "enum":
        return [(c.name, c.label or c.name) for c in f.choices]
    if f.type == "bool":
        return [("true", YES), ("false", NO)]
    if f.type == "agent":
        return [(a.name, a.title or a.name) for a in agents.values()]
    return []


def sections(bundle: ir.Bundle, entity: ir.Entity, record: Mapping[str, Any], *, user: str | None,
             editing: bool, errors: Mapping[str, str] = {}, names: Mapping = {}) -> list[SectionView]:
    """The form's sections and fields that show for this record, in the DSL's order."""
    tz = zone(bundle)
    facts = condition_values(entity, record)
    form = form_of(bundle, entity)
    live = condition_fields(form)
    out = []
    for section in form.sections:
        if not holds(section.when, facts, user):
            continue
        views = [field_view(bundle, entity, item, record, editing=editing, errors=errors, names=names, tz=tz)
                 for item in section.fields if holds(item.when, facts, user)]
        for view in views:
            view.live = view.name in live
        if views:
            out.append(SectionView(section.title, views))
    return out


def field_view(bundle: ir.Bundle, entity: ir.Entity, item: ir.FormField, record: Mapping[str, Any], *,
               editing: bool, errors: Mapping[str, str], names: Mapping, tz: ZoneInfo) -> FieldView:
    f = field_of(bundle, entity, item.name)
    value = record.get(item.name)
    readonly = item.readonly or f.name in BUILT_IN_TYPES
    name_shown = shown(f, value, tz=tz, names=names, agents=bundle.agents)
    view = FieldView(name=f.name, label=label(f), type=f.type, readonly=readonly, required=f.required,
                     error=errors.get(f.name), target=slug(f.target) if f.target else None,
                     value=input_value(f, value, tz) if editing and not readonly else name_shown,
                     shown=name_shown if not isinstance(value, str) else (names.get((f.target, value)) or ""),
                     multiline=f.type == "text" and (f.max_length is None or f.max_length > LONG_TEXT))
    if editing and not readonly:
        view.choices = choices_for(f, bundle.agents)
    return view


def state_title(bundle: ir.Bundle, entity: ir.Entity, state: str | None) -> str:
    if not entity.workflow or state is None:
        return ""
    flow = bundle.workflows[entity.workflow]
    return next((s.title or s.name for s in flow.states if s.name == state), state)


def install_filters(env) -> None:
    env.filters["money"] = money
