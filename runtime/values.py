"""Runtime values and the evaluator of `ir.Expr`.

Values by type:  text, phone, email, enum choice, agent -> str;  number, money -> Decimal;
bool -> bool;  date -> date;  datetime -> aware datetime;  duration -> int milliseconds;
record, HTTP reply -> dict (field -> value);  none -> None.

Values that come from outside (records from storage, HTTP replies) may still be in JSON form
("58.20", "2026-10-01"); reading them through a typed `ir.Var` turns them into the value of that
type, so the rest of the engine only ever sees the forms above.

Errors at run time raise `EvalError` with a message that says what went wrong; the engine turns
it into its safe fallback.  Decided here:
- A field of none is none (`customer.name` when the lookup found nothing), as is an unset
  variable, so a prompt can still be spoken.  Arithmetic, ordering or text joining with none,
  division by zero, an unknown hours name or an unset secret are errors.
- A condition that is none counts as false; any other non-bool value in a condition is an error.
- A record compares equal to its id (a reference field holds the id of the record it points at).
- `hour(t)` and `weekday(t)` read `t` in its own time zone (the edge passes `now` in the call
  centre's zone); `weekday` is 1 for Monday to 7 for Sunday.

In lookups, forms, permissions and workflow guards, a Var path that begins with "@record" is a
field of the record being tested and "@user" the acting agent; `lookup_criteria` turns a where
clause into what storage can apply.
"""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, DecimalException
from typing import Any, Callable, Mapping

from compiler import ir
from runtime import hours as business_hours

RECORD = "@record"
USER = "@user"
TEXT_TYPES = frozenset({"text", "phone", "email", "agent"})
NUMBER_TYPES = frozenset({"number", "money"})
_CENT = Decimal("0.01")


class EvalError(Exception):
    """A runtime error in an expression or a step; the message says what went wrong."""


@dataclass(slots=True)
class Scope:
    """What names mean while evaluating: the flow's variables, the call's built-ins and, for
    lookups and guards, the record being tested and the acting agent."""
    variables: Mapping[str, Any] = field(default_factory=dict)
    caller: str = ""
    dialed: str = ""
    call_id: str = ""
    now: dt.datetime | None = None
    hours: Mapping[str, ir.Hours] = field(default_factory=dict)
    secrets: Callable[[str], str | None] | None = None
    record: Mapping[str, Any] | None = None
    user: str | None = None


# ------------------------------------------------------------------ evaluation

def evaluate(expr: ir.Expr, scope: Scope) -> Any:
    kind = expr.kind
    if kind == "const":
        return const_value(expr)
    if kind == "var":
        return _var(expr, scope)
    if kind == "op":
        return _op(expr, scope)
    if kind == "call":
        return _call(expr, scope)
    raise EvalError(f"unknown kind of expression '{kind}'")


def truth(value: Any, what: str = "a condition") -> bool:
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    raise EvalError(f"{what} must be true or false, but it is {describe(value)}")


def const_value(const: ir.Const) -> Any:
    value = const.value
    if value is None:
        return None
    return coerce(value, const.type)


def coerce(value: Any, type_: str) -> Any:
    """`value` as the runtime value of `type_`; JSON forms (text numbers, ISO dates) are converted."""
    if value is None:
        return None
    try:
        if type_ in NUMBER_TYPES:
            if isinstance(value, Decimal):
                return value
            if isinstance(value, bool) or not isinstance(value, (int, float, str)):
                raise ValueError
            return Decimal(str(value).strip())
        if type_ == "date":
            if isinstance(value, dt.datetime):
                return value.date()
            return value if isinstance(value, dt.date) else dt.date.fromisoformat(value)
        if type_ == "datetime":
            moment = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(value)
            # storage and outside systems that drop the zone mean UTC
            return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.timezone.utc)
        if type_ == "duration":
            if isinstance(value, bool):
                raise ValueError
            return int(value)
        if type_ == "bool":
            if not isinstance(value, bool):
                raise ValueError
            return value
        if type_ in TEXT_TYPES or type_.startswith("enum:"):
            if isinstance(value, (dict, list, bool)):
                raise ValueError
            return value if isinstance(value, str) else to_text(value)
    except (ValueError, TypeError, DecimalException):
        raise EvalError(f"{json.dumps(plain(value), ensure_ascii=False)} is not {_a(type_)}") from None
    return value


