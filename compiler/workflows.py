"""Stage 3 (workflow part): ticket workflows to IR, with their static checks.

A workflow gives its entity a `state` field whose choices are the workflow's states.  Checks:
exactly one initial state, at least one final state, every state reachable from the initial
one and able to move on (unless final), transitions between known states by known roles, and
SLAs counted in declared business hours.
"""
from __future__ import annotations

from compiler import ir
from compiler.entities import STATE_FIELD
from compiler.expressions import ANY, Context, Scope, check, check_as, check_condition
from compiler.symbols import SymbolTable, resolve
from compiler.types import describe
from dsl import ast
from dsl.diagnostics import did_you_mean


def declare_workflow_states(ctx: Context, table: SymbolTable, decl: ast.Workflow, owners: dict[str, str]) -> None:
    """Add the `state` field to the workflow's entity, before anything types its records."""
    symbol = resolve(table, ctx.report, "entity", decl.entity, ctx.file, ast.where(decl.ref_pos, decl.pos))
    if symbol is None:
        return
    if decl.entity in owners:
        ctx.report.error(ctx.file, decl.pos, "E507", f"entity {decl.entity} already has workflow '{owners[decl.entity]}'",
                         hint="an entity follows one workflow; merge the two")
        return
    owners[decl.entity] = decl.name
    states = [i.name for i in decl.items if i.kind == "state"]
    ctx.types.enums[f"{decl.entity}.{STATE_FIELD}"] = states
    ctx.types.records.setdefault(decl.entity, {})[STATE_FIELD] = f"enum:{decl.entity}.{STATE_FIELD}"


def lower_workflow(ctx: Context, table: SymbolTable, decl: ast.Workflow) -> ir.Workflow:
    states = _states(ctx, decl)
    names = [s.name for s in states]
    hours = _hours(ctx, table, decl)
    transitions = [_transition(ctx, table, decl, item, names) for item in decl.items if item.kind == "transition"]
    _check_graph(ctx, decl, states, transitions)
    slas = [_sla(ctx, table, decl, item, names) for item in decl.items if item.kind == "sla"]
    if slas and hours is None:
        first = next(i for i in decl.items if i.kind == "sla")
        ctx.report.error(ctx.file, first.pos, "E506", f"workflow '{decl.name}' has an SLA but no business hours to count it in",
                         hint="add `hours NAME` to the workflow (an hours declaration)")
    return ir.Workflow(name=decl.name, entity=decl.entity, title=decl.title, hours=hours, states=states,
                       transitions=transitions, slas=slas)


def _states(ctx: Context, decl: ast.Workflow) -> list[ir.WorkflowState]:
    states, seen = [], set()
    for item in (i for i in decl.items if i.kind == "state"):
        if item.name in seen:
            ctx.report.error(ctx.file, item.pos, "E207", f"state '{item.name}' is declared twice")
            continue
        seen.add(item.name)
        states.append(ir.WorkflowState(name=item.name, title=item.title, initial="initial" in item.flags,
                                       final="final" in item.flags, paused="paused" in item.flags))
    initial = [s for s in states if s.initial]
    if len(initial) != 1:
        ctx.report.error(ctx.file, decl.pos, "E501",
                         f"workflow '{decl.name}' needs exactly one initial state, not {len(initial)}",
                         hint="mark the state new records start in with `initial`")
    if not any(s.final for s in states):
        ctx.report.error(ctx.file, decl.pos, "E502", f"workflow '{decl.name}' has no final state",
                         hint="mark the state where work ends with `final`, e.g. `state closed final`")
    return states


def _hours(ctx: Context, table: SymbolTable, decl: ast.Workflow) -> str | None:
    items = [i for i in decl.items if i.kind == "hours"]
    for extra in items[1:]:
        ctx.report.error(ctx.file, extra.pos, "E207", "'hours' is given twice", hint="keep one of them")
    if not items:
        return None
    symbol = resolve(table, ctx.report, "hours", items[0].name, ctx.file, _at(items[0], items[0].name))
    return symbol.name if symbol else None


def _at(item: ast.WorkflowItem, name: str) -> ast.Pos:
    return item.name_pos.get(name, item.pos)


def _state_ref(ctx: Context, name: str, names: list[str], pos) -> None:
    if name not in names:
        ctx.report.error(ctx.file, pos, "E505", f"unknown state '{name}'",
                         hint=did_you_mean(name, names) or f"the states are: {', '.join(names)}")


