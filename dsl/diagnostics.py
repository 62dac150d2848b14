"""Diagnostics: what is wrong, where, and what to do about it.

Every stage (parser, name resolution, checks) reports problems as `Diagnostic` values instead of
raising, so one run shows all of them.  `render` prints the form people know from compilers:

    flows/hotline.flow:12:9: error[E201]: unknown step 'biling'
       |
    12 |     1 -> biling
       |          ^^^^^^
       = hint: did you mean 'billing'?
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Iterable

from dsl.ast import Pos


@dataclass(frozen=True)
class Diagnostic:
    file: str
    pos: Pos
    code: str
    message: str
    severity: str = "error"  # error | warning
    hint: str | None = None

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def headline(self) -> str:
        return f"{self.file}:{self.pos.line}:{self.pos.column}: {self.severity}[{self.code}]: {self.message}"

    def sort_key(self) -> tuple:
        return (self.file, self.pos.line, self.pos.column, self.code, self.message)


def did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    """A hint naming the closest known name, if one is close enough to be a likely typo."""
    close = difflib.get_close_matches(name, sorted(set(candidates)), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else None


def render(diagnostic: Diagnostic, source: str | None) -> str:
    """The headline, the source line with a caret under the spot, and the hint."""
    lines = [diagnostic.headline()]
    pos = diagnostic.pos
    text_lines = source.split("\n") if source is not None else []  # lines as the parser counts them
    if 1 <= pos.line <= len(text_lines):
        text = text_lines[pos.line - 1].rstrip("\r").expandtabs(4)
        gutter = str(pos.line)
        pad = " " * len(gutter)
        start = max(pos.column, 1)
        if pos.end_line == pos.line and pos.end_column > start:
            width = pos.end_column - start
        else:
            width = max(len(text.rstrip()) - start + 1, 1)
        lines.append(f"{pad} |")
        lines.append(f"{gutter} | {text}")
        lines.append(f"{pad} | {_caret_indent(text, start)}{'^' * max(_display_width(text[start - 1:start - 1 + width]), 1)}")
    if diagnostic.hint:
        lines.append(f"{' ' * len(str(pos.line))} = hint: {diagnostic.hint}")
    return "\n".join(lines)


def _display_width(text: str) -> int:
    """Columns a terminal gives the text: CJK characters take two."""
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _caret_indent(text: str, column: int) -> str:
    return " " * _display_width(text[: column - 1])


def summary(diagnostics: list[Diagnostic]) -> str:
    errors = sum(1 for d in diagnostics if d.is_error)
    warnings = len(diagnostics) - errors
    parts = []
    if errors:
        parts.append(f"{errors} error{'s' if errors != 1 else ''}")
    if warnings:
        parts.append(f"{warnings} warning{'s' if warnings != 1 else ''}")
    return ", ".join(parts) if parts else "no problems"