def _a(type_: str) -> str:
    kind, _, owner = type_.partition(":")
    if kind == "enum":
        return f"a choice of {owner}"
    return {"date": "a date (YYYY-MM-DD)", "datetime": "a date and time", "duration": "a duration",
            "number": "a number", "money": "an amount of money", "bool": "true or false"}.get(kind, f"a {kind}")


def _var(expr: ir.Var, scope: Scope) -> Any:
    head, rest = expr.path[0], expr.path[1:]
    if head in scope.variables:
        value = scope.variables[head]
    elif head == RECORD:
        value = scope.record
    elif head == USER:
        value = scope.user
    elif head == "caller":
        value = scope.caller
    elif head == "dialed":
        value = scope.dialed
    elif head == "now":
        value = scope.now
    elif head == "call":
        value = {"id": scope.call_id}
    else:
        value = None  # a variable not set yet
    for i, part in enumerate(rest):
        if value is None:
            return None
        if not isinstance(value, Mapping):
            shown = ".".join(p for p in expr.path[:i + 1] if p != RECORD)
            raise EvalError(f"'{shown}' is {describe(value)} and has no field '{part}'")
        value = value.get(part)
    return coerce(value, expr.type) if expr.type != "any" else value


def describe(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping):
        return "a record"
    if isinstance(value, str):
        return f"the text \"{value}\""
    return to_text(value)


# ------------------------------------------------------------------ operators

_COMPARE = {"<": lambda a, b: a < b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b}


def _op(expr: ir.Op, scope: Scope) -> Any:
    op, args = expr.op, expr.args
    if op == "and":
        return truth(evaluate(args[0], scope)) and truth(evaluate(args[1], scope))
    if op == "or":
        return truth(evaluate(args[0], scope)) or truth(evaluate(args[1], scope))
    if op == "not":
        return not truth(evaluate(args[0], scope))
    values = [evaluate(a, scope) for a in args]
    if op == "==":
        return equal(values[0], values[1])
    if op == "!=":
        return not equal(values[0], values[1])
    if op in ("in", "not in"):
        found = any(equal(values[0], option) for option in values[1:])
        return found if op == "in" else not found
    if op in _COMPARE:
        return _ordered(op, values[0], values[1])
    return arithmetic(op, values[0], values[1], expr.type)


def equal(a: Any, b: Any) -> bool:
    if isinstance(a, Mapping) and not isinstance(b, Mapping):
        a = a.get("id")
    elif isinstance(b, Mapping) and not isinstance(a, Mapping):
        b = b.get("id")
    if isinstance(a, Decimal) and isinstance(b, (int, str)) and not isinstance(b, bool):
        return _same_number(a, b)
    if isinstance(b, Decimal) and isinstance(a, (int, str)) and not isinstance(a, bool):
        return _same_number(b, a)
    return a == b


def _same_number(number: Decimal, other: int | str) -> bool:
    try:
        return number == Decimal(str(other))
    except DecimalException:
        return False


def _ordered(op: str, a: Any, b: Any) -> bool:
    if a is None or b is None:
        raise EvalError(f"cannot compare {describe(a)} {op} {describe(b)}: one side is none")
    try:
        return _COMPARE[op](a, b)
    except TypeError:
        raise EvalError(f"cannot compare {describe(a)} {op} {describe(b)}") from None


