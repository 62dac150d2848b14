"""Moving a record through its workflow: which transitions a user may fire, and what firing does.

Pure: `fire` checks the move (state, role, guard) and says what to write and whom to notify; the
record store writes it in one transaction with the audit log.  Guards see the record as it is
before the move, `user` being the agent making it; actions run in order on the record being
changed, and `notify assignee` reaches the assignee after all of them (so `assign user` followed
by `notify assignee` tells the new one).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Mapping

from compiler import ir
from dsl.literals import format_duration
from runtime.crm.permissions import Fetch, LinkedRecord, entity_title, may
from runtime.crm.users import SYSTEM, User
from runtime.values import RECORD, USER, EvalError, Scope, evaluate, to_text, truth


class TransitionRefused(Exception):
    """The move is not allowed now; the message says why in the user's words."""


@dataclass
class Fired:
    changes: dict[str, Any]                                           # fields to write, with "state"
    notifications: list[tuple[str, str]] = field(default_factory=list)  # (agent, message)


def workflow_of(bundle: ir.Bundle, entity: str) -> ir.Workflow:
    found = bundle.entities.get(entity)
    if found is None or not found.workflow:
        raise TransitionRefused(f"{entity_title(bundle, entity)} has no workflow")
    return bundle.workflows[found.workflow]


def state_title(workflow: ir.Workflow, name: str | None) -> str:
    state = next((s for s in workflow.states if s.name == name), None)
    return (state.title if state else None) or str(name)


def role_allows(bundle: ir.Bundle, entity: str, transition: ir.Transition, user: User) -> bool:
    if user == SYSTEM:
        return True
    if not transition.roles:
        return may(bundle, user, entity, "update")
    return user.has_role(*transition.roles)


def transitions_for(bundle: ir.Bundle, entity: str, row: Mapping[str, Any], user: User) -> list[ir.Transition]:
    """The transitions out of the record's state that the user's roles allow (guards not checked:
    the studio shows them as buttons, and a failed guard is explained when pressed)."""
    workflow = workflow_of(bundle, entity)
    return [t for t in workflow.transitions
            if row.get("state") in t.sources and role_allows(bundle, entity, t, user)]


def fire(bundle: ir.Bundle, entity: str, row: Mapping[str, Any], transition_name: str, user: User,
         now: datetime, fetch: Fetch | None = None) -> Fired:
    """Checks the move and returns what it changes; raises TransitionRefused saying why not."""
    workflow = workflow_of(bundle, entity)
    transition = _transition(bundle, workflow, entity, transition_name)
    record = LinkedRecord(bundle, entity, row, fetch) if fetch else row
    scope = Scope(record=record, user=user.name, now=now, hours=bundle.hours)
    _check(bundle, workflow, entity, transition, row, user, scope)
    after = dict(row)
    notifies = []
    for action in transition.actions:
        if action.kind == "notify":
            notifies.append(action)
            continue
        target = action.field or _assignee_field(bundle, entity)
        after[target] = _value(action.value, Scope(record=after, user=user.name, now=now, hours=bundle.hours),
                               transition)
    after["state"] = transition.dest
    changes = {k: v for k, v in after.items() if k == "state" or row.get(k) != v}
    final_scope = Scope(record=after, user=user.name, now=now, hours=bundle.hours)
    notifications = []
    for action in notifies:
        message = action.message or f"{entity_title(bundle, entity)}: {transition.title or transition.name}"
        for agent in recipients(bundle, action.value, final_scope):
            if (agent, message) not in notifications:
                notifications.append((agent, message))
    return Fired(changes, notifications)


def recipients(bundle: ir.Bundle, who: ir.Expr | None, scope: Scope) -> list[str]:
    """The agents a `notify`/`remind WHO` reaches: one agent, or everyone with a role."""
    if who is None:
        return []
    if who.kind == "const" and who.type == "role":
        return [name for name, agent in bundle.agents.items() if who.value in agent.roles]
    agent = evaluate(who, scope)
    return [agent] if agent else []


