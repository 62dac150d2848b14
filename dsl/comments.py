"""Attach `#` comments to the syntax-tree nodes they describe, so formatting keeps them.

The formatter prints some nodes on lines of their own (declarations, statements, menu items,
entity fields ...); these are the *entries* of the braced *regions* that hold them.  Every
comment goes to one of three places, chosen so that printing the tree gives the comments back
in the order they were written:

- after code, right behind an entry that ends there: that entry's `trailing_comment`;
- otherwise, before an entry: one of its `comments` (leading lines);
- after the last entry of a region: the region's `end_comments`, printed before its `}`.

A comment inside something printed on one line (an expression spread over lines, the head of
an `if`) moves above that line.
"""
from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass

from dsl import ast

Position = tuple[int, int]
END_OF_FILE: Position = (1 << 62, 0)


@dataclass
class Entry:
    node: ast.Node  # holds the comments written before and after it
    start: Position
    end: Position


@dataclass
class Region:
    owner: ast.Node  # holds the comments written before the closing brace
    entries: list[Entry]
    start: Position
    end: Position


def _start(node: ast.Node) -> Position:
    return (node.pos.line, node.pos.column)


def _end(node: ast.Node) -> Position:
    return (node.pos.end_line, node.pos.end_column)


def _entry(node: ast.Node) -> Entry:
    return Entry(node, _start(node), _end(node))


def _body(owner: ast.Node, items) -> Region:
    """A region spanning the whole of `owner`: comments in its head count as inside it."""
    entries = sorted((_entry(i) for i in items), key=lambda e: e.start)
    return Region(owner, entries, _start(owner), _end(owner))


def _block(target) -> list[Region]:
    return [_body(target, target.statements)] if isinstance(target, ast.Block) else []


def _with_otherwise(node, items, otherwise) -> Region:
    """Switch cases and http settings, then the `else` line, which the formatter prints on its own."""
    region = _body(node, items)
    if otherwise is not None:
        region.entries.append(_entry(otherwise))
    return region


def regions(node: ast.Node) -> list[Region]:
    """The braced bodies of `node` whose entries the formatter prints one per line, in order."""
    match node:
        case ast.Module():
            entries = sorted((_entry(n) for n in [*node.imports, *node.declarations]), key=lambda e: e.start)
            return [Region(node, entries, (0, 0), END_OF_FILE)]
        case ast.Flow():
            return [_body(node, [*node.entries, *node.variables, *node.body])]
        case ast.Hours() | ast.Queue() | ast.Agent() | ast.ListView() | ast.Workflow():
            return [_body(node, node.items)]
        case ast.Entity():
            return [_body(node, node.fields)]
        case ast.Form():
            return [_body(node, node.sections)]
        case ast.Role():
            return [_body(node, node.permissions)]
        case ast.Evaluation():
            region = _body(node, node.parts)
            if node.call_types:
                first, last = node.call_types[0], node.call_types[-1]
                region.entries.insert(0, Entry(first, _start(first), _end(last)))
            return [region]
        case ast.FormSection():
            return [_body(node, node.fields)]
        case ast.EvalPart():
            return [_body(node, node.items)]
        case ast.WorkflowItem(kind="transition"):
            return [_body(node, node.actions)]
        case ast.WorkflowItem(kind="sla"):
            return [_body(node, node.rules)]
        case ast.Menu() | ast.Collect():
            return [_body(node, node.items)]
        case ast.MenuOption() | ast.EventHandler() | ast.Case():
            return _block(node.target)
        case ast.If():
            return [r for b in node.branches for r in _block(b.target)] + _block(node.otherwise)
        case ast.Switch():
            return [_with_otherwise(node, node.cases, node.otherwise)]
        case ast.Lookup() | ast.TransferAgent():
            return _block(node.otherwise)
        case ast.Create() | ast.Update():
            return [_body(node, node.fields)]
        case ast.Http():
            return [_with_otherwise(node, node.items, node.otherwise)]
        case ast.Setting(key="returns"):
            return [_body(node, node.value)]
        case ast.Block():
            return _block(node)
    return []


class _Layout:
    """Every region of a module, worked out once: a big file has many comments to place."""

    def __init__(self, module: ast.Module) -> None:
        self.top = regions(module)[0]
        self.inner: dict[int, list[Region]] = {}
        self.ends: dict[int, list[Position]] = {}
        # Entries by the line they end on, each with its depth, for trailing comments.
        self.ending_on: dict[int, list[tuple[Entry, int]]] = {}
        stack = [(self.top, 0)]  # walked without recursion so that deep nesting cannot overflow
        while stack:
            region, depth = stack.pop()
            self.ends[id(region)] = [e.end for e in region.entries]
            for entry in region.entries:
                self.ending_on.setdefault(entry.end[0], []).append((entry, depth))
                inner = self.inner[id(entry.node)] = regions(entry.node)
                stack.extend((r, depth + 1) for r in inner)

    def slot_for(self, at: Position) -> list[str]:
        """Where a comment at `at` goes when it is not behind an entry's last code."""
        region = self.top
        while True:
            index = bisect_left(self.ends[id(region)], at)
            if index == len(region.entries):
                return region.owner.end_comments
            entry = region.entries[index]
            if at < entry.start:
                return entry.node.comments
            inner = self.inner[id(entry.node)]
            inside = next((r for r in inner if r.start <= at <= r.end), None)
            if inside is not None:
                region = inside
                continue
            later = [r for r in inner if r.start > at]
            if later:
                return _first_slot(later[0])
            earlier = [r for r in inner if r.end < at]
            if earlier:
                return earlier[-1].owner.end_comments
            return entry.node.comments


def _first_slot(region: Region) -> list[str]:
    return region.entries[0].node.comments if region.entries else region.owner.end_comments


def attach_comments(module: ast.Module, comments: list[tuple[int, int, str]], text: str) -> None:
    if not comments:
        return
    # Lark counts lines by "\n" alone; str.splitlines would also split at \x0c, \u2028 and others.
    lines = text.split("\n")
    layout = _Layout(module)
    for line, column, comment in comments:
        comment = comment.rstrip()
        code = lines[line - 1][: column - 1] if line - 1 < len(lines) else ""
        owner = _trailing_owner(layout.ending_on.get(line, []), code) if code.strip() else None
        if owner is not None:
            owner.trailing_comment = comment
        else:
            layout.slot_for((line, column)).append(comment)


def _trailing_owner(candidates: list[tuple[Entry, int]], code: str) -> ast.Node | None:
    """The deepest entry whose last code is the last code before the comment (commas aside)."""
    owners = [(depth, entry.end, entry.node) for entry, depth in candidates
              if not code[entry.end[1] - 1:].strip(" \t\r\x0c,")]
    return max(owners, key=lambda owner: owner[:2])[2] if owners else None
