"""Types of values, as the compiler tracks them.

A type is a short string (see compiler.ir): `text`, `number`, `money`, `bool`, `date`, `datetime`,
`phone`, `email`, `duration`, `agent`, `none`, `enum:OWNER`, `record:Entity`, `list:Entity`,
`object:OWNER`.  `TypeSpace` knows the members of enum types and the fields of records and objects.
"""
from __future__ import annotations

from dataclasses import dataclass, field

SIMPLE_TYPES = ("text", "number", "money", "bool", "date", "datetime", "phone", "email", "duration", "agent")
NUMERIC = {"number", "money"}
TEXTUAL = {"text", "phone", "email"}
ORDERED = NUMERIC | {"date", "datetime", "duration", "text"}


def describe(t: str) -> str:
    """A type as a person would say it in an error message."""
    kind, _, owner = t.partition(":")
    if kind == "enum":
        return f"a choice of {owner}"
    if kind == "record":
        return f"a {owner} record"
    if kind == "list":
        return f"a list of {owner}"
    if kind == "object":
        return "an HTTP reply"
    return {"none": "none"}.get(t, t)


@dataclass
class TypeSpace:
    enums: dict[str, list[str]] = field(default_factory=dict)
    records: dict[str, dict[str, str]] = field(default_factory=dict)   # entity -> field -> type
    objects: dict[str, dict[str, str]] = field(default_factory=dict)   # owner -> field -> type
    required: dict[str, list[str]] = field(default_factory=dict)       # entity -> fields a new record must have

    def fields_of(self, t: str) -> dict[str, str] | None:
        kind, _, owner = t.partition(":")
        if kind == "record":
            return self.records.get(owner)
        if kind == "object":
            return self.objects.get(owner)
        return None

    def enum_values(self, t: str) -> list[str] | None:
        return self.enums.get(t.partition(":")[2]) if t.startswith("enum:") else None


def comparable(a: str, b: str) -> bool:
    if "none" in (a, b) or a == b:
        return True
    if a in NUMERIC and b in NUMERIC:
        return True
    if a in TEXTUAL and b in TEXTUAL:
        return True
    # agents are named by text in data; an agent field compares with the acting `user`.
    return {a, b} <= {"agent", "text"}


def assignable(value: str, target: str) -> bool:
    """Can a value of type `value` be stored where `target` is expected?"""
    if value == target or value == "none":
        return True
    if value == "number" and target == "money":
        return True
    if value in TEXTUAL and target in TEXTUAL:
        return True
    if value == "text" and target == "agent":
        return True
    if value.startswith("record:") and target.startswith("record:"):
        return value == target
    return False
