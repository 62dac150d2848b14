"""Builds the syntax tree while the parser runs, instead of in a second pass.

Lark normally makes a parse tree first: a `Tree` for every rule it reduces, each passed through
wrappers that filter its children and work out its position, and `ToAst` then walked that tree
again to make the `dsl.ast` nodes.  On a large project these two passes took most of the parse
time.  Here every grammar rule gets one callback that the parser (`dsl.parse_loop`) calls when it
reduces the rule.  The callback receives the rule's raw children (tokens, and the values of the
rules inside it) and the bounds of the text they cover, and does what lark's tree builder would
have done, the same way:

- the rule's position runs from the start of its first child to the end of its last one,
  counting the punctuation that is dropped from the children (braces, keywords);
- anonymous tokens (keywords, punctuation) are dropped unless the rule keeps all tokens (`!rule`);
- the helper rules lark makes for repetitions (`x*`, named `__..._star_N`) are spliced into the
  rule that holds them;
- `None` stands in for an optional part that was left out (`[x]`, lark's `maybe_placeholders`);
- a `?rule` with a single child is that child: `(a + b)` is the node for `a + b`, although in the
  rule around it, it takes the room of the parentheses, as lark's positions do.

Then the `ToAst` method named after the rule (or its alias) makes the node from the position and
the children.

Bounds: `first` has the `line` and `column` where a rule's text starts, `last` the `end_line` and
`end_column` where it ends (each is a token or an `ast.Pos`); both are None for a rule that
matched no text.  A callback returns its value with its own bounds.
"""
from __future__ import annotations

from typing import Callable

from lark import Lark, Token

from dsl import ast

Pos = ast.Pos
NOWHERE = ast.NOWHERE

# A rule's callback: (raw children, first, last) -> (value, first, last).
Reduce = Callable[[list, object, object], tuple]

# How a kept child is passed to the rule's method.
_KEEP, _SPLICE = 0, 1


def rule_callbacks(parser: Lark, methods: object) -> dict[object, Reduce | None]:
    """For every rule of `parser`, the callback that reduces it by calling `methods`; None for a
    rule whose value and bounds are its one child's, unchanged (`?a: b`)."""
    return {rule: _callback(rule, methods) for rule in parser.rules}


def _kept(rule) -> tuple[list[tuple[int, int, int]], int]:
    """(index, how, Nones before it) for every child the rule's method receives, and the Nones after
    the last; as lark's `maybe_create_child_filter` works them out."""
    expansion = rule.expansion
    empty = rule.options.empty_indices
    if empty:
        # empty_indices marks with True each place where an optional part was left out.
        runs = "".join("1" if e else "0" for e in empty).split("0")
        nones_at = [len(run) for run in runs]
    else:
        nones_at = [0] * (len(expansion) + 1)
    kept, nones = [], 0
    for i, symbol in enumerate(expansion):
        nones += nones_at[i]
        if not symbol.is_term or rule.options.keep_all_tokens or not symbol.filter_out:
            kept.append((i, _SPLICE if not symbol.is_term and symbol.name.startswith("_") else _KEEP, nones))
            nones = 0
    return kept, nones + nones_at[len(expansion)]


def _picker(kept: list[tuple[int, int, int]], trailing: int, size: int) -> Callable[[list], list]:
    """The children a method receives, from the raw children of the rule."""
    if trailing == 0 and all(nones == 0 and how == _KEEP for _, how, nones in kept):
        indices = [i for i, _, _ in kept]
        if indices == list(range(size)):
            return _all  # the parser's list of children is the rule's own: no need to copy it
        if len(indices) == 1:
            index = indices[0]
            return lambda children: [children[index]]
        return lambda children: [children[i] for i in indices]

    def general(children):
        items = []
        for i, how, nones in kept:
            if nones:
                items += [None] * nones
            if how == _KEEP:
                items.append(children[i])
            elif items:
                items += children[i]
            else:
                items = children[i]  # a repetition's list, reused: each is spliced once
        if trailing:
            items += [None] * trailing
        return items
    return general


def _all(children: list) -> list:
    return children


def _callback(rule, methods) -> Reduce | None:
    kept, trailing = _kept(rule)
    pick = _picker(kept, trailing, len(rule.expansion))
    if rule.origin.name.startswith("_"):
        return _repetition(pick)
    inlined = rule.options.expand1 and not rule.alias  # a `?rule` stands for its one child
    if inlined and len(rule.expansion) == 1 and pick is _all:
        return None  # `?a: b`: b's value and bounds, unchanged
    name = rule.alias or rule.origin.name
    method = getattr(methods, name, None)
    always_one = len(kept) == 1 and kept[0][1:] == (_KEEP, 0) and not trailing
    if method is None and not (inlined and always_one):
        raise AttributeError(f"{type(methods).__name__} has no method for rule {name}")
    node = _node(method, pick)
    return _inline(pick, node) if inlined else node


def _repetition(pick) -> Reduce:
    def repetition(children, first, last):
        return pick(children), first, last
    return repetition


def _node(method, pick) -> Reduce:
    def node(children, first, last):
        if first is None:
            return method(NOWHERE, pick(children)), None, None
        if first is last and first.__class__ is Pos:
            pos = first  # one child, a node: the same place
        else:
            pos = Pos(first.line, first.column, last.end_line, last.end_column)
        return method(pos, pick(children)), pos, pos
    return node


def _inline(pick, node: Reduce) -> Reduce:
    def inline(children, first, last):
        items = pick(children)
        if len(items) != 1:
            return node(children, first, last)  # lark makes a node after all
        item = items[0]
        if isinstance(item, Token):
            return item, item, item  # lark keeps a token's own position
        return item, first, last
    return inline
