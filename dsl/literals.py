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


_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
_ESCAPE = re.compile(r"\\(u[0-9a-fA-F]{4}|.)", re.DOTALL)


def unquote(text: str) -> str:
    """The value of a double-quoted string literal.  Escapes are JSON's (\\n, \\t, \\", \\uXXXX...);
    a backslash before any other character stands for that character."""
    def replace(match: re.Match) -> str:
        escape = match.group(1)
        if escape[0] == "u" and len(escape) == 5:
            return chr(int(escape[1:], 16))
        return _ESCAPES.get(escape, escape)

    value = _ESCAPE.sub(replace, text[1:-1])
    # \uD83D\uDE00 escapes a pair of UTF-16 surrogates: join them into the one character they encode.
    return value.encode("utf-16", "surrogatepass").decode("utf-16", "surrogatepass")


def quote(value: str) -> str:
    """A string literal for `value`; non-ASCII text such as Chinese stays readable."""
    return json.dumps(value, ensure_ascii=False)
