"""Stage 2: the declarations of the project and who can see which.

Each kind of declaration (flow, queue, entity...) has its own namespace across the project.  A
file sees its own declarations and those of the files it imports; using a name declared in a
file that is not imported is an error whose hint names the import to add.
"""
from __future__ import annotations

import posixpath
from dataclasses import dataclass, field

from dsl import ast
from dsl.diagnostics import Diagnostic, did_you_mean

from compiler.sources import SourceSet

KINDS = {
    ast.Hours: "hours", ast.Queue: "queue", ast.Agent: "agent", ast.Flow: "flow", ast.Entity: "entity",
    ast.Form: "form", ast.ListView: "list", ast.Workflow: "workflow", ast.Role: "role",
    ast.Evaluation: "evaluation",
}


@dataclass
class Symbol:
    kind: str
    name: str
    decl: ast.Decl
    file: str


@dataclass
class SymbolTable:
    by_kind: dict[str, dict[str, Symbol]] = field(default_factory=dict)
    visible: dict[str, set[str]] = field(default_factory=dict)  # file -> files it can see

    def all(self, kind: str) -> list[Symbol]:
        return sorted(self.by_kind.get(kind, {}).values(), key=lambda s: s.name)

    def get(self, kind: str, name: str) -> Symbol | None:
        return self.by_kind.get(kind, {}).get(name)


class Reporter:
    """Collects diagnostics; every stage after parsing reports through one of these."""

    def __init__(self):
        self.diagnostics: list[Diagnostic] = []

    def error(self, file: str, pos: ast.Pos, code: str, message: str, hint: str | None = None) -> None:
        self.diagnostics.append(Diagnostic(file, pos, code, message, "error", hint))

    def warning(self, file: str, pos: ast.Pos, code: str, message: str, hint: str | None = None) -> None:
        self.diagnostics.append(Diagnostic(file, pos, code, message, "warning", hint))


def build_symbols(sources: SourceSet, report: Reporter) -> SymbolTable:
    table = SymbolTable()
    for path in sorted(sources.files):
        source = sources.files[path]
        table.visible[path] = {path, *source.imports}
        if source.module is None:
            continue
        for decl in source.module.declarations:
            kind = KINDS[type(decl)]
            names = table.by_kind.setdefault(kind, {})
            if decl.name in names:
                first = names[decl.name]
                report.error(path, decl.pos, "E202", f"{kind} '{decl.name}' is declared twice",
                             hint=f"the first is at {first.file}:{first.decl.pos.line}; rename one of them")
                continue
            names[decl.name] = Symbol(kind, decl.name, decl, path)
    return table


def resolve(table: SymbolTable, report: Reporter, kind: str, name: str, file: str, pos: ast.Pos,
            what: str | None = None) -> Symbol | None:
    """The declaration `name` of `kind` as seen from `file`, or None after reporting why not."""
    symbol = table.get(kind, name)
    what = what or kind
    if symbol is None:
        hint = did_you_mean(name, table.by_kind.get(kind, {}).keys())
        if hint is None and not table.by_kind.get(kind):
            hint = f"no {kind} is declared in the files being compiled"
        report.error(file, pos, "E201", f"unknown {what} '{name}'", hint=hint)
        return None
    if symbol.file not in table.visible.get(file, {file}):
        rel = posixpath.relpath(symbol.file, posixpath.dirname(file) or ".")
        report.error(file, pos, "E203", f"{what} '{name}' is declared in {symbol.file}, which this file does not import",
                     hint=f'add `import "{rel}"` at the top of this file')
        return symbol
    return symbol
