"""Literal values as they are written in source: strings, durations."""
from __future__ import annotations

import json
import re

_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000}
_DURATION_PART = re.compile(r"([0-9]+)(ms|h|m|s)")


def parse_duration(text) -> int:
    """`90s`, `1m30s`, `4h` -> milliseconds."""
    return sum(int(n) * _UNIT_MS[unit] for n, unit in _DURATION_PART.findall(str(text)))


def format_duration(ms: int) -> str:
    """The canonical spelling of a duration: the largest units first, `0s` for nothing."""
    if ms % 1000:
        return f"{ms}ms"
    parts, seconds = [], ms // 1000
    for unit, size in (("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts) or "0s"


def unquote(text: str) -> str:
    """The value of a double-quoted string literal (JSON escapes)."""
    try:
        return json.loads(text)
    except ValueError:
        # An escape JSON does not know, such as \q: keep the character after the backslash.
        return re.sub(r"\\(.)", r"\1", text[1:-1])


def quote(value: str) -> str:
    """A string literal for `value`; non-ASCII text such as Chinese stays readable."""
    return json.dumps(value, ensure_ascii=False)
