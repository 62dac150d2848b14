"""Canonical text for a syntax tree: what `flowdesk fmt` writes.

One layout for everything: imports first, a blank line between declarations, four spaces per
level, one item or statement per line, `{` at the end of the line that opens a body and `}` on
a line of its own (`{}` for an empty one).  Lists inside one item (`roles a, b`, `enum(...)`,
`case x, y`) stay on its line; an `http` request has its settings and its `else` on lines of
their own one level in.  Expressions get only the parentheses their tree needs.  A blank
line the author left between two statements or items is kept (one at most), so the sections of
a long flow stay apart.

Comments are printed where `dsl.comments` attached them: leading lines above a node, a trailing
comment after its last line, end comments before a closing brace or at the end of the file.
"""
from __future__ import annotations

import datetime
import re
from collections.abc import Iterator
from decimal import Decimal
from typing import Optional

from dsl import ast, literals
from dsl.diagnostics import Diagnostic
from dsl.literals import format_duration
from dsl.parser import parse

INDENT = "    "
# Characters kept as escapes inside quotes: lone surrogates cannot be written as UTF-8, and
# editors (and str.splitlines) break lines at the others although the parser does not.
_ESCAPED = re.compile("[\x85\u2028\u2029\ud800-\udfff]")

# What a printer returns: a generator handing on the printers of its parts (see `_run`), or
# None when it has written everything itself.
Printing = Optional[Iterator]


