"""Type-checks expressions and turns them into typed IR expressions.

Names are looked up in a `Scope`: the record whose fields bare names mean (in lookups, forms,
permissions and workflow guards), the flow's variables and built-ins, and `env.NAME` symbols,
which are replaced by their value for the environment being compiled.  A name that is none of
these may still be a choice of an enum when an enum is expected (`tier in [gold, platinum]`).
"""
from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field
from decimal import Decimal

from lark.exceptions import UnexpectedInput

from compiler import ir
from compiler.symbols import Reporter
from compiler.types import NUMERIC, ORDERED, TEXTUAL, TypeSpace, comparable, describe
from dsl import ast
from dsl.diagnostics import did_you_mean
from dsl.parser import parse_expression

ANY = "any"  # the type of an expression that already has an error: compatible with everything

# name -> (argument kinds, result type).  "hours" means the name of an hours declaration.
FUNCTIONS = {
    "open": (["hours"], "bool"),
    "len": (["text"], "number"),
    "hour": (["datetime"], "number"),
    "weekday": (["datetime"], "number"),
    "secret": (["literal"], "text"),
}


@dataclass
class Scope:
    variables: dict[str, str] = field(default_factory=dict)
    record: str | None = None       # entity whose fields bare names refer to
    allow_user: bool = False        # `user`: the agent acting in the studio
    lenient: bool = False           # the record's entity is unknown (already reported): accept any name


@dataclass
class Context:
    """What expression checking needs from the rest of the compiler for one file."""
    file: str
    types: TypeSpace
    report: Reporter
    env: dict[str, object]
    environment: str
    secrets: list[str]
    hours_exists: "callable"  # (name, pos) -> bool, reporting unknown hours itself


def _const(t: str, value) -> ir.Const:
    if isinstance(value, Decimal):
        value = format(value.normalize(), "f") if value == value.to_integral() else str(value)
    elif isinstance(value, datetime.date):
        value = value.isoformat()
    return ir.Const(type=t, value=value)


def check(ctx: Context, expr: ast.Expr, scope: Scope, expected: str | None = None) -> ir.Expr:
    if isinstance(expr, ast.Literal):
        if expr.kind == "date" and isinstance(expr.value, str):
            ctx.report.error(ctx.file, expr.pos, "E410", f"{expr.value} is not a date on the calendar",
                             hint="write a real date as YYYY-MM-DD")
            return ir.Const(type=ANY, value=None)
        return _const(expr.kind, expr.value) if expr.kind != "text" else ir.Const(type="text", value=expr.value)
    if isinstance(expr, ast.Ref):
        return _ref(ctx, expr, scope, expected)
    if isinstance(expr, ast.Not):
        operand = check_condition(ctx, expr.operand, scope)
        return ir.Op(type="bool", op="not", args=[operand])
    if isinstance(expr, ast.In):
        return _in(ctx, expr, scope)
    if isinstance(expr, ast.Call):
        return _call(ctx, expr, scope)
    if isinstance(expr, ast.Binary):
        if expr.op in ("and", "or"):
            left, right = check_condition(ctx, expr.left, scope), check_condition(ctx, expr.right, scope)
            return ir.Op(type="bool", op=expr.op, args=[left, right])
        if expr.op in ("==", "!=", "<", "<=", ">", ">="):
            return _compare(ctx, expr, scope)
        return _arith(ctx, expr, scope)
    raise TypeError(f"unknown expression node {type(expr).__name__}")


def check_condition(ctx: Context, expr: ast.Expr, scope: Scope) -> ir.Expr:
    result = check(ctx, expr, scope)
    if result.type not in ("bool", ANY):
        ctx.report.error(ctx.file, expr.pos, "E401", f"a condition must be true or false, but this is {describe(result.type)}",
                         hint="compare it with something, e.g. `x != none` or `x == 1`")
    return result


def check_as(ctx: Context, expr: ast.Expr, scope: Scope, target: str, what: str) -> ir.Expr:
    """Check `expr` where a value of type `target` is needed (an assignment or a field)."""
    from compiler.types import assignable

    result = check(ctx, expr, scope, expected=target)
    if result.type != ANY and target != ANY and not assignable(result.type, target):
        ctx.report.error(ctx.file, expr.pos, "E403", f"{what} needs {describe(target)}, but this is {describe(result.type)}")
    return result


def _bare_unknown(ctx: Context, expr: ast.Expr, scope: Scope) -> bool:
    """A lone name that is no variable or field: perhaps a choice of an enum on the other side."""
    record_fields = ctx.types.records.get(scope.record, {}) if scope.record else {}
    return (isinstance(expr, ast.Ref) and len(expr.parts) == 1 and expr.parts[0] not in scope.variables
            and expr.parts[0] not in record_fields)


