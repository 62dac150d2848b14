"""The flowdesk compiler: source files in, one validated bundle out.

The stages, each in its own module, run in this order:

    sources      read files, parse them, follow imports        (compiler.sources)
    settings     flowdesk.yaml: environments and secrets        (compiler.settings)
    symbols      declarations, duplicates, visibility           (compiler.symbols)
    entities     record types first, then every declaration     (compiler.entities, workflows, acd)
    flows        statements to flat state machines              (compiler.flows)
    flow_checks  unreachable steps, loops without input         (compiler.flow_checks)
    bundle       canonical JSON with a content hash             (compiler.bundle)

`compile_project` runs them all and returns every diagnostic of the run together.
"""
from __future__ import annotations

import gc
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from compiler import ir
from compiler.acd import lower_agent, lower_hours, lower_queue
from compiler.bundle import seal
from compiler.entities import (declare_entities, lower_entity, lower_evaluation, lower_form, lower_list,
                               lower_role)
from compiler.expressions import Context
from compiler.flow_checks import check_flow
from compiler.flows import LoweredFlow, lower_flow
from compiler.settings import ProjectSettings, load_settings
from compiler.sources import SourceSet, load
from compiler.symbols import Reporter, SymbolTable, build_symbols, resolve
from compiler.types import TypeSpace
from compiler.workflows import declare_workflow_states, lower_workflow
from dsl import ast
from dsl.diagnostics import Diagnostic

__all__ = ["CompileResult", "compile_project"]


@dataclass
class CompileResult:
    bundle: ir.Bundle | None
    diagnostics: list[Diagnostic]
    sources: SourceSet
    # Where each flow step was written: flow -> step id -> (file, position).  Kept out of the
    # bundle so that reformatting a file does not change what it compiles to.
    source_map: dict[str, dict[str, tuple[str, ast.Pos]]] = field(default_factory=dict)

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.is_error]

    @property
    def ok(self) -> bool:
        return not self.errors


def compile_project(paths: list[str | Path], environment: str | None = None,
                    texts: dict[Path, str] | None = None) -> CompileResult:
    with _collector_paused():
        return _compile(paths, environment, texts)


@contextmanager
def _collector_paused():
    """A compile allocates a great many small objects and frees them together at the end; Python's
    cycle collector would otherwise scan them again and again while they are still in use.

    What the compile still holds at its end (syntax trees, the bundle) lives as long as its result.
    Left in the youngest generation, all of it would be scanned by the first collection after the
    compile, which took a fifth of a large compile's time; it goes to the oldest generation instead,
    which only the rare full collections scan."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            _to_oldest_generation()
            gc.enable()


def _to_oldest_generation() -> None:
    # gc.freeze() moves every tracked object to the permanent generation and gc.unfreeze() moves
    # them all to the oldest one, without scanning any.  When something else keeps objects frozen
    # on purpose (before forking workers), they are left alone.
    if gc.get_freeze_count() == 0:
        gc.freeze()
        gc.unfreeze()


def _compile(paths, environment, texts) -> CompileResult:
    sources = load([Path(p) for p in paths], texts)
    report = Reporter()
    report.diagnostics.extend(sources.diagnostics)
    settings, problems = load_settings(sources.root)
    report.diagnostics.extend(problems)
    environment = environment or settings.default_environment
    if settings.environments and environment not in settings.environments:
        report.error("flowdesk.yaml", ast.Pos(1, 1, 1, 1), "E121", f"there is no environment '{environment}'",
                     hint=f"the environments are: {', '.join(sorted(settings.environments))}")
    table = build_symbols(sources, report)
    bundle, source_map = _lower(sources, settings, environment, table, report)
    diagnostics = sorted(set(report.diagnostics), key=Diagnostic.sort_key)
    if any(d.is_error for d in diagnostics):
        bundle = None
    return CompileResult(bundle=bundle, diagnostics=diagnostics, sources=sources, source_map=source_map)


def _lower(sources: SourceSet, settings: ProjectSettings, environment: str, table: SymbolTable,
           report: Reporter) -> tuple[ir.Bundle, dict]:
    types = TypeSpace()
    env = settings.environments.get(environment, {})

    def context(file: str) -> Context:
        return Context(file=file, types=types, report=report, env=env, environment=environment,
                       secrets=settings.secrets,
                       hours_exists=lambda name, pos: resolve(table, report, "hours", name, file, pos) is not None)

    declare_entities(context, table)
    owners: dict[str, str] = {}
    for s in table.all("workflow"):
        declare_workflow_states(context(s.file), table, s.decl, owners)
    out: dict[str, dict] = {kind: {} for kind in ("hours", "queues", "agents", "entities", "forms", "lists",
                                                  "workflows", "roles", "evaluations", "flows")}
    for s in table.all("hours"):
        out["hours"][s.name] = lower_hours(context(s.file), s.decl, sources.files[s.file].real_path.parent)
    for s in table.all("queue"):
        out["queues"][s.name] = lower_queue(context(s.file), table, s.decl)
    for s in table.all("agent"):
        out["agents"][s.name] = lower_agent(context(s.file), table, s.decl)
    for s in table.all("entity"):
        out["entities"][s.name] = lower_entity(context(s.file), s.decl, owners.get(s.name))
    for kind, key, lower in (("form", "forms", lower_form), ("list", "lists", lower_list),
                             ("workflow", "workflows", lower_workflow), ("role", "roles", lower_role)):
        for s in table.all(kind):
            out[key][s.name] = lower(context(s.file), table, s.decl)
    for s in table.all("evaluation"):
        out["evaluations"][s.name] = lower_evaluation(context(s.file), s.decl)
    source_map = {}
    lowered_flows: list[LoweredFlow] = []
    for s in table.all("flow"):
        lowered = lower_flow(context(s.file), table, s.decl)
        check_flow(lowered, report)
        lowered_flows.append(lowered)
        out["flows"][s.name] = lowered.flow
        source_map[s.name] = {step_id: (lowered.file, pos) for step_id, pos in lowered.positions.items()}
    numbers = _numbers(lowered_flows, table, report)
    bundle = ir.Bundle(environment=environment, numbers=numbers, **out)
    return seal(bundle), source_map


def _numbers(flows: list[LoweredFlow], table: SymbolTable, report: Reporter) -> dict[str, str]:
    numbers: dict[str, str] = {}
    for lowered in flows:
        decl = table.get("flow", lowered.flow.name).decl
        for entry, number in zip(decl.entries, lowered.flow.entries):
            if number in numbers and numbers[number] != lowered.flow.name:
                report.error(lowered.file, entry.pos, "E202", f"number {number} already enters flow '{numbers[number]}'",
                             hint="a dialled number can start only one flow")
                continue
            numbers[number] = lowered.flow.name
    return dict(sorted(numbers.items()))
