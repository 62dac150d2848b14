"""Stage 3 (CRM part): entities, forms, lists, roles and evaluation forms to IR.

Entities come first because everything else (flows, forms, workflows, roles) types the fields
of records through `TypeSpace.records`, which `declare_entities` fills in.
"""
from __future__ import annotations

from decimal import Decimal

from compiler import ir
from compiler.expressions import ANY, Context, Scope, check, check_as, check_condition
from compiler.symbols import SymbolTable, resolve
from compiler.types import NUMERIC, SIMPLE_TYPES, describe
from dsl import ast
from dsl.diagnostics import did_you_mean

FIELD_TYPES = ("text", "number", "money", "bool", "date", "datetime", "phone", "email", "agent")
IMPLICIT_FIELDS = {"id": "number", "created_at": "datetime"}
STATE_FIELD = "state"


def type_of(ctx: Context, table: SymbolTable, type_ref: ast.TypeRef, owner: str) -> str:
    """The compiler's type for a written type; enums are named after their owner (`Customer.tier`)."""
    if type_ref.kind == "enum":
        names = [v.name for v in type_ref.values]
        for i, v in enumerate(type_ref.values):
            if v.name in names[:i]:
                ctx.report.error(ctx.file, v.pos, "E206", f"choice '{v.name}' is listed twice")
        ctx.types.enums[owner] = names
        return f"enum:{owner}"
    if type_ref.kind in ("ref", "list"):
        symbol = resolve(table, ctx.report, "entity", type_ref.name, ctx.file, type_ref.pos)
        if symbol is None:
            return ANY
        return f"{'record' if type_ref.kind == 'ref' else 'list'}:{symbol.name}"
    if type_ref.name in SIMPLE_TYPES:
        return type_ref.name
    if table.get("entity", type_ref.name):
        ctx.report.error(ctx.file, type_ref.pos, "E601", f"'{type_ref.name}' is an entity, not a type",
                         hint=f"write `ref {type_ref.name}` for a link to one record, or `list of {type_ref.name}`")
    else:
        ctx.report.error(ctx.file, type_ref.pos, "E601", f"unknown type '{type_ref.name}'",
                         hint=did_you_mean(type_ref.name, SIMPLE_TYPES) or f"the types are: {', '.join(FIELD_TYPES)}, enum(...), ref ENTITY, list of ENTITY")
    return ANY


def declare_entities(contexts, table: SymbolTable) -> None:
    """Record every entity's field types in the shared TypeSpace (before anything uses them)."""
    for symbol in table.all("entity"):
        ctx = contexts(symbol.file)
        decl: ast.Entity = symbol.decl
        fields = dict(IMPLICIT_FIELDS)
        required = []
        for f in decl.fields:
            if f.name in IMPLICIT_FIELDS or f.name == STATE_FIELD:
                ctx.report.error(ctx.file, f.pos, "E209", f"'{f.name}' is a field every record has already",
                                 hint="choose another name")
                continue
            if f.name in fields:
                ctx.report.error(ctx.file, f.pos, "E207", f"field '{f.name}' is declared twice in {decl.name}")
                continue
            fields[f.name] = type_of(ctx, table, f.type, f"{decl.name}.{f.name}")
            keys = {o.key for o in f.options}
            if "required" in keys and "default" not in keys:
                required.append(f.name)
        ctx.types.records[decl.name] = fields
        ctx.types.required[decl.name] = required


def lower_entity(ctx: Context, decl: ast.Entity, workflow: str | None) -> ir.Entity:
    fields = []
    for f in decl.fields:
        t = ctx.types.records[decl.name].get(f.name)
        if t is None:
            continue
        fields.append(_field(ctx, decl, f, t))
    return ir.Entity(name=decl.name, title=decl.title, fields=fields, workflow=workflow)


