"""What a record's fields may hold: pydantic models made from the bundle's entities.

The entity's types are the single source of truth: each field becomes a pydantic field whose
validator turns what people type (form strings, CSV cells) or what flows pass (runtime values)
into the value stored, or says in plain words what is wrong.  Errors are {field: message}, each
message naming the field by its label so it reads on its own (beside the field, or in a CSV
import report).

Stored values: text/phone/email/enum/agent -> str (phone as digits with an optional leading +,
enum as the choice's name), money/number -> Decimal, bool, date, datetime -> aware UTC,
ref -> the target's id (int), `list of` -> list of ids.
"""
from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal, DecimalException, InvalidOperation
from typing import Any, Annotated, Callable, Mapping
from zoneinfo import ZoneInfo

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, ValidationInfo, create_model
from pydantic_core import PydanticCustomError

from compiler import ir
from runtime.crm.tables import EMAIL_LENGTH, PHONE_LENGTH

UTC = dt.timezone.utc
PHONE = re.compile(r"\+?\d{5,20}")
PHONE_SEPARATORS = re.compile(r"[\s\-().]")
# Without the email-validator package: one @, no spaces, a dot in the domain.
EMAIL = re.compile(r"[^@\s]+@[^@\s.]+(\.[^@\s.]+)+")
TRUE_WORDS = {"on", "true", "1", "yes", "y", "是", "真"}
FALSE_WORDS = {"off", "false", "0", "no", "n", "否", "假"}
# Digits the columns hold (tables.py: money Numeric(16, 2), number Numeric(20, 6)).
DIGITS = {"money": (14, 2), "number": (14, 6)}
SYSTEM_FIELDS = ("id", "state", "created_at", "updated_at", "version")

# exists(entity, id) -> bool: does the referenced record exist (given in the validation context)
Exists = Callable[[str, int], bool]


class Invalid(Exception):
    """Values people can correct: `errors` maps each field to a message that says what is wrong."""

    def __init__(self, errors: dict[str, str]):
        self.errors = dict(errors)
        super().__init__("; ".join(f"{field}: {message}" for field, message in self.errors.items()))


def label(field: ir.EntityField) -> str:
    return field.label or field.name


def project_zone(bundle: ir.Bundle) -> ZoneInfo:
    """Where naive times typed into forms are read: the time zone of the project's hours."""
    from runtime.replay import project_zone as zone_name
    return ZoneInfo(zone_name(bundle))


# ------------------------------------------------------------------ parsing one value

def _fail(message: str):
    raise PydanticCustomError("invalid", message)


def _text(field: ir.EntityField, value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, Decimal)):
        _fail(f"{label(field)} must be text")
    text = value if isinstance(value, str) else format(value, "f") if isinstance(value, Decimal) else str(value)
    if field.max_length and len(text) > field.max_length:
        _fail(f"{label(field)} is {len(text)} characters long; at most {field.max_length} are allowed")
    return text


