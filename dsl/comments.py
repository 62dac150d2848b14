"""Attach `#` comments to the syntax-tree nodes they describe, so formatting keeps them.

A comment on a line of its own belongs to the next node that starts below it (a leading comment);
a comment after code on the same line belongs to the innermost node that ends on that line (a
trailing comment); comments after the last node of a block belong to the block's end.
"""
from __future__ import annotations

import dataclasses

from dsl import ast


def _children(node):
    for f in dataclasses.fields(node):
        value = getattr(node, f.name)
        if isinstance(value, ast.Node):
            yield value
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, ast.Node):
                    yield item
                elif isinstance(item, tuple):
                    yield from (x for x in item if isinstance(x, ast.Node))


# Nodes the formatter prints on lines of their own: comments can be kept beside these.
LINE_NODES = (ast.Import, ast.Decl, ast.Stmt, ast.MenuOption, ast.EventHandler, ast.Setting, ast.HoursItem,
              ast.QueueItem, ast.AgentItem, ast.FlowEntry, ast.FlowVar, ast.FieldDecl, ast.FormSection,
              ast.ListItem, ast.WorkflowItem, ast.Permission, ast.EvalPart, ast.EvalItem, ast.FieldAssign,
              ast.WorkflowAction, ast.SlaRule, ast.Case, ast.HttpField)

# Nodes with a closing brace that can hold comments written before it.
CONTAINERS = (ast.Module, ast.Decl, ast.Block)


def _walk(node, parent_container, out):
    if isinstance(node, LINE_NODES):
        out.append((node, parent_container))
    container = node if isinstance(node, CONTAINERS) else parent_container
    for child in _children(node):
        _walk(child, container, out)


def attach_comments(module: ast.Module, comments: list[tuple[int, int, str]], text: str) -> None:
    if not comments:
        return
    nodes: list[tuple[ast.Node, ast.Node]] = []
    _walk(module, module, nodes)
    nodes = [n for n in nodes if n[0].pos.line > 0]
    lines = text.splitlines()
    for line, column, comment in comments:
        before = lines[line - 1][: column - 1] if line - 1 < len(lines) else ""
        if before.strip():
            # After code on the same line: the innermost line node ending there.
            owners = [n for n, _ in nodes if n.pos.end_line == line]
            if owners:
                owner = min(owners, key=lambda n: (n.pos.end_column - n.pos.column, -n.pos.column))
                owner.trailing_comment = comment
                continue
            owners = [n for n, _ in nodes if n.pos.line == line]
            if owners:
                owners[0].trailing_comment = comment
                continue
        following = [(n, c) for n, c in nodes if n.pos.line > line]
        if following:
            node, container = min(following, key=lambda nc: (nc[0].pos.line, nc[0].pos.column))
            enclosing = _innermost_container(module, line)
            if enclosing is not None and not _inside(node, enclosing):
                enclosing.end_comments.append(comment)
            else:
                node.comments.append(comment)
        else:
            enclosing = _innermost_container(module, line) or module
            enclosing.end_comments.append(comment)


def _inside(node: ast.Node, container: ast.Node) -> bool:
    if isinstance(container, ast.Module):
        return True
    return (container.pos.line, container.pos.column) <= (node.pos.line, node.pos.column) and \
        (node.pos.end_line, node.pos.end_column) <= (container.pos.end_line, container.pos.end_column)


def _innermost_container(module: ast.Module, line: int):
    """The innermost declaration or block whose braces enclose `line`."""
    best = None
    stack = [module]
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Decl, ast.Block)) and node.pos.line < line < node.pos.end_line:
            if best is None or node.pos.line >= best.pos.line:
                best = node
        stack.extend(_children(node))
    return best
