"""Builds the syntax tree while lark's LALR parser runs, instead of in a second pass.

Lark normally makes a parse tree first: a `Tree` for every rule it reduces, each passed through
wrappers that filter its children and work out its position, and `ToAst` then walked that tree
again to make the `dsl.ast` nodes.  On a large project these two passes took most of the parse
time.  Here every grammar rule gets one callback that the parser calls when it reduces the rule.
The callback receives the rule's raw children (tokens, and the values of the rules inside it) and
does what lark's tree builder would have done, the same way:

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

Every value the callbacks put on the parser's stack is a triple `(value, first, last)`: `first`
has the `line` and `column` where the rule's text starts and `last` the `end_line` and
`end_column` where it ends (each a token or an `ast.Pos`); both are None for a rule that matched
no text.  Tokens stay on the stack as lark shifts them.
"""
from __future__ import annotations

from typing import Callable

from lark import Lark, Token

from dsl import ast

Pos = ast.Pos
NOWHERE = ast.NOWHERE

# How a kept child is passed to the rule's method.
_TOKEN, _VALUE, _SPLICE = 0, 1, 2


def rule_callbacks(parser: Lark, methods: object) -> dict[object, Callable[[list], tuple] | None]:
    """For every rule of `parser`, the callback that reduces it by calling `methods`; None for a
    rule whose value is its one child's, unchanged (`?a: b`)."""
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
        if symbol.is_term:
            if rule.options.keep_all_tokens or not symbol.filter_out:
                kept.append((i, _TOKEN, nones))
                nones = 0
        else:
            kept.append((i, _SPLICE if symbol.name.startswith("_") else _VALUE, nones))
            nones = 0
    return kept, nones + nones_at[len(expansion)]


def _span(children: list) -> tuple[object, object]:
    """The first and last positioned things among the raw children, or (None, None)."""
    first = last = None
    for child in children:
        if child.__class__ is not tuple:
            first = child
            break
        if child[1] is not None:
            first = child[1]
            break
    if first is None:
        return None, None
    for child in reversed(children):
        if child.__class__ is not tuple:
            return first, child
        if child[2] is not None:
            return first, child[2]
    return first, first  # unreachable: the child that gave `first` has an end too


def _position(first, last) -> Pos:
    if first is None:
        return NOWHERE
    if first is last and first.__class__ is Pos:
        return first
    return Pos(first.line, first.column, last.end_line, last.end_column)


def _filter(kept: list[tuple[int, int, int]], trailing: int) -> Callable[[list], list]:
    """The children a method receives, from the raw children of the rule."""
    if trailing == 0 and all(nones == 0 and how != _SPLICE for _, how, nones in kept):
        plan = [(i, how == _TOKEN) for i, how, _ in kept]

        def simple(children):
            return [children[i] if is_token else children[i][0] for i, is_token in plan]
        return simple

    def general(children):
        items = []
        for i, how, nones in kept:
            if nones:
                items += [None] * nones
            if how == _TOKEN:
                items.append(children[i])
            elif how == _VALUE:
                items.append(children[i][0])
            elif items:
                items += children[i][0]
            else:
                items = children[i][0]  # a repetition's list, reused: each is spliced once
        if trailing:
            items += [None] * trailing
        return items
    return general


def _callback(rule, methods) -> Callable[[list], tuple] | None:
    kept, trailing = _kept(rule)
    children_of = _filter(kept, trailing)

    if rule.origin.name.startswith("_"):
        def repetition(children):
            first, last = _span(children)
            return children_of(children), first, last
        return repetition

    method = getattr(methods, rule.alias or rule.origin.name, None)

    def build(children):
        first, last = _span(children)
        pos = _position(first, last)
        if first is None:
            return method(pos, children_of(children)), None, None
        return method(pos, children_of(children)), pos, pos

    if not (rule.options.expand1 and not rule.alias):
        return build

    if len(rule.expansion) == 1 and kept == [(0, _VALUE, 0)] and not trailing:
        return None  # `?a: b`: b's value and room, unchanged

    def inline(children):
        items = children_of(children)
        if len(items) != 1:
            return build(children)
        item = items[0]
        if isinstance(item, Token):
            return item, item, item  # lark keeps a token's own position
        first, last = _span(children)
        return item, first, last
    return inline

