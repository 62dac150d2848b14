"""A flow as a picture: Graphviz DOT text, and SVG when Graphviz's `dot` is installed."""
from __future__ import annotations

import shutil
import subprocess
from typing import Iterable

from compiler import ir
from compiler.flow_checks import successors

SHAPES = {"menu": "diamond", "collect": "parallelogram", "branch": "diamond", "switch": "diamond",
          "hangup": "doublecircle", "enqueue": "house", "transfer_number": "cds", "transfer_agent": "cds",
          "voicemail": "folder", "return": "circle", "http": "component", "lookup": "cylinder",
          "create": "cylinder", "update": "cylinder"}


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _prompt(parts: list[ir.TextPart]) -> str:
    text = "".join(p.text if p.text is not None else "{…}" for p in parts)
    return text if len(text) <= 24 else text[:23] + "…"


def step_label(step) -> str:
    """What a box in the picture says: the step's id and what it does."""
    detail = {
        "say": lambda s: _prompt(s.text), "play": lambda s: s.sound, "menu": lambda s: _prompt(s.prompt),
        "collect": lambda s: f"{s.var}: {s.digit_type}", "enqueue": lambda s: f"queue {s.queue}",
        "lookup": lambda s: f"{s.var} = {s.entity}", "create": lambda s: s.entity, "update": lambda s: s.var,
        "http": lambda s: f"{s.method} → {s.var}", "voicemail": lambda s: s.box, "subflow": lambda s: s.flow,
        "survey": lambda s: s.flow, "set": lambda s: ".".join(s.path),
    }.get(step.kind)
    text = f"{step.id}\n{step.kind}"
    if detail:
        text += f": {detail(step)}"
    return text


def edges(step) -> list[tuple[str, str]]:
    """(target, label) for every way out of a step."""
    out = []
    if isinstance(step, ir.MenuStep):
        out += [(o.goto, o.key + (f" {o.title}" if o.title else "")) for o in step.options]
        out += [(t, label) for t, label in ((step.on_timeout, "timeout"), (step.on_invalid, "invalid"),
                                             (step.on_failure, "failure")) if t]
    elif isinstance(step, ir.CollectStep):
        out += [(t, label) for t, label in ((step.next, "ok"), (step.on_timeout, "timeout"),
                                             (step.on_invalid, "invalid"), (step.on_failure, "failure")) if t]
    elif isinstance(step, ir.BranchStep):
        out += [(c.goto, f"if {i + 1}") for i, c in enumerate(step.conditions)]
        if step.next:
            out.append((step.next, "else"))
    elif isinstance(step, ir.SwitchStep):
        out += [(c.goto, ", ".join(str(v.value) if isinstance(v, ir.Const) else "…" for v in c.values))
                for c in step.cases]
        if step.next:
            out.append((step.next, "else"))
    else:
        labels = {"not_found": "not found", "on_error": "error", "on_no_answer": "no answer"}
        for target in successors(step):
            name = next((n for n in labels if getattr(step, n, None) == target), None)
            out.append((target, labels.get(name, "")))
    return out


LIT = 'style=filled, fillcolor="#fde68a", class="lit"'
CURRENT = 'style="filled,bold", fillcolor="#f59e0b", color="#b45309", penwidth=3, class="lit current"'


def to_dot(flow: ir.Flow, lit: Iterable[str] = (), current: str | None = None) -> str:
    """The flow's DOT.  Steps whose ids are in `lit` (the steps a call went through) are filled, and
    the step `current` (where the call is now) is marked more strongly; in SVG their groups carry the
    classes `lit` and `current`."""
    lit = set(lit)
    lines = [f"digraph {_quote(flow.name)} {{", "  rankdir=TB;", '  node [fontname="sans-serif", shape=box];',
             '  edge [fontname="sans-serif", fontsize=10];', f"  start [shape=point];", f"  start -> {_quote(flow.start)};"]
    for step in flow.steps:
        marks = CURRENT if step.id == current else LIT if step.id in lit else ""
        lines.append(f"  {_quote(step.id)} [label={_quote(step_label(step))}, shape={SHAPES.get(step.kind, 'box')}"
                     f"{', ' + marks if marks else ''}];")
    for step in flow.steps:
        for target, label in edges(step):
            attrs = f" [label={_quote(label)}]" if label else ""
            lines.append(f"  {_quote(step.id)} -> {_quote(target)}{attrs};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_svg(dot: str) -> str | None:
    """SVG from Graphviz, or None when `dot` is not installed."""
    exe = shutil.which("dot")
    if exe is None:
        return None
    result = subprocess.run([exe, "-Tsvg"], input=dot.encode("utf-8"), capture_output=True, check=True)
    return result.stdout.decode("utf-8")
