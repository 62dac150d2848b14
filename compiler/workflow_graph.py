"""A workflow as a picture: its states and the transitions between them, as Graphviz DOT text.

The first state a record takes has an arrow from a dot; final states are drawn with a double line
and paused states (the SLA clock stands still there) dashed.  Each transition is one arrow per
state it leaves from, labelled with its title and the roles that may take it.
"""
from __future__ import annotations

from compiler import ir
from compiler.graph import _quote


def state_label(state: ir.WorkflowState) -> str:
    return f"{state.title}\n{state.name}" if state.title else state.name


def transition_label(transition: ir.Transition) -> str:
    text = transition.title or transition.name
    if transition.roles:
        text += f"\n({', '.join(transition.roles)})"
    return text


def to_dot(workflow: ir.Workflow) -> str:
    lines = [f"digraph {_quote(workflow.name)} {{", "  rankdir=LR;", '  node [fontname="sans-serif", shape=box, style=rounded];',
             '  edge [fontname="sans-serif", fontsize=10];']
    for state in workflow.states:
        style = ', peripheries=2' if state.final else ', style="rounded,dashed"' if state.paused else ""
        lines.append(f"  {_quote(state.name)} [label={_quote(state_label(state))}{style}];")
        if state.initial:
            lines.append(f"  {_quote('start ' + state.name)} [shape=point, label=\"\"];")
            lines.append(f"  {_quote('start ' + state.name)} -> {_quote(state.name)};")
    for transition in workflow.transitions:
        for source in transition.sources:
            lines.append(f"  {_quote(source)} -> {_quote(transition.dest)} [label={_quote(transition_label(transition))}];")
    lines.append("}")
    return "\n".join(lines) + "\n"