def _field(ctx: Context, decl: ast.Entity, f: ast.FieldDecl, t: str) -> ir.EntityField:
    kind = t.partition(":")[0] if ":" in t else t
    kind = {"record": "ref"}.get(kind, kind)
    out = ir.EntityField(name=f.name, type=kind if t != ANY else "text",
                         target=t.partition(":")[2] if kind in ("ref", "list") else None,
                         choices=[ir.EnumChoice(name=v.name, label=v.label) for v in f.type.values])
    seen = set()
    for option in f.options:
        if option.key in seen:
            ctx.report.error(ctx.file, option.pos, "E207", f"'{option.key}' is given twice for field '{f.name}'")
        seen.add(option.key)
        _apply_option(ctx, out, option, t)
    # Checked once every option is known, whatever order they were written in.
    default = next((o for o in f.options if o.key == "default"), None)
    if default is not None and out.default is not None:
        _check_default_bounds(ctx, out, default)
    return out


def _apply_option(ctx: Context, out: ir.EntityField, option: ast.FieldOption, t: str) -> None:
    key = option.key
    if key in ("required", "unique"):
        setattr(out, key, True)
    elif key == "label":
        out.label = option.value
    elif key == "renamed":
        out.renamed_from = option.value
    elif key == "max":
        if t not in ("text", "phone", "email"):
            ctx.report.error(ctx.file, option.pos, "E602", f"max sets the length of text; '{out.name}' is {describe(t)}",
                             hint="use `range A..B` for numbers")
        out.max_length = option.value
    elif key == "range":
        if t not in NUMERIC:
            ctx.report.error(ctx.file, option.pos, "E602", f"range is for numbers and money; '{out.name}' is {describe(t)}")
        if option.value > option.value2:
            ctx.report.error(ctx.file, option.pos, "E603", f"range {option.value}..{option.value2} is empty",
                             hint="write the smaller bound first")
        out.minimum, out.maximum = str(option.value), str(option.value2)
    elif key == "default":
        value = check_as(ctx, option.value, Scope(), t, f"the default of '{out.name}'")
        if not isinstance(value, ir.Const):
            ctx.report.error(ctx.file, option.pos, "E602", "a default must be a fixed value")
        else:
            out.default = value.value


def _check_default_bounds(ctx: Context, out: ir.EntityField, option: ast.FieldOption) -> None:
    if out.max_length is not None and isinstance(out.default, str) and len(out.default) > out.max_length:
        ctx.report.error(ctx.file, option.pos, "E603", f"the default is longer than max {out.max_length}")
    if out.minimum is not None and isinstance(out.default, str):
        try:
            if not Decimal(out.minimum) <= Decimal(out.default) <= Decimal(out.maximum):
                ctx.report.error(ctx.file, option.pos, "E603", f"the default {out.default} is outside range {out.minimum}..{out.maximum}")
        except ArithmeticError:
            pass


# ------------------------------------------------------------------ forms and lists

def _entity_fields(ctx: Context, table: SymbolTable, entity: str, pos) -> dict[str, str] | None:
    """The fields of `entity`, or None after reporting that it is unknown."""
    symbol = resolve(table, ctx.report, "entity", entity, ctx.file, pos)
    return ctx.types.records.get(symbol.name) if symbol else None


def _known_field(ctx: Context, entity: str, fields: dict[str, str], name: str, pos) -> bool:
    if name in fields:
        return True
    ctx.report.error(ctx.file, pos, "E210", f"{entity} has no field '{name}'",
                     hint=did_you_mean(name, fields) or f"its fields are: {', '.join(sorted(fields))}")
    return False


def lower_form(ctx: Context, table: SymbolTable, decl: ast.Form) -> ir.Form:
    fields = _entity_fields(ctx, table, decl.entity, ast.where(decl.ref_pos, decl.pos)) or {}
    scope = Scope(record=decl.entity if fields else None, allow_user=True, lenient=not fields)
    sections, placed = [], {}
    for section in decl.sections:
        out = []
        for f in section.fields:
            if fields and not _known_field(ctx, decl.entity, fields, f.name, f.pos):
                continue
            if f.name in placed:
                ctx.report.error(ctx.file, f.pos, "E207", f"field '{f.name}' is already on this form (line {placed[f.name]})")
                continue
            placed[f.name] = f.pos.line
            when = check_condition(ctx, f.when, scope) if f.when is not None else None
            out.append(ir.FormField(name=f.name, readonly=f.readonly, when=when))
        when = check_condition(ctx, section.when, scope) if section.when is not None else None
        sections.append(ir.FormSection(title=section.title, when=when, fields=out))
    for name in ctx.types.required.get(decl.entity, []):
        if fields and name not in placed:
            ctx.report.warning(ctx.file, decl.pos, "W604", f"required field '{name}' is not on form '{decl.name}'",
                               hint="a record cannot be created with this form until the field is added")
    return ir.Form(name=decl.name, entity=decl.entity, title=decl.title, sections=sections)