def arithmetic(op: str, a: Any, b: Any, result_type: str) -> Any:
    if a is None or b is None:
        raise EvalError(f"cannot compute {describe(a)} {op} {describe(b)}: one side is none")
    if op == "+" and (result_type == "text" or isinstance(a, str) or isinstance(b, str)):
        return to_text(a) + to_text(b)
    if isinstance(a, bool) or isinstance(b, bool) or not isinstance(a, (int, Decimal)) or not isinstance(b, (int, Decimal)):
        raise EvalError(f"cannot compute {describe(a)} {op} {describe(b)}")
    if isinstance(a, int) and isinstance(b, int) and op in "+-":
        return a + b if op == "+" else a - b  # durations
    a, b = Decimal(a), Decimal(b)
    try:
        if op == "+":
            return a + b
        if op == "-":
            return a - b
        if op == "*":
            return a * b
        if op == "/":
            if b == 0:
                raise EvalError(f"division by zero ({to_text(a)} / 0)")
            return a / b
    except DecimalException as error:
        raise EvalError(f"cannot compute {to_text(a)} {op} {to_text(b)}: {type(error).__name__}") from None
    raise EvalError(f"unknown operator '{op}'")


# ------------------------------------------------------------------ built-in functions

def _call(expr: ir.Fn, scope: Scope) -> Any:
    name = expr.name
    args = [evaluate(a, scope) for a in expr.args]
    if name == "open":
        hours = scope.hours.get(args[0]) if args else None
        if hours is None:
            raise EvalError(f"there are no hours named '{args[0] if args else ''}'")
        if scope.now is None:
            raise EvalError("open() needs the current time")
        try:
            return business_hours.is_open(hours, scope.now)
        except ValueError as problem:  # a moment without zone, or hours that cannot be read
            raise EvalError(f"open({args[0]}): {problem}") from None
    if name == "len":
        value = args[0] if args else None
        return Decimal(0) if value is None else Decimal(len(value if isinstance(value, (str, list, dict)) else to_text(value)))
    if name in ("hour", "weekday"):
        moment = args[0] if args else None
        if not isinstance(moment, dt.datetime):
            raise EvalError(f"{name}() needs a date and time, not {describe(moment)}")
        return Decimal(moment.hour if name == "hour" else moment.isoweekday())
    if name == "secret":
        return _secret(args[0] if args else "", scope)
    raise EvalError(f"unknown function '{name}'")


def _secret(name: str, scope: Scope) -> str:
    value = scope.secrets(name) if scope.secrets is not None else None
    if value is None:
        raise EvalError(f"secret '{name}' is not set where the call runs")
    return value


def uses_secret(expr: ir.Expr | None) -> bool:
    """Does the value of `expr` depend on a secret (so logs must not show it)?"""
    if expr is None:
        return False
    if expr.kind == "call" and expr.name == "secret":
        return True
    return any(uses_secret(a) for a in getattr(expr, "args", ()))


# ------------------------------------------------------------------ text

def to_text(value: Any) -> str:
    """A value as text: for joining with `+` and for speaking."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Decimal):
        return _decimal_text(value)
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Mapping):
        for key in ("name", "title", "id"):
            if value.get(key) is not None:
                return to_text(value[key])
        return ""
    return str(value)


def _decimal_text(value: Decimal) -> str:
    if value == value.to_integral_value():
        return format(value.quantize(Decimal(1)), "f")
    return format(value.normalize(), "f")


def spoken(value: Any, type_: str) -> str:
    """How a value of `type_` is spoken in a prompt: money with two decimals when it has cents,
    durations in hours, minutes and seconds."""
    if type_ == "money" and isinstance(value, Decimal) and value != value.to_integral_value():
        return format(value.quantize(_CENT, rounding=ROUND_HALF_UP), "f")
    if type_ == "duration" and isinstance(value, int) and not isinstance(value, bool):
        return _duration_text(value)
    return to_text(value)


def _duration_text(ms: int) -> str:
    seconds = ms // 1000
    parts = [(seconds // 3600, "h"), (seconds // 60 % 60, "m"), (seconds % 60, "s")]
    return "".join(f"{n}{unit}" for n, unit in parts if n) or "0s"


def interpolate(parts: list[ir.TextPart], scope: Scope) -> str:
    """A prompt's text with every `{expr}` replaced by its spoken value."""
    out = []
    for part in parts:
        if part.expr is not None:
            out.append(spoken(evaluate(part.expr, scope), part.expr.type))
        elif part.text:
            out.append(part.text)
    return "".join(out)


