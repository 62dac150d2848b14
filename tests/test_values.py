"""Runtime values: evaluating IR expressions, prompts, lookup criteria, typed keys, saved forms."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from compiler import ir
from runtime.values import (EvalError, Scope, dump, evaluate, interpolate, load, lookup_criteria, luhn, parse_digits,
                            plain, record_matches, spoken, to_const, uses_secret)

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = dt.datetime(2026, 11, 23, 10, 30, tzinfo=SHANGHAI)  # a Monday


from ir_helpers import const, op, var  # noqa: E402


def fn(name, *args, type_="text"):
    return ir.Fn(type=type_, name=name, args=list(args))


OFFICE = ir.Hours(name="office", timezone="Asia/Shanghai",
                  weekly={"mon": [ir.TimeRange(start="08:00", end="20:00")]})


def scope(**variables) -> Scope:
    return Scope(variables=variables, caller="13800138000", dialed="4008001000", call_id="c-1", now=NOW,
                 hours={"office": OFFICE}, secrets={"TOKEN": "s3cret"}.get)


def ev(expr, s=None):
    return evaluate(expr, s or scope())


# ------------------------------------------------------------------ constants and names

@pytest.mark.parametrize("type_, value, expected", [
    ("money", "58.20", Decimal("58.20")),
    ("number", "3", Decimal(3)),
    ("date", "2026-10-01", dt.date(2026, 10, 1)),
    ("datetime", "2026-10-01T08:00:00+08:00", dt.datetime(2026, 10, 1, 8, tzinfo=SHANGHAI)),
    ("duration", 30_000, 30_000),
    ("bool", True, True),
    ("text", "你好", "你好"),
    ("enum:Customer.tier", "gold", "gold"),
    ("none", None, None),
])
def test_constants(type_, value, expected):
    assert ev(const(type_, value)) == expected


def test_built_in_values():
    assert ev(var("caller", type_="phone")) == "13800138000"
    assert ev(var("dialed", type_="phone")) == "4008001000"
    assert ev(var("now", type_="datetime")) == NOW
    assert ev(var("call", "id")) == "c-1"


def test_variables_and_fields():
    customer = {"id": 7, "name": "张三", "balance": "58.2", "since": "2020-05-01", "manager": {"id": 1, "agent": "li_na"}}
    s = scope(customer=customer)
    assert ev(var("customer", "name"), s) == "张三"
    # fields in JSON form are read as their declared type
    assert ev(var("customer", "balance", type_="money"), s) == Decimal("58.2")
    assert ev(var("customer", "since", type_="date"), s) == dt.date(2020, 5, 1)
    assert ev(var("customer", "manager", "agent", type_="agent"), s) == "li_na"


def test_none_and_unset_values_have_none_fields():
    assert ev(var("customer", "name"), scope(customer=None)) is None
    assert ev(var("never_set")) is None
    assert ev(var("customer", "manager", "agent"), scope(customer={"manager": None})) is None


def test_a_field_of_a_plain_value_is_an_error():
    with pytest.raises(EvalError, match="'customer.manager' is 3 and has no field 'agent'"):
        ev(var("customer", "manager", "agent"), scope(customer={"manager": Decimal(3)}))


def test_a_value_of_the_wrong_form_is_an_error():
    with pytest.raises(EvalError, match="is not an amount of money"):
        ev(var("reply", "amount", type_="money"), scope(reply={"amount": "lots"}))


# ------------------------------------------------------------------ operators

def test_logic_short_circuits():
    boom = op("/", const("number", "1"), const("number", "0"), type_="number")
    assert ev(op("or", const("bool", True), op(">", boom, const("number", "1")))) is True
    assert ev(op("and", const("bool", False), op(">", boom, const("number", "1")))) is False
    assert ev(op("not", const("bool", False))) is True
    assert ev(op("and", const("none", None), const("bool", True))) is False  # none counts as false


def test_a_condition_that_is_not_true_or_false_is_an_error():
    with pytest.raises(EvalError, match="must be true or false"):
        ev(op("not", const("text", "yes")))


@pytest.mark.parametrize("name, a, b, expected", [
    ("==", const("money", "1.50"), const("number", "1.5"), True),
    ("!=", const("text", "a"), const("text", "b"), True),
    ("<", const("money", "9.99"), const("number", "10"), True),
    (">=", const("date", "2026-10-01"), const("date", "2026-10-01"), True),
    ("==", const("none", None), var("unset"), True),
    ("==", const("text", "x"), const("none", None), False),
])
def test_comparisons(name, a, b, expected):
    assert ev(op(name, a, b)) is expected


def test_ordering_with_none_is_an_error():
    with pytest.raises(EvalError, match="one side is none"):
        ev(op("<", var("unset", type_="number"), const("number", "1")))


def test_in_and_not_in():
    tier = var("customer", "tier", type_="enum:Customer.tier")
    s = scope(customer={"tier": "gold"})
    assert ev(op("in", tier, const("enum:Customer.tier", "gold"), const("enum:Customer.tier", "platinum")), s)
    assert not ev(op("not in", tier, const("enum:Customer.tier", "gold")), s)


def test_a_record_compares_equal_to_its_id():
    s = scope(manager={"id": 4, "agent": "li_na"}, customer={"manager": 4})
    assert ev(op("==", var("customer", "manager", type_="any"), var("manager", type_="record:AccountManager")), s)


@pytest.mark.parametrize("name, a, b, type_, expected", [
    ("+", const("money", "58.20"), const("number", "1"), "money", Decimal("59.20")),
    ("-", const("number", "5"), const("number", "7"), "number", Decimal(-2)),
    ("*", const("money", "10"), const("number", "0.5"), "money", Decimal("5.0")),
    ("/", const("number", "7"), const("number", "2"), "number", Decimal("3.5")),
    ("+", const("duration", 1000), const("duration", 500), "duration", 1500),
    ("+", const("text", "http://x/bills/"), var("caller", type_="phone"), "text", "http://x/bills/13800138000"),
    ("+", const("text", "n="), const("number", "3"), "text", "n=3"),
])
def test_arithmetic(name, a, b, type_, expected):
    assert ev(op(name, a, b, type_=type_)) == expected


@pytest.mark.parametrize("expr, message", [
    (op("/", const("number", "1"), const("number", "0"), type_="number"), "division by zero"),
    (op("+", var("unset", type_="number"), const("number", "1"), type_="number"), "one side is none"),
    (op("+", const("text", "a"), var("unset"), type_="text"), "one side is none"),
    (op("-", const("date", "2026-01-01"), const("number", "1"), type_="number"), "cannot compute"),
])
def test_arithmetic_errors(expr, message):
    with pytest.raises(EvalError, match=message):
        ev(expr)


# ------------------------------------------------------------------ built-in functions

def test_open_asks_the_hours_at_now():
    assert ev(fn("open", const("text", "office"), type_="bool")) is True
    evening = Scope(now=NOW.replace(hour=21), hours={"office": OFFICE})
    assert ev(fn("open", const("text", "office"), type_="bool"), evening) is False
    with pytest.raises(EvalError, match="no hours named 'shop'"):
        ev(fn("open", const("text", "shop"), type_="bool"))
    with pytest.raises(EvalError, match="must carry a time zone"):
        ev(fn("open", const("text", "office"), type_="bool"), Scope(now=dt.datetime(2026, 11, 23, 10), hours={"office": OFFICE}))


def test_len_hour_weekday():
    assert ev(fn("len", const("text", "你好吗"), type_="number")) == 3
    assert ev(fn("len", var("unset"), type_="number")) == 0
    assert ev(fn("hour", var("now", type_="datetime"), type_="number")) == 10
    assert ev(fn("weekday", var("now", type_="datetime"), type_="number")) == 1  # Monday
    # read in the zone the moment carries
    utc_now = Scope(now=NOW.astimezone(dt.timezone.utc))
    assert ev(fn("hour", var("now", type_="datetime"), type_="number"), utc_now) == 2


def test_secrets_come_from_the_edge():
    assert ev(fn("secret", const("text", "TOKEN"))) == "s3cret"
    with pytest.raises(EvalError, match="secret 'OTHER' is not set"):
        ev(fn("secret", const("text", "OTHER")))
    with pytest.raises(EvalError, match="secret 'TOKEN' is not set"):
        ev(fn("secret", const("text", "TOKEN")), Scope())
    header = op("+", const("text", "Bearer "), fn("secret", const("text", "TOKEN")), type_="text")
    assert uses_secret(header) and not uses_secret(var("caller"))


# ------------------------------------------------------------------ prompts

def test_interpolation_speaks_values_by_type():
    parts = [ir.TextPart(text="您好 "), ir.TextPart(expr=var("customer", "name")),
             ir.TextPart(text="，余额 "), ir.TextPart(expr=var("bill", "amount", type_="money")),
             ir.TextPart(text=" 元，到期 "), ir.TextPart(expr=var("bill", "due", type_="date"))]
    s = scope(customer={"name": "张三"}, bill={"amount": Decimal("58.2"), "due": "2026-12-01"})
    assert interpolate(parts, s) == "您好 张三，余额 58.20 元，到期 2026-12-01"
    assert interpolate(parts[:3], scope(customer=None)) == "您好 ，余额 "


@pytest.mark.parametrize("value, type_, text", [
    (Decimal("100"), "money", "100"), (Decimal("3.456"), "money", "3.46"), (Decimal("2.50"), "number", "2.5"),
    (90_000, "duration", "1m30s"), (True, "bool", "yes"), (None, "text", ""),
    (dt.datetime(2026, 1, 2, 9, 5, tzinfo=SHANGHAI), "datetime", "2026-01-02 09:05"),
])
def test_spoken_forms(value, type_, text):
    assert spoken(value, type_) == text


# ------------------------------------------------------------------ lookups

def field(name, type_="text"):
    return var("@record", name, type_=type_)


def test_equalities_become_field_values():
    where = op("==", field("phone", "phone"), var("caller", type_="phone"))
    assert lookup_criteria(where, scope()) == ({"phone": "13800138000"}, None)
    flipped = op("==", var("caller", type_="phone"), field("phone", "phone"))
    assert lookup_criteria(flipped, scope()) == ({"phone": "13800138000"}, None)


def test_the_rest_keeps_record_fields_with_flow_values_filled_in():
    where = op("and",
               op("==", field("phone", "phone"), var("caller", type_="phone")),
               op(">", field("balance", "money"), op("*", var("limit", type_="money"), const("number", "2"), type_="money")))
    equals, rest = lookup_criteria(where, scope(limit=Decimal("50")))
    assert equals == {"phone": "13800138000"}
    assert rest == op(">", field("balance", "money"), const("money", "100"))
    assert record_matches(equals, rest, {"phone": "13800138000", "balance": "150.00"})
    assert not record_matches(equals, rest, {"phone": "13800138000", "balance": "99"})
    assert not record_matches(equals, rest, {"phone": "13900000000", "balance": "150"})
    assert not record_matches(equals, rest, {"phone": "13800138000", "balance": None})  # cannot compare: no match


def test_flow_only_parts_are_decided_before_asking_storage():
    always = op("and", op("==", var("caller", type_="phone"), const("text", "13800138000")),
                op("==", field("status"), const("text", "open")))
    assert lookup_criteria(always, scope()) == ({"status": "open"}, None)
    never = op("and", op("==", var("caller", type_="phone"), const("text", "110")),
               op("==", field("status"), const("text", "open")))
    assert lookup_criteria(never, scope()) == ({}, const("bool", False))
    either = op("or", op("==", var("caller", type_="phone"), const("text", "13800138000")), op("==", field("vip"), const("bool", True)))
    assert lookup_criteria(either, scope()) == ({}, None)  # true whatever the record: any record matches


def test_a_record_value_in_a_lookup_stands_for_its_id():
    where = op("==", field("manager", "record:AccountManager"), var("mgr", type_="record:AccountManager"))
    equals, rest = lookup_criteria(where, scope(mgr={"id": 4, "name": "王"}))
    assert equals == {"manager": 4} and rest is None
    assert record_matches(equals, rest, {"manager": 4})
    assert to_const({"id": "a1"}, "record:X") == const("text", "a1")


def test_record_matches_with_the_acting_user():
    guard = op("==", field("owner", "agent"), var("@user", type_="agent"))
    assert record_matches({}, guard, {"owner": "li_na"}, Scope(user="li_na"))
    assert not record_matches({}, guard, {"owner": "li_na"}, Scope(user="wang_fang"))


# ------------------------------------------------------------------ keys typed by the caller

@pytest.mark.parametrize("digit_type, keys, expected", [
    ("phone", "13800138000", "13800138000"),     # mobile
    ("phone", "1380013800", None),               # a mobile needs 11 digits
    ("phone", "138001380001", None),
    ("phone", "01088886666", "01088886666"),     # fixed line with area code
    ("phone", "88886666", "88886666"),           # fixed line without
    ("phone", "123456", None),
    ("phone", "8888*666", None),
    ("card", "4111111111111111", "4111111111111111"),
    ("card", "4111111111111112", None),
    ("card", "6011000990139424", "6011000990139424"),
    ("amount", "12*50", Decimal("12.50")),
    ("amount", "300", Decimal("300")),
    ("amount", "0*5", Decimal("0.5")),
    ("amount", "12*", None),
    ("amount", "*5", None),
    ("amount", "1*234", None),
    ("amount", "1*2*3", None),
    ("date", "20261001", dt.date(2026, 10, 1)),
    ("date", "20240229", dt.date(2024, 2, 29)),
    ("date", "20260229", None),
    ("date", "20261301", None),
    ("date", "2026101", None),
    ("digits", "0042", "0042"),
    ("digits", "11010519491231002*", "11010519491231002*"),
    ("digits", "", None),
    ("colour", "12", None),
    ("number", "0042", Decimal(42)),
])
def test_parse_digits(digit_type, keys, expected):
    assert parse_digits(digit_type, keys) == expected


def test_luhn():
    assert luhn("79927398713")
    assert not luhn("79927398710")
    assert not luhn("0")


# ------------------------------------------------------------------ saved and logged forms

def test_dump_and_load_give_back_the_same_values():
    value = {"amount": Decimal("58.20"), "due": dt.date(2026, 12, 1), "at": NOW, "tags": ["a", 1, None],
             "nested": {"ok": True, "when": dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)}}
    back = load(dump(value))
    assert back == value
    assert str(back["amount"]) == "58.20"
    assert back["at"].tzinfo == SHANGHAI


def test_plain_forms_for_logs():
    assert plain({"a": Decimal("1.50"), "d": dt.date(2026, 1, 2), "n": None}) == {"a": "1.50", "d": "2026-01-02", "n": None}


def test_id_card_numbers_are_checked_and_star_stands_for_x():
    from runtime.values import parse_digits

    assert parse_digits("id_card", "11010519491231002*") == "11010519491231002X"
    assert parse_digits("id_card", "110105199001011232") == "110105199001011232"
    assert parse_digits("id_card", "110105199001011234") is None   # wrong check digit
    assert parse_digits("id_card", "1101051990010112") is None     # too short