def _transition(bundle: ir.Bundle, workflow: ir.Workflow, entity: str, name: str) -> ir.Transition:
    found = next((t for t in workflow.transitions if t.name == name), None)
    if found is None:
        names = ", ".join(t.name for t in workflow.transitions)
        raise TransitionRefused(f"{entity_title(bundle, entity)} has no transition '{name}' (there are: {names})")
    return found


def _check(bundle: ir.Bundle, workflow: ir.Workflow, entity: str, transition: ir.Transition,
           row: Mapping[str, Any], user: User, scope: Scope) -> None:
    what, title = entity_title(bundle, entity), transition.title or transition.name
    if row.get("state") not in transition.sources:
        needs = " or ".join(state_title(workflow, s) for s in transition.sources)
        raise TransitionRefused(f"{what} is {state_title(workflow, row.get('state'))}; {title} needs {needs}")
    if not role_allows(bundle, entity, transition, user):
        allowed = ", ".join(_role_title(bundle, r) for r in transition.roles) or "those who may update it"
        roles = ", ".join(_role_title(bundle, r) for r in user.roles) or "no role"
        raise TransitionRefused(f"{user.shown} ({roles}) may not {title} {what}: only {allowed} may")
    if transition.guard is not None:
        failed = _failed_part(transition.guard, scope)
        if failed is not None:
            raise TransitionRefused(f"{title} needs {failed}")


def _failed_part(guard: ir.Expr, scope: Scope) -> str | None:
    """The guard's text, or that of its first part that fails when it is an `and`; None when it holds."""
    try:
        if guard.kind == "op" and guard.op == "and":
            for part in guard.args:
                failed = _failed_part(part, scope)
                if failed is not None:
                    return failed
            return None
        return None if truth(evaluate(guard, scope)) else expr_text(guard)
    except EvalError as problem:
        return f"{expr_text(guard)} ({problem})"


def _value(expr: ir.Expr | None, scope: Scope, transition: ir.Transition) -> Any:
    try:
        return evaluate(expr, scope) if expr is not None else None
    except EvalError as problem:
        raise TransitionRefused(f"{transition.title or transition.name}: {problem}") from None


def _assignee_field(bundle: ir.Bundle, entity: str) -> str:
    """The field `assign` sets: the entity's agent field (`assignee` when there are several)."""
    agents = [f.name for f in bundle.entities[entity].fields if f.type == "agent"]
    if "assignee" in agents or not agents:
        return "assignee"
    return agents[0]


def _role_title(bundle: ir.Bundle, name: str) -> str:
    role = bundle.roles.get(name)
    return (role.title if role else None) or name


# ------------------------------------------------------------------ expressions as DSL text

_STRENGTH = {"or": 1, "and": 2, "not": 3, "==": 4, "!=": 4, "<": 4, "<=": 4, ">": 4, ">=": 4, "in": 4,
             "not in": 4, "+": 5, "-": 5, "*": 6, "/": 6}


def expr_text(expr: ir.Expr) -> str:
    """An expression as it is written in the DSL (`assignee == user`, `tier in [gold]`)."""
    return _text(expr, 0)


def _text(expr: ir.Expr, needed: int) -> str:
    if expr.kind == "const":
        return _const_text(expr)
    if expr.kind == "var":
        path = ["user" if p == USER else p for p in expr.path if p != RECORD]
        return ".".join(path) or "record"
    if expr.kind == "call":
        return f"{expr.name}({', '.join(_text(a, 0) for a in expr.args)})"
    strength = _STRENGTH.get(expr.op, 7)
    args = expr.args
    if expr.op == "not":
        text = f"not {_text(args[0], 3)}"
    elif expr.op in ("in", "not in"):
        text = f"{_text(args[0], 5)} {expr.op} [{', '.join(_text(a, 0) for a in args[1:])}]"
    elif strength == 4:
        text = f"{_text(args[0], 5)} {expr.op} {_text(args[1], 5)}"
    else:
        text = f"{_text(args[0], strength)} {expr.op} {_text(args[1], strength + 1)}"
    return f"({text})" if strength < needed else text


def _const_text(const: ir.Const) -> str:
    value = const.value
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if const.type == "duration":
        return format_duration(int(value))
    if const.type == "text":
        return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'
    return to_text(value)
