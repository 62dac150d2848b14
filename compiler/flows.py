"""Stage 4a: a flow's statements become a flat state machine (`ir.Flow`).

Statements run top to bottom; a branch's block continues after the statement that owns it.
Lowering gives every statement a step id (its label, or `kind@n`), links each step to the one
that comes next, and type-checks what the step uses.  A statement that would let the call run
off the end of the flow is reported here; graph-wide checks (unreachable steps, loops that never
wait for the caller) run afterwards on the result, in `compiler.flow_checks`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

from compiler import ir
from compiler.expressions import ANY, Context, Scope, check, check_as, check_condition, check_text
from compiler.symbols import SymbolTable, resolve
from compiler.types import describe
from dsl import ast
from dsl.diagnostics import did_you_mean

BUILTINS = {"caller": "phone", "dialed": "phone", "now": "datetime", "call": "object:call"}
CALL_FIELDS = {"id": "text"}
DIGIT_TYPES = {"digits": "text", "phone": "phone", "card": "text", "id_card": "text", "amount": "money", "date": "date",
               "number": "number"}
DEFAULT_MENU_TIMEOUT_MS = 5_000
DEFAULT_RETRIES = 2
DEFAULT_HTTP_TIMEOUT_MS = 5_000
DEFAULT_TRANSFER_TIMEOUT_MS = 20_000


@dataclass
class LoweredFlow:
    flow: ir.Flow
    positions: dict[str, ast.Pos]  # step id -> where it was written
    file: str


@dataclass
class _State:
    ctx: Context
    table: SymbolTable
    decl: ast.Flow
    scope: Scope
    steps: list = field(default_factory=list)
    positions: dict[str, ast.Pos] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)   # label -> step id (after goto aliasing)
    aliases: dict[str, str] = field(default_factory=dict)  # goto step id -> its target label
    counter: int = 0
    set_at: dict[str, list[str]] = field(default_factory=dict)
    stmt_ids: dict[int, str] = field(default_factory=dict)

    @property
    def report(self):
        return self.ctx.report

    @property
    def file(self):
        return self.ctx.file


def lower_flow(ctx: Context, table: SymbolTable, decl: ast.Flow) -> LoweredFlow:
    ctx.types.objects["call"] = CALL_FIELDS
    st = _State(ctx=ctx, table=table, decl=decl, scope=Scope(variables=dict(BUILTINS)))
    variables: dict[str, ir.Variable] = {}
    for var in decl.variables:
        t = _declared_type(st, var.type, f"{decl.name}.{var.name}")
        initial = check_as(ctx, var.initial, st.scope, t, f"variable '{var.name}'") if var.initial else None
        if var.name in st.scope.variables:
            st.report.error(st.file, var.pos, "E208", f"variable '{var.name}' is declared twice")
        st.scope.variables[var.name] = t
        variables[var.name] = ir.Variable(type=t, initial=initial)
    _assign_ids(st, decl.body)
    if not decl.body:
        st.report.error(st.file, decl.pos, "E301", f"flow '{decl.name}' has no steps",
                        hint="a flow needs at least one step, e.g. `hangup`")
        start = _synthetic(st, "empty", ir.HangupStep, decl.pos)
    else:
        _lower_block(st, decl.body, None, menu=None)
        start = _resolve_alias(st, st.stmt_ids[id(decl.body[0])])
    steps = [_relink(st, step) for step in st.steps]
    step_order = _step_order(steps)
    for name, t in st.scope.variables.items():
        if name in BUILTINS:
            continue
        v = variables.setdefault(name, ir.Variable(type=t))
        v.set_at = sorted(set(st.set_at.get(name, [])), key=step_order)
    entries = []
    for entry in decl.entries:
        number = check(ctx, entry.number, st.scope)
        if isinstance(number, ir.Const) and number.type in ("text", "number", "phone"):
            entries.append(str(number.value))
        elif number.type != ANY:
            st.report.error(st.file, entry.pos, "E409", "an entry number must be a fixed number, e.g. env.HOTLINE or \"10086\"")
    flow = ir.Flow(name=decl.name, title=decl.title, entries=entries, start=start,
                   variables=dict(sorted(variables.items())), steps=steps)
    return LoweredFlow(flow=flow, positions=st.positions, file=st.file)


def _step_order(steps):
    order = {s.id: i for i, s in enumerate(steps)}
    return lambda step_id: order.get(step_id, len(order))


# ------------------------------------------------------------------ ids and labels

def _assign_ids(st: _State, statements: list[ast.Stmt]) -> None:
    """Give every statement (nested ones too) its id before lowering, so jumps can point forward."""
    for stmt in statements:
        if stmt.label:
            if stmt.label in st.labels:
                st.report.error(st.file, stmt.pos, "E204", f"label '{stmt.label}' is used twice in flow '{st.decl.name}'",
                                hint="give each step its own label")
            else:
                st.labels[stmt.label] = stmt.label
            step_id = stmt.label
        else:
            st.counter += 1
            step_id = f"{stmt.kind}@{st.counter}"
        st.stmt_ids[id(stmt)] = step_id
        for block in _blocks_of(stmt):
            _assign_ids(st, block.statements)


def _blocks_of(stmt: ast.Stmt):
    targets = []
    if isinstance(stmt, ast.Menu):
        targets = [i.target for i in stmt.items if isinstance(i, (ast.MenuOption, ast.EventHandler))]
    elif isinstance(stmt, ast.Collect):
        targets = [i.target for i in stmt.items if isinstance(i, ast.EventHandler)]
    elif isinstance(stmt, ast.If):
        targets = [b.target for b in stmt.branches] + [stmt.otherwise]
    elif isinstance(stmt, ast.Switch):
        targets = [c.target for c in stmt.cases] + [stmt.otherwise]
    elif isinstance(stmt, (ast.Lookup, ast.Http, ast.TransferAgent)):
        targets = [stmt.otherwise]
    return [t for t in targets if isinstance(t, ast.Block)]


def _resolve_alias(st: _State, step_id: str | None) -> str | None:
    seen = set()
    while step_id in st.aliases and step_id not in seen:
        seen.add(step_id)
        step_id = st.aliases[step_id]
    return step_id


# The fields of a step that name the step to go to next.
LINK_FIELDS = ("next", "on_timeout", "on_invalid", "on_failure", "not_found", "on_error", "on_no_answer")


@lru_cache(maxsize=None)
def link_fields(step_type: type) -> tuple[str, ...]:
    """The link fields a kind of step has (in the order of LINK_FIELDS)."""
    return tuple(name for name in LINK_FIELDS if name in step_type.model_fields)


def _relink(st: _State, step):
    """Replace references to `goto` statements by the steps they jump to."""
    updates = {}
    for name in link_fields(type(step)):
        target = getattr(step, name)
        if target in st.aliases:
            updates[name] = _resolve_alias(st, target)
    if isinstance(step, ir.MenuStep):
        _relink_each(st, step.options, "options", updates)
    elif isinstance(step, ir.BranchStep):
        _relink_each(st, step.conditions, "conditions", updates)
    elif isinstance(step, ir.SwitchStep):
        _relink_each(st, step.cases, "cases", updates)
    return step.model_copy(update=updates) if updates else step


def _relink_each(st: _State, branches: list, field: str, updates: dict) -> None:
    """Branches (menu options, conditions, cases) whose `goto` names a `goto` statement."""
    if any(b.goto in st.aliases for b in branches):
        updates[field] = [b.model_copy(update={"goto": _resolve_alias(st, b.goto)}) if b.goto in st.aliases else b
                          for b in branches]


def _synthetic(st: _State, suffix: str, cls, pos: ast.Pos, **fields) -> str:
    st.counter += 1
    step_id = f"{suffix}@{st.counter}"
    st.steps.append(cls(id=step_id, **fields))
    st.positions[step_id] = pos
    return step_id


# ------------------------------------------------------------------ blocks and targets

def _lower_block(st: _State, statements: list[ast.Stmt], cont: str | None, menu: str | None) -> str | None:
    """Lower a list of statements whose end continues at `cont`; returns the id of the first."""
    for i, stmt in enumerate(statements):
        following = st.stmt_ids[id(statements[i + 1])] if i + 1 < len(statements) else cont
        _lower_statement(st, stmt, following, menu)
    return st.stmt_ids[id(statements[0])] if statements else cont


def _target(st: _State, target: ast.Target | None, cont: str | None, menu: str | None) -> str | None:
    if target is None:
        return None
    if isinstance(target, ast.GotoTarget):
        return _label(st, target.label, target.pos)
    if not target.statements:
        return cont
    return _lower_block(st, target.statements, cont, menu)


def _label(st: _State, label: str, pos: ast.Pos) -> str:
    if label not in st.labels:
        st.report.error(st.file, pos, "E205", f"unknown step '{label}' in flow '{st.decl.name}'",
                        hint=did_you_mean(label, st.labels) or "label a step with `name:` before it to jump to it")
    return label


def _ends_here(st: _State, stmt: ast.Stmt, following: str | None) -> str | None:
    """`following`, or a report that the call would run off the end of the flow here."""
    if following is None:
        st.report.error(st.file, stmt.pos, "E301", f"the call runs off the end of flow '{st.decl.name}' after this step",
                        hint="end the path with hangup, enqueue, transfer, voicemail, goto"
                             + (" or return" if not st.decl.entries else ""))
    return following


# ------------------------------------------------------------------ statements

def _lower_statement(st: _State, stmt: ast.Stmt, following: str | None, menu: str | None) -> None:
    step_id = st.stmt_ids[id(stmt)]
    st.positions[step_id] = stmt.pos
    handler = _HANDLERS[type(stmt)]
    step = handler(st, stmt, step_id, following, menu)
    if step is not None:
        st.steps.append(step)


def _answer(st, stmt, sid, following, menu):
    return ir.AnswerStep(id=sid, next=_ends_here(st, stmt, following))


def _say(st, stmt, sid, following, menu):
    return ir.SayStep(id=sid, text=check_text(st.ctx, stmt.text, stmt.pos, st.scope), next=_ends_here(st, stmt, following))


def _play(st, stmt, sid, following, menu):
    return ir.PlayStep(id=sid, sound=stmt.sound, next=_ends_here(st, stmt, following))


def _settings(st: _State, items, allowed: set[str]) -> dict[str, ast.Setting]:
    found: dict[str, ast.Setting] = {}
    for item in items:
        if not isinstance(item, ast.Setting):
            continue
        if item.key in found:
            st.report.error(st.file, item.pos, "E207", f"'{item.key}' is given twice", hint="keep one of them")
        found[item.key] = item
    return found


def _handlers(st: _State, items, cont, menu_id) -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for item in items:
        if isinstance(item, ast.EventHandler):
            if item.event in found:
                st.report.error(st.file, item.pos, "E207", f"'on {item.event}' is given twice", hint="keep one of them")
                continue
            found[item.event] = _target(st, item.target, cont, menu_id)
    return found


def _menu(st, stmt, sid, following, menu):
    settings = _settings(st, stmt.items, {"prompt", "timeout", "retries"})
    prompt = check_text(st.ctx, settings["prompt"].value, settings["prompt"].pos, st.scope) if "prompt" in settings else []
    if "prompt" not in settings:
        st.report.error(st.file, stmt.pos, "E306", "a menu needs a prompt", hint='add `prompt "..."` inside the menu')
    options, keys = [], {}
    for item in stmt.items:
        if not isinstance(item, ast.MenuOption):
            continue
        if len(item.key) != 1 or item.key not in "0123456789*#":
            st.report.error(st.file, item.pos, "E206", f"'{item.key}' is not a phone key", hint="use 0-9, * or \"#\"")
        elif item.key in keys:
            st.report.error(st.file, item.pos, "E206", f"key {item.key} is used twice in this menu",
                            hint=f"the first use is on line {keys[item.key].line}")
            continue
        keys[item.key] = item.pos
        target = _target(st, item.target, following, sid)
        options.append(ir.MenuOption(key=item.key, title=item.title, goto=target or sid))
    if not options:
        st.report.error(st.file, stmt.pos, "E306", "a menu needs at least one key option", hint='e.g. `1 "查询" -> billing`')
    handlers = _handlers(st, stmt.items, following, sid)
    on_failure = handlers.get("failure")
    if "failure" not in handlers:
        if "timeout" not in handlers:
            st.report.warning(st.file, stmt.pos, "W304", "this menu does not say what happens when the caller presses nothing",
                              hint="add `on timeout {...}` or `on failure -> ...`; now the call is hung up after the last try")
        if "invalid" not in handlers:
            st.report.warning(st.file, stmt.pos, "W305", "this menu does not say what happens on a wrong key",
                              hint="add `on invalid {...}` or `on failure -> ...`; now the call is hung up after the last try")
    if on_failure is None:
        on_failure = _synthetic(st, "menu_failed", ir.HangupStep, stmt.pos)
    return ir.MenuStep(id=sid, prompt=prompt, timeout_ms=_timeout(st, settings, DEFAULT_MENU_TIMEOUT_MS),
                       retries=_retries(st, settings), options=options, on_timeout=handlers.get("timeout"),
                       on_invalid=handlers.get("invalid"), on_failure=on_failure)


def _timeout(st: _State, settings, default: int) -> int:
    if "timeout" not in settings:
        return default
    value = settings["timeout"].value
    if value <= 0:
        st.report.error(st.file, settings["timeout"].pos, "E308", "a timeout must be longer than 0s")
    return value


def _retries(st: _State, settings) -> int:
    if "retries" not in settings:
        return DEFAULT_RETRIES
    value = settings["retries"].value
    if value > 9:
        st.report.warning(st.file, settings["retries"].pos, "W308", f"{value} retries keeps a caller in the menu for a long time",
                          hint="2 or 3 retries is usual")
    return value


def _collect(st, stmt, sid, following, menu):
    settings = _settings(st, stmt.items, set())
    if stmt.type not in DIGIT_TYPES:
        st.report.error(st.file, ast.where(stmt.ref_pos, stmt.pos), "E409", f"unknown digit type '{stmt.type}'",
                        hint=did_you_mean(stmt.type, DIGIT_TYPES) or f"the types are: {', '.join(DIGIT_TYPES)}")
    value_type = DIGIT_TYPES.get(stmt.type, ANY)
    _declare(st, stmt.var, value_type, sid, stmt.pos)
    prompt = check_text(st.ctx, settings["prompt"].value, settings["prompt"].pos, st.scope) if "prompt" in settings else []
    if "prompt" not in settings:
        st.report.error(st.file, stmt.pos, "E306", "collect needs a prompt", hint='add `prompt "..."`')
    low, high = _length(st, stmt, settings)
    valid = check_condition(st.ctx, settings["valid"].value, st.scope) if "valid" in settings else None
    terminator = settings["terminator"].value if "terminator" in settings else "#"
    if len(terminator) != 1 or terminator not in "0123456789*#":
        st.report.error(st.file, settings["terminator"].pos, "E206", f"'{terminator}' is not a phone key")
    handlers = _handlers(st, stmt.items, following, sid)
    on_failure = handlers.get("failure") or _synthetic(st, "collect_failed", ir.HangupStep, stmt.pos)
    return ir.CollectStep(id=sid, var=stmt.var, digit_type=stmt.type, prompt=prompt, min_length=low, max_length=high,
                          terminator=terminator, timeout_ms=_timeout(st, settings, DEFAULT_MENU_TIMEOUT_MS * 2),
                          retries=_retries(st, settings), valid=valid, on_timeout=handlers.get("timeout"),
                          on_invalid=handlers.get("invalid"), on_failure=on_failure,
                          next=_ends_here(st, stmt, following))


_DEFAULT_LENGTHS = {"phone": (7, 12), "card": (12, 19), "id_card": (18, 18), "date": (8, 8), "amount": (1, 10), "digits": (1, 20), "number": (1, 10)}


def _length(st: _State, stmt: ast.Collect, settings) -> tuple[int, int]:
    if "length" not in settings:
        return _DEFAULT_LENGTHS.get(stmt.type, (1, 20))
    item = settings["length"]
    low = item.value
    high = item.value2 if item.value2 is not None else low
    if low < 1 or high < low or high > 64:
        st.report.error(st.file, item.pos, "E308", f"length {low}..{high} is not a valid range of digits",
                        hint="the smallest comes first, both between 1 and 64")
    return low, max(low, high)


def _declare(st: _State, name: str, t: str, sid: str, pos: ast.Pos) -> None:
    if name in BUILTINS:
        st.report.error(st.file, pos, "E208", f"'{name}' is a built-in value and cannot be changed", hint="use another name")
        return
    known = st.scope.variables.get(name)
    if known is not None and known != t and ANY not in (known, t):
        from compiler.types import assignable

        if not assignable(t, known):
            st.report.error(st.file, pos, "E403", f"'{name}' holds {describe(known)}; it cannot also hold {describe(t)}",
                            hint="use another variable name")
            return
    if known is None:
        st.scope.variables[name] = t
    st.set_at.setdefault(name, []).append(sid)


def _set(st, stmt, sid, following, menu):
    if len(stmt.target.parts) != 1:
        st.report.error(st.file, stmt.target.pos, "E407", "only a variable can be set; to change a record's field use `update`",
                        hint=f"update {stmt.target.parts[0]} {{ {'.'.join(stmt.target.parts[1:])} = ... }}")
    name = stmt.target.parts[0]
    known = st.scope.variables.get(name) if len(stmt.target.parts) == 1 else None
    value = check_as(st.ctx, stmt.value, st.scope, known, f"'{name}'") if known else check(st.ctx, stmt.value, st.scope)
    _declare(st, name, known or value.type, sid, stmt.pos)
    return ir.SetStep(id=sid, path=[name], value=value, next=_ends_here(st, stmt, following))


def _if(st, stmt, sid, following, menu):
    conditions = [ir.Condition(when=check_condition(st.ctx, b.condition, st.scope),
                               goto=_target(st, b.target, following, menu) or sid) for b in stmt.branches]
    otherwise = _target(st, stmt.otherwise, following, menu) if stmt.otherwise is not None else following
    if otherwise is None:
        _ends_here(st, stmt, None)
    return ir.BranchStep(id=sid, conditions=conditions, next=otherwise)


def _switch(st, stmt, sid, following, menu):
    subject = check(st.ctx, stmt.subject, st.scope)
    cases, seen = [], set()
    for case in stmt.cases:
        values = [check(st.ctx, v, st.scope, expected=subject.type) for v in case.values]
        for node, v in zip(case.values, values):
            if isinstance(v, ir.Const) and v.value in seen:
                st.report.error(st.file, node.pos, "E206", f"case {v.value} is given twice in this switch")
            elif isinstance(v, ir.Const):
                seen.add(v.value)
            from compiler.types import comparable
            if ANY not in (v.type, subject.type) and not comparable(v.type, subject.type):
                st.report.error(st.file, node.pos, "E402", f"cannot compare {describe(subject.type)} with {describe(v.type)}")
        cases.append(ir.SwitchCase(values=values, goto=_target(st, case.target, following, menu) or sid))
    otherwise = _target(st, stmt.otherwise, following, menu) if stmt.otherwise is not None else following
    if otherwise is None:
        _ends_here(st, stmt, None)
    return ir.SwitchStep(id=sid, subject=subject, cases=cases, next=otherwise)


def _entity(st: _State, name: str, pos: ast.Pos) -> str | None:
    symbol = resolve(st.table, st.report, "entity", name, st.file, pos)
    return symbol.name if symbol else None


def _lookup(st, stmt, sid, following, menu):
    entity = _entity(st, stmt.entity, ast.where(stmt.ref_pos, stmt.pos))
    scope = Scope(variables=st.scope.variables, record=entity, lenient=entity is None)
    where = check_condition(st.ctx, stmt.where, scope)
    _declare(st, stmt.var, f"record:{entity}" if entity else ANY, sid, stmt.pos)
    not_found = _target(st, stmt.otherwise, following, menu) if stmt.otherwise is not None else following
    return ir.LookupStep(id=sid, var=stmt.var, entity=entity or stmt.entity, where=where,
                         not_found=not_found or sid, next=_ends_here(st, stmt, following))


def _field_values(st: _State, entity: str | None, fields: list[ast.FieldAssign], creating: bool, pos) -> dict:
    record = st.ctx.types.records.get(entity, {}) if entity else {}
    values = {}
    for f in fields:
        if f.name in values:
            st.report.error(st.file, f.pos, "E207", f"field '{f.name}' is given twice")
            continue
        if entity and f.name not in record:
            st.report.error(st.file, f.pos, "E210", f"{entity} has no field '{f.name}'",
                            hint=did_you_mean(f.name, record) or f"its fields are: {', '.join(sorted(record))}")
            values[f.name] = check(st.ctx, f.value, st.scope)
            continue
        values[f.name] = check_as(st.ctx, f.value, st.scope, record.get(f.name, ANY), f"field '{f.name}'")
    if creating and entity:
        for name in st.ctx.types.required.get(entity, []):
            if name not in values:
                st.report.error(st.file, pos, "E212", f"creating a {entity} needs field '{name}' (it is required and has no default)",
                                hint=f"add `{name} = ...`")
    return dict(sorted(values.items()))


def _create(st, stmt, sid, following, menu):
    entity = _entity(st, stmt.entity, ast.where(stmt.ref_pos, stmt.pos))
    fields = _field_values(st, entity, stmt.fields, True, stmt.pos)
    if stmt.var:
        _declare(st, stmt.var, f"record:{entity}" if entity else ANY, sid, stmt.pos)
    return ir.CreateStep(id=sid, var=stmt.var, entity=entity or stmt.entity, fields=fields,
                         next=_ends_here(st, stmt, following))


def _update(st, stmt, sid, following, menu):
    target = check(st.ctx, stmt.target, st.scope)
    entity = None
    if target.type.startswith("record:"):
        entity = target.type.partition(":")[2]
    elif target.type != ANY:
        st.report.error(st.file, stmt.target.pos, "E407", f"update needs a record, but '{stmt.target.dotted}' is {describe(target.type)}",
                        hint="look the record up first with `lookup`, or create it with `create`")
    if len(stmt.target.parts) != 1:
        st.report.error(st.file, stmt.target.pos, "E407", "update a record held in a variable, e.g. `update customer { ... }`")
    fields = _field_values(st, entity, stmt.fields, False, stmt.pos)
    return ir.UpdateStep(id=sid, var=stmt.target.parts[0], entity=entity or "", fields=fields,
                         next=_ends_here(st, stmt, following))


def _http(st, stmt, sid, following, menu):
    settings = _settings(st, stmt.items, set())
    url = check_as(st.ctx, stmt.url, st.scope, "text", "the address")
    headers = []
    for item in stmt.items:
        if isinstance(item, ast.Setting) and item.key == "header":
            headers.append(ir.HttpHeader(name=item.value, value=check_as(st.ctx, item.value2, st.scope, "text", f"header {item.value}")))
    body = check(st.ctx, settings["body"].value, st.scope) if "body" in settings else None
    returns: dict[str, str] = {}
    if "returns" in settings:
        for f in settings["returns"].value:
            if f.name in returns:
                st.report.error(st.file, f.pos, "E207", f"field '{f.name}' is given twice")
            returns[f.name] = _declared_type(st, f.type, f"{st.decl.name}.{stmt.var}.{f.name}")
    owner = f"{st.decl.name}.{stmt.var}"
    st.ctx.types.objects[owner] = returns
    _declare(st, stmt.var, f"object:{owner}", sid, stmt.pos)
    on_error = _target(st, stmt.otherwise, following, menu)
    return ir.HttpStep(id=sid, var=stmt.var, method=stmt.method, url=url,
                       timeout_ms=_timeout(st, settings, DEFAULT_HTTP_TIMEOUT_MS), headers=headers, body=body,
                       returns=returns, on_error=on_error or sid, next=_ends_here(st, stmt, following))


def _enqueue(st, stmt, sid, following, menu):
    symbol = resolve(st.table, st.report, "queue", stmt.queue, st.file, ast.where(stmt.ref_pos, stmt.pos))
    prefer = None
    if stmt.prefer is not None:
        prefer = check_as(st.ctx, stmt.prefer, st.scope, "agent", "prefer")
        _agent_name(st, stmt.prefer, prefer)
    priority = stmt.priority
    if priority is None:
        priority = next((i.value for i in symbol.decl.items if i.key == "priority"), 0) if symbol else 0
    return ir.EnqueueStep(id=sid, queue=stmt.queue, priority=priority, prefer=prefer,
                          prefer_for_ms=stmt.prefer_for_ms or 0)


def _transfer_number(st, stmt, sid, following, menu):
    return ir.TransferNumberStep(id=sid, number=check_as(st.ctx, stmt.number, st.scope, "phone", "transfer number"))


def _transfer_agent(st, stmt, sid, following, menu):
    agent = check(st.ctx, stmt.agent, st.scope)
    _agent_name(st, stmt.agent, agent)
    if isinstance(stmt.agent, ast.Ref) and len(stmt.agent.parts) == 1 and agent.type == ANY:
        pass
    elif agent.type not in ("agent", "text", ANY):
        st.report.error(st.file, stmt.agent.pos, "E403", f"transfer agent needs an agent, but this is {describe(agent.type)}")
    on_no_answer = _target(st, stmt.otherwise, following, menu)
    return ir.TransferAgentStep(id=sid, agent=agent, timeout_ms=stmt.timeout_ms or DEFAULT_TRANSFER_TIMEOUT_MS,
                                on_no_answer=on_no_answer or sid)


def _voicemail(st, stmt, sid, following, menu):
    return ir.VoicemailStep(id=sid, box=stmt.box, callback=stmt.callback)


def _record(st, stmt, sid, following, menu):
    return ir.RecordStep(id=sid, next=_ends_here(st, stmt, following))


def _survey(st, stmt, sid, following, menu):
    symbol = resolve(st.table, st.report, "flow", stmt.flow, st.file, ast.where(stmt.ref_pos, stmt.pos))
    _warn_entered_by_number(st, stmt, symbol)
    return ir.SurveyStep(id=sid, flow=stmt.flow, next=_ends_here(st, stmt, following))


def _subflow(st, stmt, sid, following, menu):
    symbol = resolve(st.table, st.report, "flow", stmt.flow, st.file, ast.where(stmt.ref_pos, stmt.pos))
    if symbol and symbol.decl is st.decl:
        st.report.error(st.file, stmt.pos, "E310", f"flow '{stmt.flow}' cannot run itself as a subflow",
                        hint="use goto to go back to an earlier step")
    else:
        _warn_entered_by_number(st, stmt, symbol)
    return ir.SubflowStep(id=sid, flow=stmt.flow, next=_ends_here(st, stmt, following))


def _warn_entered_by_number(st: _State, stmt: ast.Stmt, symbol) -> None:
    if symbol is not None and symbol.decl.entries:
        st.report.warning(st.file, ast.where(stmt.ref_pos, stmt.pos), "W311",
                          f"flow '{stmt.flow}' is entered by a dialled number; as a {stmt.kind} it can only end the call",
                          hint="give the shared steps a flow of their own without `entry number`")


def _agent_name(st: _State, expr: ast.Expr, value: ir.Expr) -> None:
    """An agent written by name must be one of the declared agents."""
    if isinstance(value, ir.Const) and value.type in ("text", "agent") and isinstance(value.value, str):
        resolve(st.table, st.report, "agent", value.value, st.file, expr.pos)


def _goto(st, stmt, sid, following, menu):
    st.aliases[sid] = _label(st, stmt.target_label, ast.where(stmt.ref_pos, stmt.pos))
    return None


def _return(st, stmt, sid, following, menu):
    if st.decl.entries:
        st.report.error(st.file, stmt.pos, "E307", f"flow '{st.decl.name}' is entered by a dialled number, so it has nowhere to return to",
                        hint="use hangup, or make it a subflow without `entry number`")
    return ir.ReturnStep(id=sid)


def _repeat(st, stmt, sid, following, menu):
    if menu is None:
        st.report.error(st.file, stmt.pos, "E306", "repeat is only allowed inside a menu or collect",
                        hint="use goto to jump back to a step")
        return ir.HangupStep(id=sid)
    return ir.RepeatStep(id=sid, menu=menu)


def _hangup(st, stmt, sid, following, menu):
    return ir.HangupStep(id=sid)


_HANDLERS = {
    ast.Answer: _answer, ast.Say: _say, ast.Play: _play, ast.Menu: _menu, ast.Collect: _collect, ast.Set: _set,
    ast.If: _if, ast.Switch: _switch, ast.Lookup: _lookup, ast.Create: _create, ast.Update: _update,
    ast.Http: _http, ast.Enqueue: _enqueue, ast.TransferNumber: _transfer_number,
    ast.TransferAgent: _transfer_agent, ast.Voicemail: _voicemail, ast.Record: _record, ast.Survey: _survey,
    ast.Subflow: _subflow, ast.Goto: _goto, ast.Return: _return, ast.Repeat: _repeat, ast.Hangup: _hangup,
}


def _declared_type(st: _State, type_ref: ast.TypeRef, owner: str) -> str:
    """A type written in a flow (`var x: number`, http `returns`)."""
    from compiler.entities import type_of

    return type_of(st.ctx, st.table, type_ref, owner)