def _phone(field: ir.EntityField, value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        _fail(f"{label(field)} must be a phone number")
    digits = PHONE_SEPARATORS.sub("", str(value))
    if not PHONE.fullmatch(digits):
        _fail(f"{label(field)} must be a phone number of 5 to 20 digits, optionally starting with +")
    if len(digits) > (field.max_length or PHONE_LENGTH):
        _fail(f"{label(field)} is longer than {field.max_length or PHONE_LENGTH} characters")
    return digits


def _email(field: ir.EntityField, value: Any) -> str:
    text = _text(field, value).strip()
    if not EMAIL.fullmatch(text):
        _fail(f"{label(field)} must be an e-mail address like name@example.com")
    if len(text) > (field.max_length or EMAIL_LENGTH):
        _fail(f"{label(field)} is longer than {field.max_length or EMAIL_LENGTH} characters")
    return text


def _decimal(field: ir.EntityField, value: Any) -> Decimal:
    what = "an amount of money" if field.type == "money" else "a number"
    if isinstance(value, bool) or not isinstance(value, (str, int, float, Decimal)):
        _fail(f"{label(field)} must be {what}")
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value).strip().replace(",", ""))
    except (InvalidOperation, DecimalException):
        _fail(f"{label(field)} must be {what}, like 58.20")
    if not number.is_finite():
        _fail(f"{label(field)} must be {what}, like 58.20")
    whole, places = DIGITS[field.type]
    exponent = number.as_tuple().exponent
    if -exponent > places and number != number.quantize(Decimal(1).scaleb(-places)):
        _fail(f"{label(field)} has more than {places} decimal places")
    if abs(number) >= Decimal(10) ** whole:
        _fail(f"{label(field)} is too large")
    low, high = (Decimal(field.minimum) if field.minimum is not None else None,
                 Decimal(field.maximum) if field.maximum is not None else None)
    if (low is not None and number < low) or (high is not None and number > high):
        _fail(f"{label(field)} must be between {field.minimum} and {field.maximum}" if low is not None and high is not None
              else f"{label(field)} must be at least {field.minimum}" if low is not None
              else f"{label(field)} must be at most {field.maximum}")
    return number


def _enum(field: ir.EntityField, value: Any) -> str:
    if isinstance(value, str):
        wanted = value.strip()
        for choice in field.choices:
            if wanted.lower() == choice.name.lower() or (choice.label and wanted == choice.label):
                return choice.name
    shown = ", ".join(f"{c.label} ({c.name})" if c.label else c.name for c in field.choices)
    _fail(f"{label(field)} must be one of {shown}")


def _date(field: ir.EntityField, value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value).strip())
    except ValueError:
        _fail(f"{label(field)} must be a date like 2026-11-23")


def _datetime(field: ir.EntityField, value: Any, zone: dt.tzinfo) -> dt.datetime:
    if isinstance(value, dt.datetime):
        moment = value
    else:
        try:
            moment = dt.datetime.fromisoformat(str(value).strip())
        except ValueError:
            _fail(f"{label(field)} must be a date and time like 2026-11-23 09:30")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.astimezone(UTC)


def _bool(field: ir.EntityField, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower() if isinstance(value, (str, int)) else None
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    _fail(f"{label(field)} must be yes or no")


def _id(field: ir.EntityField, value: Any, info: ValidationInfo) -> int:
    if isinstance(value, Mapping):  # a record from a flow stands for its id
        value = value.get("id")
    try:
        record_id = int(str(value).strip()) if not isinstance(value, bool) else None
    except ValueError:
        record_id = None
    if record_id is None:
        _fail(f"{label(field)} must be the id of {_a(field.target)}")
    exists: Exists | None = (info.context or {}).get("exists")
    if exists is not None and not exists(field.target, record_id):
        _fail(f"{label(field)}: there is no {field.target} {record_id}")
    return record_id


def _ids(field: ir.EntityField, value: Any, info: ValidationInfo) -> list[int]:
    items = [part for part in value.split(",") if part.strip()] if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)):
        _fail(f"{label(field)} must be a list of ids of {field.target} records")
    return list(dict.fromkeys(_id(field, item, info) for item in items))


def _a(name: str) -> str:
    return f"{'an' if name[:1].lower() in 'aeiou' else 'a'} {name}"


def _agent(bundle: ir.Bundle, field: ir.EntityField, value: Any) -> str:
    if isinstance(value, str):
        wanted = value.strip()
        for agent in bundle.agents.values():
            if wanted == agent.name or (agent.title and wanted == agent.title):
                return agent.name
    _fail(f"{label(field)} must be one of the agents: {', '.join(bundle.agents) or 'none are defined'}")