def lower_list(ctx: Context, table: SymbolTable, decl: ast.ListView) -> ir.ListView:
    fields = _entity_fields(ctx, table, decl.entity, ast.where(decl.ref_pos, decl.pos)) or {}
    found: dict[str, ast.ListItem] = {}
    for item in decl.items:
        if item.key in found:
            ctx.report.error(ctx.file, item.pos, "E207", f"'{item.key}' is given twice", hint="keep one of them")
        found[item.key] = item
        names = item.value if isinstance(item.value, list) else [item.value]
        for name in names:
            if fields:
                _known_field(ctx, decl.entity, fields, name, item.pos)
    if "columns" not in found:
        ctx.report.error(ctx.file, decl.pos, "E605", f"list '{decl.name}' needs columns", hint="add `columns name, ...`")
    sort = found.get("sort")
    return ir.ListView(name=decl.name, entity=decl.entity, title=decl.title,
                       columns=found["columns"].value if "columns" in found else [],
                       filters=found["filters"].value if "filters" in found else [],
                       search=found["search"].value if "search" in found else [],
                       sort=ir.SortOrder(field=sort.value, order=sort.value2) if sort else None)


# ------------------------------------------------------------------ roles and evaluations

def lower_role(ctx: Context, table: SymbolTable, decl: ast.Role) -> ir.Role:
    permissions = []
    for p in decl.permissions:
        fields = _entity_fields(ctx, table, p.entity, p.pos)
        where = None
        if p.where is not None and fields is not None:
            where = check_condition(ctx, p.where, Scope(record=p.entity, allow_user=True))
        permissions.append(ir.Permission(access=p.access, entity=p.entity, where=where))
    return ir.Role(name=decl.name, title=decl.title, permissions=permissions)


def lower_evaluation(ctx: Context, decl: ast.Evaluation) -> ir.Evaluation:
    types = [v.name for v in decl.call_types]
    parts, seen_parts = [], set()
    for part in decl.parts:
        if part.name in seen_parts:
            ctx.report.error(ctx.file, part.pos, "E207", f"part '{part.name}' is declared twice")
        seen_parts.add(part.name)
        for t in part.not_for:
            if t not in types:
                ctx.report.error(ctx.file, part.pos, "E211", f"'{t}' is not one of the call types of '{decl.name}'",
                                 hint=did_you_mean(t, types) or f"the call types are: {', '.join(types)}")
        if set(part.not_for) >= set(types):
            ctx.report.warning(ctx.file, part.pos, "W606", f"part '{part.name}' applies to no call type")
        items, seen = [], set()
        for item in part.items:
            if item.name in seen:
                ctx.report.error(ctx.file, item.pos, "E207", f"item '{item.name}' is declared twice in part '{part.name}'")
            seen.add(item.name)
            if item.points <= 0:
                ctx.report.error(ctx.file, item.pos, "E603", "an item must be worth at least 1 point")
            items.append(ir.EvalItem(name=item.name, title=item.title, points=item.points))
        if not items:
            ctx.report.error(ctx.file, part.pos, "E605", f"part '{part.name}' has no items", hint='add `item name "title" POINTS`')
        parts.append(ir.EvalPart(name=part.name, title=part.title, not_for=part.not_for, items=items))
    return ir.Evaluation(name=decl.name, title=decl.title,
                         call_types=[ir.EnumChoice(name=v.name, label=v.label) for v in decl.call_types], parts=parts)
