"""Who may read, create, update and delete which records: the project's roles, enforced.

A role line `read, update Customer where manager.agent == user and tier in [platinum, gold]`
gives its access only on the records for which the condition holds.  The same condition is
applied two ways that must agree: as SQL (`row_filter`, so lists and searches never load a row
the user may not see) and on a loaded record (`row_allowed`).  Several lines that give the same
access combine with `or`; a line without `where` gives every record.

Comparisons never yield SQL's unknown: `==`/`!=` are null-safe and `in` with none is false, so
`not` means the same in SQL as in `runtime.values`.  An ordering (`<`, `>=`...) with none is
false in both.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from sqlalchemy import MetaData, Table, and_, false, literal, not_, or_, select, true
from sqlalchemy.sql.elements import ColumnElement

from compiler import ir
from runtime.crm.tables import table_name
from runtime.crm.users import SYSTEM, User
from runtime.values import RECORD, USER, EvalError, Scope, const_value, evaluate, truth

ACCESSES = ("read", "create", "update", "delete")
Fetch = Callable[[str, int], "dict | None"]


class Forbidden(Exception):
    """The user may not do this; the message says who, what and to which entity."""


class RuleError(ValueError):
    """A role's `where` that cannot be applied to the database; the message names role and entity."""


def entity_title(bundle: ir.Bundle, entity: str) -> str:
    found = bundle.entities.get(entity)
    return (found.title if found else None) or entity


def forbidden(bundle: ir.Bundle, user: User, entity: str, access: str, record_id: int | None = None) -> Forbidden:
    """`Forbidden("李娜 (agent) may not delete 工单")`, naming the record when there is one."""
    roles = ", ".join(user.roles) or "no role"
    what = entity_title(bundle, entity) + (f" #{record_id}" if record_id is not None else "")
    return Forbidden(f"{user.shown} ({roles}) may not {access} {what}")


def _grants(bundle: ir.Bundle, user: User, entity: str, access: str) -> Iterator[tuple[str, ir.Permission]]:
    if access not in ACCESSES:
        raise ValueError(f"unknown access {access!r}; one of {', '.join(ACCESSES)}")
    for role_name in user.roles:
        role = bundle.roles.get(role_name)
        for permission in role.permissions if role else ():
            if permission.entity == entity and access in permission.access:
                yield role_name, permission


def may(bundle: ir.Bundle, user: User, entity: str, access: str) -> bool:
    """Does the user have this access to at least some records of the entity?"""
    if user == SYSTEM:
        return True
    return any(True for _ in _grants(bundle, user, entity, access))


def require(bundle: ir.Bundle, user: User, entity: str, access: str) -> None:
    if not may(bundle, user, entity, access):
        raise forbidden(bundle, user, entity, access)


def row_filter(bundle: ir.Bundle, user: User, entity: str, access: str, table: Table,
               metadata: MetaData) -> ColumnElement | None:
    """The SQL condition on `table` for the records the user may touch; None for all of them,
    `false()` for none."""
    if user == SYSTEM:
        return None
    conditions = []
    for role_name, permission in _grants(bundle, user, entity, access):
        if permission.where is None:
            return None
        translator = _Sql(bundle, metadata, role_name, entity, user.name)
        conditions.append(translator.condition(permission.where, table, entity))
    if not conditions:
        return false()
    return conditions[0] if len(conditions) == 1 else or_(*conditions)


def row_allowed(bundle: ir.Bundle, user: User, entity: str, access: str, row: Mapping[str, Any],
                fetch: Fetch) -> bool:
    """The same rule on a loaded record; `fetch(entity, id)` loads the records it refers to."""
    if user == SYSTEM:
        return True
    for _, permission in _grants(bundle, user, entity, access):
        if permission.where is None:
            return True
        record = LinkedRecord(bundle, entity, row, fetch)
        try:
            if truth(evaluate(permission.where, Scope(record=record, user=user.name))):
                return True
        except EvalError:
            continue  # an ordering with none: the line does not apply, as in SQL
    return False


def check_roles(bundle: ir.Bundle, metadata: MetaData | None = None) -> None:
    """Raises RuleError for the first role condition the database cannot apply (at build time)."""
    from runtime.crm.tables import crm_metadata
    metadata = metadata or crm_metadata(bundle)
    for role in bundle.roles.values():
        for permission in role.permissions:
            if permission.where is not None:
                table = metadata.tables[table_name(permission.entity)]
                _Sql(bundle, metadata, role.name, permission.entity, "").condition(
                    permission.where, table, permission.entity)