def parser(bundle: ir.Bundle, field: ir.EntityField) -> Callable[[Any, ValidationInfo], Any]:
    """The function that turns one value of `field` into what is stored, or raises its error."""
    zone = project_zone(bundle)
    kinds: dict[str, Callable[[Any, ValidationInfo], Any]] = {
        "text": lambda v, i: _text(field, v), "phone": lambda v, i: _phone(field, v),
        "email": lambda v, i: _email(field, v), "money": lambda v, i: _decimal(field, v),
        "number": lambda v, i: _decimal(field, v), "enum": lambda v, i: _enum(field, v),
        "date": lambda v, i: _date(field, v), "datetime": lambda v, i: _datetime(field, v, zone),
        "bool": lambda v, i: _bool(field, v), "ref": lambda v, i: _id(field, v, i),
        "list": lambda v, i: _ids(field, v, i), "agent": lambda v, i: _agent(bundle, field, v),
    }
    parse = kinds[field.type]

    def check(value: Any, info: ValidationInfo) -> Any:
        if value is None or value == [] and field.type == "list":
            if field.required:
                _fail(f"{label(field)} is required")
            return [] if field.type == "list" else None
        return parse(value, info)
    return check


# ------------------------------------------------------------------ models

def record_model(bundle: ir.Bundle, entity: ir.Entity, *, creating: bool) -> type[BaseModel]:
    """The pydantic model of `entity`'s writable fields.  On create every field is checked (so a
    missing required field is an error); on update only the fields given."""
    fields = {
        f.name: (Annotated[Any, BeforeValidator(parser(bundle, f))], Field(default=None, validate_default=creating))
        for f in entity.fields
    }
    return create_model(f"{entity.name}{'New' if creating else 'Change'}",
                        __config__=ConfigDict(extra="forbid"), **fields)


class Validator:
    """Checks records of a bundle's entities; the models are made once per entity."""

    def __init__(self, bundle: ir.Bundle):
        self.bundle = bundle
        self._models: dict[tuple[str, bool], type[BaseModel]] = {}

    def model(self, entity: str, *, creating: bool) -> type[BaseModel]:
        key = (entity, creating)
        if key not in self._models:
            self._models[key] = record_model(self.bundle, self.bundle.entities[entity], creating=creating)
        return self._models[key]

    def validate(self, entity: str, data: Mapping[str, Any], *, creating: bool, exists: Exists | None = None) -> dict:
        """The stored values of `data` (only the fields given, on update); raises Invalid."""
        system = [name for name in data if name in SYSTEM_FIELDS]
        if system:
            raise Invalid({name: _system_message(name) for name in system})
        model = self.model(entity, creating=creating)
        try:
            record = model.model_validate(dict(data), context={"exists": exists})
        except ValidationError as error:
            raise Invalid(_messages(entity, error)) from None
        given = set(model.model_fields) if creating else record.model_fields_set
        return {name: getattr(record, name) for name in model.model_fields if name in given}


def _system_message(name: str) -> str:
    if name == "state":
        return "the state changes only through the workflow's transitions"
    return f"{name} is kept by the system and cannot be set"


def _messages(entity: str, error: ValidationError) -> dict[str, str]:
    errors: dict[str, str] = {}
    for item in error.errors():
        name = str(item["loc"][0]) if item["loc"] else "record"
        if item["type"] == "extra_forbidden":
            errors.setdefault(name, f"{entity} has no field '{name}'")
        else:
            errors.setdefault(name, item["msg"])
    return errors


# ------------------------------------------------------------------ form input

def from_form(entity: ir.Entity, form: Mapping[str, Any]) -> dict[str, Any]:
    """The entity's fields from an HTML form or a CSV row: every value is text, an empty one means
    none; a `list of` field may come as several values.  Keys that are not fields are left out."""
    data: dict[str, Any] = {}
    for field in entity.fields:
        if field.name not in form:
            continue
        value = form[field.name]
        if isinstance(value, (list, tuple)):
            value = [v.strip() for v in value if v and v.strip()]
            data[field.name] = value if field.type == "list" else (value[-1] if value else None)
        else:
            value = value.strip() if isinstance(value, str) else value
            data[field.name] = None if value == "" else value
    return data