class Writer:
    """Output lines; the last one stays open so that ` -> label` or `} else {` can join it."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def line(self, depth: int, text: str) -> None:
        self.lines.append(INDENT * depth + text)

    def add(self, text: str) -> None:
        self.lines[-1] += text

    def blank(self) -> None:
        if self.lines and self.lines[-1]:
            self.lines.append("")

    def comments(self, depth: int, comments) -> None:
        for comment in comments:
            self.line(depth, comment.rstrip())

    def text(self) -> str:
        return "\n".join(self.lines) + "\n" if self.lines else ""


def format_source(text: str, path: str = "<input>") -> tuple[str | None, list[Diagnostic]]:
    """The canonical text of a file, or None and the syntax errors that stop it being read."""
    text = text.removeprefix("\ufeff")
    result = parse(text, path)
    if result.module is None:
        return None, result.diagnostics
    return format_module(result.module), []


def format_module(module: ast.Module) -> str:
    out = Writer()
    _run(_module(out, module))
    return out.text()


def _module(out: Writer, module: ast.Module) -> Printing:
    for item in module.imports:
        yield _entry(out, 0, item, lambda o, d, i: o.line(d, "import " + _quote(i.path)))
    for declaration in module.declarations:
        out.blank()
        yield _entry(out, 0, declaration, _declaration)
    if module.end_comments:
        out.blank()
        out.comments(0, module.end_comments)


def _run(task) -> None:
    """Runs a printer and the printers it hands on, depth first, with a stack of its own.

    Printers of nested things (bodies, blocks, statements) are generators that `yield` the
    printer of each part in turn; printers of single lines are plain functions that have
    written their line by the time their call is yielded (and yield None).  So the deepest
    nesting the parser accepts prints without exhausting Python's stack.
    """
    stack = [task]
    while stack:
        try:
            part = next(stack[-1])
        except StopIteration:
            stack.pop()
            continue
        if part is not None:
            stack.append(part)


# ------------------------------------------------------------------ layout

def _entry(out: Writer, depth: int, node: ast.Node, write) -> Printing:
    """A node on lines of its own, with its leading comments above and its trailing one after."""
    out.comments(depth, node.comments)
    yield write(out, depth, node)
    if node.trailing_comment:
        out.add("  " + node.trailing_comment.rstrip())


def _lines(out: Writer, depth: int, owner: ast.Node, nodes, write) -> Printing:
    """The entries of a body, then the comments written before its end."""
    previous = None
    for node in nodes:
        if previous is not None and _blank_between(previous, node):
            out.blank()
        yield _entry(out, depth, node, write)
        previous = node
    out.comments(depth, owner.end_comments)


def _blank_between(previous: ast.Node, node: ast.Node) -> bool:
    if previous.pos == ast.NOWHERE or node.pos == ast.NOWHERE:
        return False
    return node.pos.line - previous.pos.end_line - len(node.comments) > 1


def _braced(out: Writer, depth: int, owner: ast.Node, nodes, write) -> Printing:
    if not nodes and not owner.end_comments:
        out.add(" {}")
        return
    out.add(" {")
    yield _lines(out, depth + 1, owner, nodes, write)
    out.line(depth, "}")


def _optional_braced(out: Writer, depth: int, owner: ast.Node, nodes, write) -> Printing:
    """Workflow actions and SLA rules: no braces at all when there is nothing inside."""
    if nodes or owner.end_comments:
        yield _braced(out, depth, owner, nodes, write)


def _target(out: Writer, depth: int, target) -> Printing:
    if isinstance(target, ast.GotoTarget):
        out.add(f" -> {target.label}")
    else:
        yield _braced(out, depth, target, target.statements, _statement)


def _otherwise(out: Writer, depth: int, target) -> Printing:
    if target is not None:
        out.add(" else")
        yield _target(out, depth, target)


# ------------------------------------------------------------------ declarations

def _head(decl: ast.Decl, entity: str | None = None) -> str:
    text = f"{decl.keyword} {decl.name}"
    if entity is not None:
        text += f" for {entity}"
    return text + _optional_text(decl.title)


def _quote(value: str) -> str:
    return _ESCAPED.sub(lambda m: f"\\u{ord(m.group()):04x}", literals.quote(value))


def _optional_text(text: str | None) -> str:
    """A quoted text after a space, or nothing: titles, notes, labels, voicemail boxes."""
    return "" if text is None else " " + _quote(text)


def _declaration(out: Writer, depth: int, decl: ast.Decl) -> Printing:
    if isinstance(decl, ast.Evaluation):
        return _evaluation(out, depth, decl)
    items, write = _BODIES[type(decl)](decl)
    out.line(depth, _head(decl, getattr(decl, "entity", None)))
    return _braced(out, depth, decl, items, write)


def _one_line(text_of):
    """A printer for items that are one line of text."""
    return lambda out, depth, item: out.line(depth, text_of(item))


def _keyed(texts: dict):
    return _one_line(lambda item: texts[item.key](item))


def _names(names) -> str:
    return ", ".join(names)


_HOURS = {
    "timezone": lambda i: f"timezone {_quote(i.text)}",
    "weekly": lambda i: f"{_names(_days(d) for d in i.days)} {_ranges(i.ranges)}",
    "closed": lambda i: f"closed {_date_span(i)}{_optional_text(i.note)}",
    "open": lambda i: f"open {_date_span(i)} {_ranges(i.ranges)}{_optional_text(i.note)}",
    "holidays": lambda i: f"holidays {_quote(i.text)}",
}


def _days(days: ast.DayRange) -> str:
    return days.first if days.last is None else f"{days.first}-{days.last}"


def _ranges(ranges) -> str:
    return _names(f"{r.start}-{r.end}" for r in ranges)


def _date_span(item: ast.HoursItem) -> str:
    return _date(item.first) + ("" if item.last is None else ".." + _date(item.last))


_QUEUE = {
    "strategy": lambda i: f"strategy {i.value}",
    "skills": lambda i: "skills " + _names(s.skill if s.level is None else f"{s.skill} >= {s.level}" for s in i.value),
    "priority": lambda i: f"priority {i.value}",
    "music": lambda i: f"music {_quote(i.value)}",
    "announce": lambda i: f"announce {i.value} every {format_duration(i.value2)}",
    "max_wait": lambda i: f"max wait {format_duration(i.value)} then {_overflow(i.value2)}",
    "ring_timeout": lambda i: f"ring timeout {format_duration(i.value)}",
    "wrapup": lambda i: f"wrapup {format_duration(i.value)}",
    "service_level": lambda i: f"service level {_percent(i.value)} within {format_duration(i.value2)}",
}


def _overflow(overflow: ast.Overflow) -> str:
    if overflow.kind == "voicemail":
        return "voicemail" + _optional_text(overflow.target)
    if overflow.kind == "queue":
        return f"queue {overflow.target}"
    return overflow.kind


_AGENT = {
    "extension": lambda i: f"extension {_quote(i.value)}",
    "roles": lambda i: f"roles {_names(i.value)}",
    "skills": lambda i: "skills " + _names(f"{s.skill} {s.level}" for s in i.value),
    "queues": lambda i: f"queues {_names(i.value)}",
}


def _flow_item(out: Writer, depth: int, item) -> Printing:
    if isinstance(item, ast.FlowEntry):
        out.line(depth, f"entry number {expr(item.number)}")
    elif isinstance(item, ast.FlowVar):
        initial = "" if item.initial is None else f" = {expr(item.initial)}"
        out.line(depth, f"var {item.name}: {_type(item.type)}{initial}")
    else:
        yield _statement(out, depth, item)


_FIELD_OPTIONS = {
    "required": lambda o: "required",
    "unique": lambda o: "unique",
    "default": lambda o: f"default {expr(o.value)}",
    "max": lambda o: f"max {o.value}",
    "range": lambda o: f"range {_number(o.value)}..{_number(o.value2)}",
    "label": lambda o: f"label {_quote(o.value)}",
    "renamed": lambda o: f"renamed from {o.value}",
}


def _field(field: ast.FieldDecl) -> str:
    options = "".join(" " + _FIELD_OPTIONS[o.key](o) for o in field.options)
    return f"{field.name}: {_type(field.type)}{options}"


def _type(type_ref: ast.TypeRef) -> str:
    if type_ref.kind == "enum":
        return f"enum({_names(_enum_value(v) for v in type_ref.values)})"
    if type_ref.kind == "ref":
        return f"ref {type_ref.name}"
    if type_ref.kind == "list":
        return f"list of {type_ref.name}"
    return type_ref.name


def _enum_value(value: ast.EnumValue) -> str:
    return value.name + _optional_text(value.label)


def _section(out: Writer, depth: int, section: ast.FormSection) -> Printing:
    when = "" if section.when is None else f" when {expr(section.when)}"
    out.line(depth, f"section {_quote(section.title)}{when}")
    yield _braced(out, depth, section, section.fields, _one_line(_form_field))


def _form_field(field: ast.FormField) -> str:
    readonly = " readonly" if field.readonly else ""
    when = "" if field.when is None else f" when {expr(field.when)}"
    return field.name + readonly + when


_LIST = {
    "columns": lambda i: f"columns {_names(i.value)}",
    "filters": lambda i: f"filters {_names(i.value)}",
    "search": lambda i: f"search {_names(i.value)}",
    "sort": lambda i: f"sort {i.value} {i.value2 or 'asc'}",
}


def _workflow_item(out: Writer, depth: int, item: ast.WorkflowItem) -> Printing:
    if item.kind == "hours":
        out.line(depth, f"hours {item.name}")
    elif item.kind == "state":
        out.line(depth, " ".join(["state", item.name, *item.flags]) + _optional_text(item.title))
    elif item.kind == "transition":
        roles = f" by {_names(item.roles)}" if item.roles else ""
        guard = "" if item.guard is None else f" when {expr(item.guard)}"
        out.line(depth, f"transition {item.name}{_optional_text(item.title)}: {_names(item.sources)} -> {item.dest}"
                        f"{roles}{guard}")
        yield _optional_braced(out, depth, item, item.actions, _one_line(_workflow_action))
    else:
        out.line(depth, f"sla {item.name} {format_duration(item.duration_ms)} from {item.sources[0]} "
                        f"until {_names(item.flags)}")
        yield _optional_braced(out, depth, item, item.rules, _one_line(_sla_rule))


def _workflow_action(action: ast.WorkflowAction) -> str:
    if action.kind == "assign":
        return f"assign {expr(action.value)}"
    if action.kind == "notify":
        return f"notify {expr(action.value)}{_optional_text(action.value2)}"
    return f"set {action.value} = {expr(action.value2)}"


def _sla_rule(rule: ast.SlaRule) -> str:
    if rule.kind == "escalate":
        return f"at {_percent(rule.percent)} escalate {rule.who}"
    if rule.kind == "notify":
        return f"at {_percent(rule.percent)} notify {expr(rule.who)}"
    return f"remind {expr(rule.who)} every {format_duration(rule.every_ms)}"


def _permission(permission: ast.Permission) -> str:
    where = "" if permission.where is None else f" where {expr(permission.where)}"
    return f"{_names(permission.access)} {permission.entity}{where}"


def _evaluation(out: Writer, depth: int, decl: ast.Evaluation) -> Printing:
    out.line(depth, _head(decl) + " {")
    if decl.call_types:
        # The `call types` line keeps its comments on its first value, where `dsl.comments` put them.
        yield _entry(out, depth + 1, decl.call_types[0],
                     lambda o, d, _: o.line(d, "call types " + _names(_enum_value(v) for v in decl.call_types)))
    yield _lines(out, depth + 1, decl, decl.parts, _eval_part)
    out.line(depth, "}")


def _eval_part(out: Writer, depth: int, part: ast.EvalPart) -> Printing:
    not_for = f" not for {_names(part.not_for)}" if part.not_for else ""
    out.line(depth, f"part {part.name}{_optional_text(part.title)}{not_for}")
    yield _braced(out, depth, part, part.items, _one_line(lambda i: f"item {i.name}{_optional_text(i.title)} {i.points}"))


_BODIES = {
    ast.Hours: lambda d: (d.items, _one_line(lambda i: _HOURS[i.kind](i))),
    ast.Queue: lambda d: (d.items, _keyed(_QUEUE)),
    ast.Agent: lambda d: (d.items, _keyed(_AGENT)),
    ast.Flow: lambda d: ([*d.entries, *d.variables, *d.body], _flow_item),
    ast.Entity: lambda d: (d.fields, _one_line(_field)),
    ast.Form: lambda d: (d.sections, _section),
    ast.ListView: lambda d: (d.items, _keyed(_LIST)),
    ast.Workflow: lambda d: (d.items, _workflow_item),
    ast.Role: lambda d: (d.permissions, _one_line(_permission)),
}


# ------------------------------------------------------------------ statements

def _statement(out: Writer, depth: int, stmt: ast.Stmt) -> Printing:
    out.line(depth, f"{stmt.label}: " if stmt.label else "")
    return _STATEMENTS[type(stmt)](out, depth, stmt)


def _words(text_of):
    """A printer for statements that are one line."""
    return lambda out, depth, stmt: out.add(text_of(stmt))


_SETTINGS = {
    "prompt": lambda s: f"prompt {_quote(s.value)}",
    "timeout": lambda s: f"timeout {format_duration(s.value)}",
    "retries": lambda s: f"retries {s.value}",
    "length": lambda s: f"length {s.value}" + ("" if s.value2 is None else f"..{s.value2}"),
    "terminator": lambda s: f"terminator {_quote(s.value)}",
    "valid": lambda s: f"valid when {expr(s.value)}",
    "header": lambda s: f"header {_quote(s.value)} = {expr(s.value2)}",
    "body": lambda s: f"body {expr(s.value)}",
}

DTMF_KEYS = set("0123456789*")


def _menu_item(out: Writer, depth: int, item) -> Printing:
    if isinstance(item, ast.MenuOption):
        key = item.key if item.key in DTMF_KEYS else _quote(item.key)
        out.line(depth, key + _optional_text(item.title))
        return _target(out, depth, item.target)
    if isinstance(item, ast.EventHandler):
        out.line(depth, f"on {item.event}")
        return _target(out, depth, item.target)
    out.line(depth, _SETTINGS[item.key](item))
    return None


def _menu(out: Writer, depth: int, stmt: ast.Menu) -> Printing:
    out.add("menu")
    return _braced(out, depth, stmt, stmt.items, _menu_item)


def _collect(out: Writer, depth: int, stmt: ast.Collect) -> Printing:
    out.add(f"collect {stmt.var}: {stmt.type}")
    return _braced(out, depth, stmt, stmt.items, _menu_item)


def _if(out: Writer, depth: int, stmt: ast.If) -> Printing:
    for i, branch in enumerate(stmt.branches):
        out.add(("if " if i == 0 else " elif ") + expr(branch.condition))
        yield _target(out, depth, branch.target)
    yield _otherwise(out, depth, stmt.otherwise)


def _switch(out: Writer, depth: int, stmt: ast.Switch) -> Printing:
    out.add(f"switch {expr(stmt.subject)}")
    items = [*stmt.cases] + ([stmt.otherwise] if stmt.otherwise is not None else [])
    return _braced(out, depth, stmt, items, _case)


def _case(out: Writer, depth: int, item) -> Printing:
    if isinstance(item, ast.Case):
        out.line(depth, "case " + _names(expr(v) for v in item.values))
    else:
        out.line(depth, "else")
    return _target(out, depth, item.target if isinstance(item, ast.Case) else item)


def _lookup(out: Writer, depth: int, stmt: ast.Lookup) -> Printing:
    out.add(f"lookup {stmt.var} = {stmt.entity} where {expr(stmt.where)}")
    return _otherwise(out, depth, stmt.otherwise)


_field_assign = _one_line(lambda f: f"{f.name} = {expr(f.value)}")


def _create(out: Writer, depth: int, stmt: ast.Create) -> Printing:
    out.add("create " + ("" if stmt.var is None else f"{stmt.var} = ") + stmt.entity)
    return _braced(out, depth, stmt, stmt.fields, _field_assign)


def _update(out: Writer, depth: int, stmt: ast.Update) -> Printing:
    out.add(f"update {stmt.target.dotted}")
    return _braced(out, depth, stmt, stmt.fields, _field_assign)


def _http(out: Writer, depth: int, stmt: ast.Http) -> Printing:
    """Settings and the `else` go on lines of their own below the request, one level in."""
    out.add(f"http {stmt.var} = {stmt.method} {expr(stmt.url)}")
    return _lines(out, depth + 1, stmt, [*stmt.items, stmt.otherwise], _http_item)


def _http_item(out: Writer, depth: int, item) -> Printing:
    if not isinstance(item, ast.Setting):
        out.line(depth, "else")
        return _target(out, depth, item)
    if item.key == "returns":
        out.line(depth, "returns")
        return _braced(out, depth, item, item.value, _one_line(lambda f: f"{f.name}: {_type(f.type)}"))
    out.line(depth, _SETTINGS[item.key](item))
    return None


def _enqueue(stmt: ast.Enqueue) -> str:
    text = f"enqueue {stmt.queue}"
    if stmt.priority is not None:
        text += f" priority {stmt.priority}"
    if stmt.prefer is not None:
        text += f" prefer {expr(stmt.prefer)} for {format_duration(stmt.prefer_for_ms or 0)}"
    return text


def _transfer_agent(out: Writer, depth: int, stmt: ast.TransferAgent) -> Printing:
    timeout = "" if stmt.timeout_ms is None else f" timeout {format_duration(stmt.timeout_ms)}"
    out.add(f"transfer agent {expr(stmt.agent)}{timeout}")
    return _otherwise(out, depth, stmt.otherwise)


_STATEMENTS = {
    ast.Answer: _words(lambda s: "answer"),
    ast.Say: _words(lambda s: f"say {_quote(s.text)}"),
    ast.Play: _words(lambda s: f"play {_quote(s.sound)}"),
    ast.Menu: _menu,
    ast.Collect: _collect,
    ast.Set: _words(lambda s: f"set {s.target.dotted} = {expr(s.value)}"),
    ast.If: _if,
    ast.Switch: _switch,
    ast.Lookup: _lookup,
    ast.Create: _create,
    ast.Update: _update,
    ast.Http: _http,
    ast.Enqueue: _words(_enqueue),
    ast.TransferNumber: _words(lambda s: f"transfer number {expr(s.number)}"),
    ast.TransferAgent: _transfer_agent,
    ast.Voicemail: _words(lambda s: f"voicemail {_quote(s.box)}" + (" callback" if s.callback else "")),
    ast.Record: _words(lambda s: "record"),
    ast.Survey: _words(lambda s: f"survey {s.flow}"),
    ast.Goto: _words(lambda s: f"goto {s.target_label}"),
    ast.Subflow: _words(lambda s: f"subflow {s.flow}"),
    ast.Return: _words(lambda s: "return"),
    ast.Repeat: _words(lambda s: "repeat"),
    ast.Hangup: _words(lambda s: "hangup"),
}


# ------------------------------------------------------------------ expressions

# Binding strength, loosest first; an operand printed where a stronger one is needed gets parentheses.
OR, AND, NOT, COMPARE, SUM, PRODUCT, ATOM = range(1, 8)
_BINARY = {"or": OR, "and": AND, "+": SUM, "-": SUM, "*": PRODUCT, "/": PRODUCT}


def _strength(e: ast.Expr) -> int:
    if isinstance(e, ast.Binary):
        return _BINARY.get(e.op, COMPARE)
    if isinstance(e, ast.Not):
        return NOT
    if isinstance(e, ast.In):
        return COMPARE
    return ATOM


def expr(e: ast.Expr, needed: int = OR) -> str:
    """The text of an expression with the fewest parentheses that give back the same tree.

    Walks the tree with a stack of its own (like the parser's tree builder), so long chains
    such as `a or b or c ...` print however deep their tree is.
    """
    texts: list[str] = []
    stack = [(e, False)]
    while stack:
        node, ready = stack.pop()
        operands = _operands(node)
        if not ready:
            stack.append((node, True))
            stack.extend((operand, False) for operand, _ in reversed(operands))
            continue
        parts = texts[len(texts) - len(operands):]
        del texts[len(texts) - len(operands):]
        parts = [_parenthesized(text, operand, strength) for text, (operand, strength) in zip(parts, operands)]
        texts.append(_render(node, parts))
    return _parenthesized(texts[0], e, needed)


def _operands(e: ast.Expr) -> list[tuple[ast.Expr, int]]:
    """Each operand with the binding strength its place needs (operators associate to the left)."""
    if isinstance(e, ast.Binary):
        strength = _strength(e)
        if strength == COMPARE:
            return [(e.left, SUM), (e.right, SUM)]
        return [(e.left, strength), (e.right, strength + 1)]
    if isinstance(e, ast.Not):
        return [(e.operand, NOT)]
    if isinstance(e, ast.In):
        return [(e.subject, SUM)] + [(option, OR) for option in e.options]
    if isinstance(e, ast.Call):
        return [(arg, OR) for arg in e.args]
    return []


def _parenthesized(text: str, e: ast.Expr, needed: int) -> str:
    return f"({text})" if _strength(e) < needed else text


def _render(e: ast.Expr, parts: list[str]) -> str:
    if isinstance(e, ast.Binary):
        return f"{parts[0]} {e.op} {parts[1]}"
    if isinstance(e, ast.Not):
        return f"not {parts[0]}"
    if isinstance(e, ast.In):
        return f"{parts[0]} {'not in' if e.negated else 'in'} [{_names(parts[1:])}]"
    if isinstance(e, ast.Call):
        return f"{e.name}({_names(parts)})"
    if isinstance(e, ast.Ref):
        return e.dotted
    return _literal(e)


def _literal(e: ast.Literal) -> str:
    if e.kind == "text":
        return _quote(e.value)
    if e.kind == "number":
        return _number(e.value)
    if e.kind == "duration":
        return format_duration(e.value)
    if e.kind == "date":
        return _date(e.value)
    if e.kind == "bool":
        return "true" if e.value else "false"
    return "none"


def _number(value) -> str:
    # `format(..., "f")` never falls back to exponent notation, which the grammar has no spelling for.
    return format(value, "f") if isinstance(value, Decimal) else str(value)


def _percent(value) -> str:
    return _number(value) + "%"


def _date(value) -> str:
    # A date that does not exist (2026-02-30) is kept as the text written, for the compiler to report.
    return value.isoformat() if isinstance(value, datetime.date) else str(value)