def _ref(ctx: Context, expr: ast.Ref, scope: Scope, expected: str | None) -> ir.Expr:
    head, rest = expr.parts[0], expr.parts[1:]
    if head == "env":
        return _env(ctx, expr)
    record_fields = ctx.types.records.get(scope.record, {}) if scope.record else {}
    if head in record_fields:
        path, t = ["@record", head], record_fields[head]
    elif head in scope.variables:
        path, t = [head], scope.variables[head]
    elif head == "user" and scope.allow_user:
        path, t = ["@user"], "agent"
    elif scope.lenient or (not rest and expected == ANY):
        return ir.Var(type=ANY, path=expr.parts)  # follows from an error already reported
    elif not rest and expected and ctx.types.enum_values(expected) is not None:
        values = ctx.types.enum_values(expected)
        if head in values:
            return ir.Const(type=expected, value=head)
        ctx.report.error(ctx.file, expr.pos, "E211", f"'{head}' is not one of the choices of {expected.partition(':')[2]}",
                         hint=did_you_mean(head, values) or f"the choices are: {', '.join(values)}")
        return ir.Const(type=ANY, value=head)
    else:
        known = list(scope.variables) + list(record_fields) + (["user"] if scope.allow_user else [])
        ctx.report.error(ctx.file, expr.pos, "E404", f"unknown name '{head}'",
                         hint=did_you_mean(head, known) or _where_names_come_from(scope))
        return ir.Var(type=ANY, path=expr.parts)
    for part in rest:
        fields = ctx.types.fields_of(t)
        if t == ANY:
            break
        if fields is None:
            ctx.report.error(ctx.file, expr.pos, "E210", f"'{'.'.join(path)}' is {describe(t)} and has no fields",
                             hint=f"remove '.{part}'")
            return ir.Var(type=ANY, path=path + [part])
        if part not in fields:
            ctx.report.error(ctx.file, expr.pos, "E210", f"{describe(t)} has no field '{part}'",
                             hint=did_you_mean(part, fields) or f"its fields are: {', '.join(sorted(fields))}")
            return ir.Var(type=ANY, path=path + [part])
        path, t = path + [part], fields[part]
    return ir.Var(type=t, path=path)


def _where_names_come_from(scope: Scope) -> str:
    if scope.record:
        return f"names here are fields of {scope.record}, flow variables, or env.NAME"
    return "a name must be set before it is used (set, collect, lookup, http), or be a built-in such as caller"


def _env(ctx: Context, expr: ast.Ref) -> ir.Expr:
    if len(expr.parts) != 2:
        ctx.report.error(ctx.file, expr.pos, "E122", "write an environment symbol as env.NAME")
        return ir.Const(type=ANY, value=None)
    name = expr.parts[1]
    if name not in ctx.env:
        ctx.report.error(ctx.file, expr.pos, "E122", f"env.{name} is not defined for environment '{ctx.environment}'",
                         hint=did_you_mean(name, ctx.env) or f"add {name} under environments.{ctx.environment} in flowdesk.yaml")
        return ir.Const(type=ANY, value=None)
    value = ctx.env[name]
    if isinstance(value, bool):
        return ir.Const(type="bool", value=value)
    if isinstance(value, (int, float)):
        return _const("number", Decimal(str(value)))
    return ir.Const(type="text", value=str(value))


def _compare(ctx: Context, expr: ast.Binary, scope: Scope) -> ir.Expr:
    if _bare_unknown(ctx, expr.left, scope) and not _bare_unknown(ctx, expr.right, scope):
        right = check(ctx, expr.right, scope)
        left = check(ctx, expr.left, scope, expected=right.type)
    else:
        left = check(ctx, expr.left, scope)
        right = check(ctx, expr.right, scope, expected=left.type)
    _require_comparable(ctx, expr, left.type, right.type, ordered=expr.op not in ("==", "!="))
    return ir.Op(type="bool", op=expr.op, args=[left, right])


def _require_comparable(ctx: Context, expr: ast.Node, a: str, b: str, ordered: bool) -> None:
    if ANY in (a, b):
        return
    if not comparable(a, b):
        ctx.report.error(ctx.file, expr.pos, "E402", f"cannot compare {describe(a)} with {describe(b)}")
    elif ordered and not (a in ORDERED and b in ORDERED or (a in NUMERIC and b in NUMERIC)):
        ctx.report.error(ctx.file, expr.pos, "E402", f"{describe(a)} has no order; use == or != instead")


def _in(ctx: Context, expr: ast.In, scope: Scope) -> ir.Expr:
    subject = check(ctx, expr.subject, scope)
    options = [check(ctx, o, scope, expected=subject.type) for o in expr.options]
    for node, option in zip(expr.options, options):
        _require_comparable(ctx, node, subject.type, option.type, ordered=False)
    return ir.Op(type="bool", op="not in" if expr.negated else "in", args=[subject, *options])