def _transition(ctx: Context, table: SymbolTable, decl: ast.Workflow, item: ast.WorkflowItem,
                names: list[str]) -> ir.Transition:
    for name in [*item.sources, item.dest]:
        _state_ref(ctx, name, names, _at(item, name))
    for role in item.roles:
        resolve(table, ctx.report, "role", role, ctx.file, _at(item, role))
    known = decl.entity in ctx.types.records
    scope = Scope(record=decl.entity if known else None, allow_user=True, lenient=not known)
    guard = check_condition(ctx, item.guard, scope) if item.guard is not None else None
    actions = [_action(ctx, table, decl, a, scope) for a in item.actions]
    return ir.Transition(name=item.name, title=item.title, sources=item.sources, dest=item.dest, roles=item.roles,
                         guard=guard, actions=actions)


def _action(ctx: Context, table: SymbolTable, decl: ast.Workflow, action: ast.WorkflowAction,
            scope: Scope) -> ir.WorkflowAction:
    if action.kind == "assign":
        return ir.WorkflowAction(kind="assign", value=check_as(ctx, action.value, scope, "agent", "assign"))
    if action.kind == "notify":
        return ir.WorkflowAction(kind="notify", value=_recipient(ctx, table, action.value, scope),
                                 message=action.value2)
    fields = ctx.types.records.get(decl.entity, {})
    if action.value not in fields:
        ctx.report.error(ctx.file, action.pos, "E210", f"{decl.entity} has no field '{action.value}'",
                         hint=did_you_mean(action.value, fields))
        return ir.WorkflowAction(kind="set", field=action.value, value=check(ctx, action.value2, scope))
    return ir.WorkflowAction(kind="set", field=action.value,
                             value=check_as(ctx, action.value2, scope, fields[action.value], f"field '{action.value}'"))


def _recipient(ctx: Context, table: SymbolTable, expr: ast.Expr, scope: Scope) -> ir.Expr:
    """Who to notify: an agent (e.g. the assignee) or everyone with a role (e.g. team_lead)."""
    if isinstance(expr, ast.Ref) and len(expr.parts) == 1 and table.get("role", expr.parts[0]) \
            and expr.parts[0] not in ctx.types.records.get(scope.record or "", {}):
        return ir.Const(type="role", value=expr.parts[0])
    value = check(ctx, expr, scope)
    if value.type not in ("agent", ANY):
        ctx.report.error(ctx.file, expr.pos, "E403", f"notify needs an agent or a role, but this is {describe(value.type)}")
    return value


def _check_graph(ctx: Context, decl: ast.Workflow, states: list[ir.WorkflowState],
                 transitions: list[ir.Transition]) -> None:
    known = {s.name for s in states}
    reached = {s.name for s in states if s.initial}
    frontier = list(reached)
    while frontier:
        state = frontier.pop()
        for t in transitions:
            if state in t.sources and t.dest in known and t.dest not in reached:
                reached.add(t.dest)
                frontier.append(t.dest)
    positions = {i.name: i.pos for i in decl.items if i.kind == "state"}
    initial_known = any(s.initial for s in states)
    for s in states:
        if initial_known and s.name not in reached:
            ctx.report.error(ctx.file, positions[s.name], "E503", f"no transition leads into state '{s.name}'",
                             hint="add a transition to it, or remove the state")
        if not s.final and not any(s.name in t.sources for t in transitions):
            ctx.report.error(ctx.file, positions[s.name], "E504", f"state '{s.name}' has no way out and is not final",
                             hint="add a transition from it, or mark it `final`")


def _sla(ctx: Context, table: SymbolTable, decl: ast.Workflow, item: ast.WorkflowItem, names: list[str]) -> ir.Sla:
    for name in [*item.sources, *item.flags]:
        _state_ref(ctx, name, names, _at(item, name))
    if item.duration_ms <= 0:
        ctx.report.error(ctx.file, item.pos, "E308", "an SLA target must be longer than 0s")
    rules = []
    for rule in item.rules:
        if rule.percent is not None and not 0 < rule.percent <= 1000:
            ctx.report.error(ctx.file, rule.pos, "E603", f"{rule.percent}% is not a point of an SLA clock",
                             hint="use a percentage above 0, e.g. 80% or 100%")
        if rule.kind == "escalate":
            resolve(table, ctx.report, "role", rule.who, ctx.file, rule.pos)
            rules.append(ir.SlaRule(kind="escalate", percent=float(rule.percent), role=rule.who))
        else:
            scope = Scope(record=decl.entity if decl.entity in ctx.types.records else None, allow_user=True)
            rules.append(ir.SlaRule(kind=rule.kind, percent=float(rule.percent) if rule.percent is not None else None,
                                    who=_recipient(ctx, table, rule.who, scope), every_ms=rule.every_ms))
    return ir.Sla(name=item.name, duration_ms=item.duration_ms, start=item.sources[0], stops=item.flags, rules=rules)