# ------------------------------------------------------------------ JSON forms

def plain(value: Any) -> Any:
    """A JSON-ready form for logs and outside systems (money and numbers as text, dates ISO)."""
    if value is None or isinstance(value, (bool, int, str, float)):
        return value
    if isinstance(value, Decimal):
        return format(value, "f")  # as written: money keeps its cents ("58.20")
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return str(value)


def dump(value: Any) -> Any:
    """A lossless JSON form that `load` turns back into the same value (saved call state)."""
    if value is None or isinstance(value, (bool, int, str, float)):
        return value
    if isinstance(value, Decimal):
        return {"$decimal": str(value)}
    if isinstance(value, dt.datetime):
        return {"$datetime": value.isoformat(), "$zone": getattr(value.tzinfo, "key", None)}
    if isinstance(value, dt.date):
        return {"$date": value.isoformat()}
    if isinstance(value, Mapping):
        return {"$record": {str(k): dump(v) for k, v in value.items()}}
    if isinstance(value, (list, tuple)):
        return [dump(v) for v in value]
    raise TypeError(f"cannot save a value of type {type(value).__name__}")


def load(data: Any) -> Any:
    if isinstance(data, list):
        return [load(v) for v in data]
    if not isinstance(data, dict):
        return data
    if "$decimal" in data:
        return Decimal(data["$decimal"])
    if "$datetime" in data:
        moment = dt.datetime.fromisoformat(data["$datetime"])
        zone = data.get("$zone")
        if zone:
            from zoneinfo import ZoneInfo
            moment = moment.astimezone(ZoneInfo(zone))
        return moment
    if "$date" in data:
        return dt.date.fromisoformat(data["$date"])
    if "$record" in data:
        return {k: load(v) for k, v in data["$record"].items()}
    raise ValueError(f"unknown saved value {data!r}")


def to_const(value: Any, type_: str) -> ir.Const:
    """A runtime value as an IR constant (for partially evaluated expressions)."""
    if isinstance(value, Mapping):
        value = value.get("id")  # a record stands for its id, as in a reference field
        type_ = "number" if isinstance(value, (int, Decimal)) and not isinstance(value, bool) else "text"
    if isinstance(value, Decimal):
        value = _decimal_text(value)
    elif isinstance(value, (dt.date, dt.datetime)):
        value = value.isoformat()
    elif value is not None and not isinstance(value, (str, int, bool)):
        value = str(value)
    return ir.Const(type=type_ if value is not None else "none", value=value)


# ------------------------------------------------------------------ lookups

def mentions(expr: ir.Expr, head: str) -> bool:
    if expr.kind == "var":
        return expr.path[0] == head
    return any(mentions(a, head) for a in getattr(expr, "args", ()))


def partial(expr: ir.Expr, scope: Scope, keep: str = RECORD) -> ir.Expr:
    """`expr` with every part that does not mention `keep` evaluated to a constant."""
    if not mentions(expr, keep):
        value = evaluate(expr, scope)
        return to_const(value, expr.type)
    if expr.kind == "op":
        args = [partial(a, scope, keep) for a in expr.args]
        if expr.op in ("and", "or"):
            return _simplify(expr.op, args)
        return ir.Op(type=expr.type, op=expr.op, args=args)
    if expr.kind == "call":
        return ir.Fn(type=expr.type, name=expr.name, args=[partial(a, scope, keep) for a in expr.args])
    return expr


def _simplify(op: str, args: list[ir.Expr]) -> ir.Expr:
    """`true and X` is X, `false and X` is false; likewise for `or`."""
    decisive = op == "or"  # the constant that decides the whole: true for or, false for and
    rest = []
    for arg in args:
        if arg.kind == "const" and arg.type in ("bool", "none"):
            if bool(arg.value) == decisive:
                return ir.Const(type="bool", value=decisive)
            continue
        rest.append(arg)
    if not rest:
        return ir.Const(type="bool", value=not decisive)
    return rest[0] if len(rest) == 1 else ir.Op(type="bool", op=op, args=rest)


