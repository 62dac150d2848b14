"""Stage 5: checks on a lowered flow's graph of steps.

- W302: steps no path from the start reaches (reported once, at the first of each such run).
- E303: loops the call can go round forever without waiting for the caller to press a key.
"""
from __future__ import annotations

from compiler import ir
from compiler.flows import LoweredFlow, link_fields
from compiler.symbols import Reporter

WAITS_FOR_CALLER = {"menu", "collect"}


def successors(step) -> list[str]:
    """The ids of the steps a step can go to."""
    out = []
    for name in link_fields(type(step)):
        value = getattr(step, name)
        if value:
            out.append(value)
    if isinstance(step, ir.MenuStep):
        out.extend(o.goto for o in step.options)
    elif isinstance(step, ir.BranchStep):
        out.extend(c.goto for c in step.conditions)
    elif isinstance(step, ir.SwitchStep):
        out.extend(c.goto for c in step.cases)
    elif isinstance(step, ir.RepeatStep):
        out.append(step.menu)
    return out


def check_flow(lowered: LoweredFlow, report: Reporter) -> None:
    flow = lowered.flow
    graph = {s.id: [t for t in successors(s)] for s in flow.steps}
    reached = _reachable(flow.start, graph)
    # Steps that another unreachable step leads to: not the first of their unreachable run.
    follow_unreached = {target for source, targets in graph.items() if source not in reached
                        for target in targets if target != source}
    for step in flow.steps:
        if step.id in reached or step.id not in lowered.positions:
            continue
        if step.id in follow_unreached:
            continue
        report.warning(lowered.file, lowered.positions[step.id], "W302", "no path reaches this step",
                       hint="jump to it with `-> label` or `goto`, or remove it")
    kinds = {s.id: s.kind for s in flow.steps}
    order = {s.id: i for i, s in enumerate(flow.steps)}
    for component in _cycles(graph):
        if not any(kinds.get(step_id) in WAITS_FOR_CALLER for step_id in component):
            first = min(component, key=lambda s: order.get(s, 0))
            pos = lowered.positions.get(first)
            if pos is not None:
                report.error(lowered.file, pos, "E303", "this loop never waits for the caller, so the call would go round it forever",
                             hint="put a menu or collect inside the loop, or end it")


def _reachable(start: str, graph: dict[str, list[str]]) -> set[str]:
    seen, stack = set(), [start]
    while stack:
        node = stack.pop()
        if node in seen or node not in graph:
            continue
        seen.add(node)
        stack.extend(graph[node])
    return seen


def _cycles(graph: dict[str, list[str]]) -> list[list[str]]:
    """Strongly connected components that contain a cycle (Tarjan's algorithm, iterative)."""
    index, low, on_stack, stack, result = {}, {}, set(), [], []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(graph.get(root, [])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in graph:
                    continue
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(graph.get(child, []))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1 or node in graph.get(node, []):
                    result.append(component)
    return result