def _arith(ctx: Context, expr: ast.Binary, scope: Scope) -> ir.Expr:
    left, right = check(ctx, expr.left, scope), check(ctx, expr.right, scope)
    a, b = left.type, right.type
    result = ANY
    if ANY in (a, b):
        pass
    elif expr.op == "+" and (a in TEXTUAL or b in TEXTUAL) and "none" not in (a, b):
        result = "text"  # joining text, e.g. a URL: env.BILLING_API + "/bills/" + caller
    elif a in NUMERIC and b in NUMERIC:
        result = "money" if "money" in (a, b) else "number"
    elif a == b == "duration" and expr.op in "+-":
        result = "duration"
    else:
        ctx.report.error(ctx.file, expr.pos, "E402", f"cannot use '{expr.op}' on {describe(a)} and {describe(b)}")
    return ir.Op(type=result, op=expr.op, args=[left, right])


def _call(ctx: Context, expr: ast.Call, scope: Scope) -> ir.Expr:
    if expr.name not in FUNCTIONS:
        ctx.report.error(ctx.file, expr.pos, "E405", f"unknown function '{expr.name}'",
                         hint=did_you_mean(expr.name, FUNCTIONS) or f"the functions are: {', '.join(sorted(FUNCTIONS))}")
        return ir.Fn(type=ANY, name=expr.name, args=[])
    params, result = FUNCTIONS[expr.name]
    if len(expr.args) != len(params):
        ctx.report.error(ctx.file, expr.pos, "E405", f"{expr.name}() takes {len(params)} argument{'s' if len(params) != 1 else ''}, not {len(expr.args)}")
        return ir.Fn(type=result, name=expr.name, args=[])
    args = []
    for param, arg in zip(params, expr.args):
        if param == "hours":
            if not (isinstance(arg, ast.Ref) and len(arg.parts) == 1):
                ctx.report.error(ctx.file, arg.pos, "E405", f"{expr.name}() takes the name of an hours declaration")
                continue
            ctx.hours_exists(arg.parts[0], arg.pos)
            args.append(ir.Const(type="text", value=arg.parts[0]))
        elif param == "literal":
            if not (isinstance(arg, ast.Literal) and arg.kind == "text"):
                ctx.report.error(ctx.file, arg.pos, "E405", f"{expr.name}() takes a quoted name, e.g. secret(\"BILLING_TOKEN\")")
                continue
            if arg.value not in ctx.secrets:
                ctx.report.error(ctx.file, arg.pos, "E123", f"secret '{arg.value}' is not declared",
                                 hint=f"list it under `secrets:` in flowdesk.yaml; its value is read from the environment variable {arg.value} at run time")
            args.append(ir.Const(type="text", value=arg.value))
        else:
            value = check(ctx, arg, scope)
            ok = value.type == ANY or value.type == param or (param == "text" and value.type in TEXTUAL)
            if not ok:
                ctx.report.error(ctx.file, arg.pos, "E405", f"{expr.name}() needs {describe(param)}, not {describe(value.type)}")
            args.append(value)
    return ir.Fn(type=result, name=expr.name, args=args)


# ------------------------------------------------------------------ prompts with {expressions}

_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([^{}]*)\}")


def check_text(ctx: Context, text: str, pos: ast.Pos, scope: Scope) -> list[ir.TextPart]:
    """`"您的余额是 {balance.amount} 元"` -> text and expression parts; `{{` and `}}` are literal braces."""
    parts: list[ir.TextPart] = []
    plain, last = [], 0
    for m in _PLACEHOLDER.finditer(text):
        plain.append(text[last:m.start()])
        last = m.end()
        if m.group(0) in ("{{", "}}"):
            plain.append(m.group(0)[0])
            continue
        if "".join(plain):
            parts.append(ir.TextPart(text="".join(plain)))
        plain = []
        parts.append(ir.TextPart(expr=_placeholder(ctx, m.group(1), pos, scope)))
    plain.append(text[last:])
    if "".join(plain):
        parts.append(ir.TextPart(text="".join(plain)))
    return parts


def _placeholder(ctx: Context, source: str, pos: ast.Pos, scope: Scope) -> ir.Expr:
    try:
        node = parse_expression(source)
    except UnexpectedInput:
        ctx.report.error(ctx.file, pos, "E104", f"'{{{source}}}' in this text is not an expression",
                         hint="write a name such as {customer.name}, or {{ for a literal brace")
        return ir.Const(type=ANY, value=None)
    _shift(node, pos)
    value = check(ctx, node, scope)
    if value.type.partition(":")[0] in ("record", "object", "list"):
        ctx.report.error(ctx.file, pos, "E411", f"'{{{source}}}' is {describe(value.type)}, which cannot be spoken",
                         hint=f"speak one of its fields, e.g. {{{source}.name}}")
    return value


def _shift(node, pos: ast.Pos) -> None:
    """Positions inside a placeholder are relative to it; report them at the text itself."""
    import dataclasses

    if isinstance(node, ast.Node):
        node.pos = pos
        for f in dataclasses.fields(node):
            value = getattr(node, f.name)
            for child in value if isinstance(value, list) else [value]:
                _shift(child, pos)