def conjuncts(expr: ir.Expr) -> list[ir.Expr]:
    if expr.kind == "op" and expr.op == "and":
        return [part for arg in expr.args for part in conjuncts(arg)]
    if expr.kind == "const" and expr.value is True:
        return []
    return [expr]


def lookup_criteria(where: ir.Expr, scope: Scope) -> tuple[dict[str, Any], ir.Expr | None]:
    """What a lookup asks storage for: equalities `field -> value` that every match satisfies,
    and the rest of the condition (or None) with every flow value already a constant, so that
    only `@record` fields are left to test (`record_matches` tests one candidate)."""
    equals: dict[str, Any] = {}
    rest: list[ir.Expr] = []
    for part in conjuncts(partial(where, scope)):
        found = _field_equality(part)
        if found is not None and found[0] not in equals:
            equals[found[0]] = found[1]
        else:
            rest.append(part)
    if not rest:
        return equals, None
    return equals, rest[0] if len(rest) == 1 else ir.Op(type="bool", op="and", args=rest)


def _field_equality(expr: ir.Expr) -> tuple[str, Any] | None:
    if expr.kind != "op" or expr.op != "==":
        return None
    a, b = expr.args
    if b.kind == "var" and a.kind == "const":
        a, b = b, a
    if a.kind == "var" and b.kind == "const" and len(a.path) == 2 and a.path[0] == RECORD:
        value = const_value(b)
        return a.path[1], coerce(value, a.type) if a.type != "any" else value
    return None


def record_matches(equals: Mapping[str, Any], where: ir.Expr | None, record: Mapping[str, Any],
                   scope: Scope | None = None) -> bool:
    """Does one stored record satisfy lookup criteria (for storage that filters in Python)?"""
    for name, wanted in equals.items():
        if not equal(wanted, record.get(name)):
            return False
    if where is None:
        return True
    inner = Scope(record=record) if scope is None else Scope(**{**_fields(scope), "record": record})
    try:
        return truth(evaluate(where, inner))
    except EvalError:
        return False  # a record whose field cannot be compared does not match


def _fields(scope: Scope) -> dict[str, Any]:
    return {name: getattr(scope, name) for name in Scope.__slots__}


# ------------------------------------------------------------------ digits typed by the caller

def parse_digits(digit_type: str, keys: str) -> Any:
    """The keys a caller typed as a value of `digit_type`, or None when they are not one."""
    if digit_type == "amount":
        whole, point, cents = keys.partition("*")
        if whole.isdigit() and (not point or (cents.isdigit() and len(cents) <= 2)):
            return Decimal(whole + ("." + cents if point else ""))
        return None
    if digit_type == "digits":
        return keys if keys and all(k in "0123456789*" for k in keys) else None
    if digit_type == "id_card":
        # A resident ID card number (GB 11643): 17 digits and a check character; a phone has no X
        # key, so the caller presses * for it.
        number = keys[:-1] + ("X" if keys[-1:] == "*" else keys[-1:])
        return number if len(number) == 18 and number[:17].isdigit() and id_card_check(number[:17]) == number[17] else None
    if not keys.isdigit() or not keys.isascii():
        return None
    if digit_type == "phone":
        # mobiles: 11 digits starting with 1; fixed lines (with or without area code): 7-12 digits
        return keys if (len(keys) == 11 if keys[0] == "1" else 7 <= len(keys) <= 12) else None
    if digit_type == "card":
        return keys if luhn(keys) else None
    if digit_type == "date":
        try:
            return dt.date(int(keys[:4]), int(keys[4:6]), int(keys[6:8])) if len(keys) == 8 else None
        except ValueError:
            return None
    if digit_type == "number":
        return Decimal(keys)
    return None  # not a digit type


def id_card_check(first17: str) -> str:
    """The check character of a resident ID card number (ISO 7064 MOD 11-2)."""
    total = sum(int(d) * w for d, w in zip(first17, (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)))
    return "10X98765432"[total % 11]


def luhn(number: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return len(number) > 1 and total % 10 == 0