class LinkedRecord(Mapping):
    """A record whose reference fields read as the records they point at, loaded on demand."""

    def __init__(self, bundle: ir.Bundle, entity: str, row: Mapping[str, Any], fetch: Fetch):
        self.bundle, self.entity, self.row, self.fetch = bundle, entity, row, fetch
        self.refs = {f.name: f.target for f in bundle.entities[entity].fields if f.type == "ref"}

    def __getitem__(self, key: str) -> Any:
        value = self.row[key]
        target = self.refs.get(key)
        if target is None or value is None:
            return value
        linked = self.fetch(target, value)
        return None if linked is None else LinkedRecord(self.bundle, target, linked, self.fetch)

    def __iter__(self):
        return iter(self.row)

    def __len__(self) -> int:
        return len(self.row)


# ------------------------------------------------------------------ SQL translation

_ORDERINGS = {"<": "__lt__", "<=": "__le__", ">": "__gt__", ">=": "__ge__"}


class _Sql:
    """Turns one role line's `where` into SQL; references become nested scalar subqueries."""

    def __init__(self, bundle: ir.Bundle, metadata: MetaData, role: str, entity: str, user: str):
        self.bundle, self.metadata, self.role, self.entity, self.user = bundle, metadata, role, entity, user

    def fail(self, what: str) -> RuleError:
        return RuleError(f"role {self.role}, {self.entity}: {what} cannot be checked in the database")

    def condition(self, expr: ir.Expr, table: Table, entity: str) -> ColumnElement:
        if expr.kind == "op" and expr.op in ("and", "or"):
            parts = [self.condition(a, table, entity) for a in expr.args]
            return and_(*parts) if expr.op == "and" else or_(*parts)
        if expr.kind == "op" and expr.op == "not":
            return not_(self.condition(expr.args[0], table, entity))
        if expr.kind == "op" and expr.op in ("==", "!="):
            left, right = (self.value(a, table, entity) for a in expr.args)
            return left.is_not_distinct_from(right) if expr.op == "==" else left.is_distinct_from(right)
        if expr.kind == "op" and expr.op in ("in", "not in"):
            return self.membership(expr, table, entity)
        if expr.kind == "op" and expr.op in _ORDERINGS:
            left, right = (self.value(a, table, entity) for a in expr.args)
            return and_(left.is_not(None), right.is_not(None), getattr(left, _ORDERINGS[expr.op])(right))
        if expr.kind in ("var", "const") and expr.type == "bool":
            value = self.value(expr, table, entity)
            return value.is_not_distinct_from(true())
        raise self.fail(_what(expr))

    def membership(self, expr: ir.Op, table: Table, entity: str) -> ColumnElement:
        subject = self.value(expr.args[0], table, entity)
        options = [self.value(a, table, entity) for a in expr.args[1:]]
        found = or_(*[subject.is_not_distinct_from(o) for o in options]) if options else false()
        return found if expr.op == "in" else not_(found)

    def value(self, expr: ir.Expr, table: Table, entity: str) -> ColumnElement:
        if expr.kind == "const":
            try:
                return literal(const_value(expr))
            except EvalError as problem:
                raise self.fail(f"the value {expr.value!r} ({problem})") from None
        if expr.kind == "var" and expr.path == [USER]:
            return literal(self.user)
        if expr.kind == "var" and expr.path[:1] == [RECORD] and len(expr.path) > 1:
            return self.field(expr.path[1:], table, entity)
        raise self.fail(_what(expr))

    def field(self, path: list[str], table: Table, entity: str) -> ColumnElement:
        """The value of `a.b.c` on `table`'s row: follows each reference with a subquery."""
        head, rest = path[0], path[1:]
        if head not in table.c:
            raise self.fail(f"'{'.'.join(path)}' ({head} is not a field of {entity} that has a column)")
        if not rest:
            return table.c[head]
        field = next((f for f in self.bundle.entities[entity].fields if f.name == head), None)
        if field is None or field.type != "ref":
            raise self.fail(f"'{'.'.join(path)}' ({head} is not a reference to follow)")
        target = self.metadata.tables[table_name(field.target)].alias()
        inner = self.field(rest, target, field.target)
        return select(inner).where(target.c.id == table.c[head]).correlate(table).scalar_subquery()


def _what(expr: ir.Expr) -> str:
    if expr.kind == "call":
        return f"the function {expr.name}()"
    if expr.kind == "var":
        return "'" + ".".join(p.replace(RECORD, "").replace(USER, "user") for p in expr.path).strip(".") + "'"
    if expr.kind == "op":
        return f"the operator '{expr.op}'"
    return f"the value {expr.value!r}"
