"""Runs lark's LALR(1) tables and contextual lexer in one loop of our own.

Lark's own parse spends most of its time outside the work itself: a generator and several method
calls per token, a `Token.__eq__` in Python for every rule reduced (rule names are tokens) and a
`Rule.__eq__` for an assertion.  This loop does the same steps with the tables lark built, so the
language is still exactly the grammar in `grammar.lark`:

- the next token is matched in the lexer state lark would use (the parser state after the last
  shift), by the same compiled regular expression, and a name that is one of that state's
  keywords takes the keyword's type, as lark's `UnlessCallback` does;
- whitespace and comments are skipped; comments are kept, with their line and column;
- tokens are lark `Token`s with the positions lark gives them (lines counted by "\\n" alone);
- each token is shifted after the reductions it causes, and a reduction calls the rule's
  callback (`dsl.tree_building`) with its raw children and the bounds of their text: the first
  child's start and the last child's end, kept on stacks beside the values.

Input with a syntax error is handed to lark's own parser, so that the error raised (and the
diagnostic made from it) is lark's, to the letter.
"""
from __future__ import annotations

from typing import Callable

from lark import Lark, Token
from lark.lexer import PatternStr, UnlessCallback
from lark.parsers.lalr_analysis import Shift

from dsl.tree_building import Reduce

_new_str = str.__new__


class _SyntaxError(Exception):
    """Raised inside the loop; the caller lets lark parse the text to say what is wrong."""


class ParseLoop:
    def __init__(self, parser: Lark, callbacks: dict[object, Reduce | None]):
        self.lark = parser
        table = parser.parser.parser._parse_table  # ParsingFrontend -> LALR_Parser -> its table
        self.start_states = dict(table.start_states)
        self.end_states = dict(table.end_states)
        # Per parser state: terminal or rule name -> the next state (shift, goto) or, for a
        # reduction, (number of children, rule name, callback or None).
        self.actions = [None] * len(table.states)
        for state, row in table.states.items():
            self.actions[state] = {str(name): (arg if action is Shift else
                                               (len(arg.expansion), str(arg.origin.name), callbacks[arg]))
                                   for name, (action, arg) in row.items()}
        self.lexers = [None] * len(table.states)
        by_lexer = {}
        for state, lexer in parser.parser.lexer.lexers.items():  # the contextual lexer's states
            if id(lexer) not in by_lexer:
                by_lexer[id(lexer)] = _state_lexer(lexer)
            self.lexers[state] = by_lexer[id(lexer)]
        lexers = list(parser.parser.lexer.lexers.values())
        self.ignored = frozenset().union(*(lexer.ignore_types for lexer in lexers))
        # Lark counts lines only in tokens whose pattern may hold a newline; so must we.
        self.multiline = frozenset().union(*(lexer.newline_types for lexer in lexers))

    def parse(self, text: str, start: str) -> tuple[object, list[tuple[int, int, str]]]:
        """The value of the start rule's callback, and the comments as (line, column, text).
        Raises lark's UnexpectedInput for a syntax error."""
        comments: list[tuple[int, int, str]] = []
        try:
            return self._run(text, start, comments), comments
        except _SyntaxError:
            pass
        except Exception:
            # A node that could not be built: a syntax error in the text still comes first.
            self.lark.parse(text, start=start)
            raise
        self.lark.parse(text, start=start)  # raises the error, as lark words it
        raise RuntimeError("the parse loop rejected input that lark accepts")

    def _run(self, text: str, start: str, comments: list) -> object:
        actions, lexers, ignored, multiline = self.actions, self.lexers, self.ignored, self.multiline
        end_state = self.end_states[start]
        states = [self.start_states[start]]
        values: list = []  # beside each state but the first: its value and the bounds of its text
        firsts: list = []
        lasts: list = []
        pos, line, line_start, size = 0, 1, 0, len(text)
        while True:
            if pos < size:
                match, keywords = lexers[states[-1]]
                m = match(text, pos)
                if m is None:
                    raise _SyntaxError
                kind, start_pos, pos = m.lastgroup, pos, m.end()
                start_line, column = line, start_pos - line_start + 1
                if kind in multiline:
                    newlines = text.count("\n", start_pos, pos)
                    if newlines:
                        line += newlines
                        line_start = text.rindex("\n", start_pos, pos) + 1
                if kind in ignored:
                    if kind == "COMMENT":
                        comments.append((start_line, column, text[start_pos:pos]))
                    continue
                value = m.group(0)
                if kind in keywords:
                    kind = keywords[kind].get(value, kind)
                # What lark's Token constructor does, without its two Python-level calls.
                token = _new_str(Token, value)
                token.type, token.value, token.start_pos, token.end_pos = kind, value, start_pos, pos
                token.line, token.column, token.end_line, token.end_column = start_line, column, line, pos - line_start + 1
            else:
                token, kind = None, "$END"
            while True:
                action = actions[states[-1]].get(kind)
                if action is None:
                    raise _SyntaxError
                if action.__class__ is int:
                    if token is None:
                        raise _SyntaxError  # lark shifts nothing at the end of the input
                    states.append(action)
                    values.append(token)
                    firsts.append(token)
                    lasts.append(token)
                    break
                count, rule, reduce = action
                if reduce is None:  # the rule's value and bounds are its one child's
                    del states[-1]
                else:
                    if count:
                        children = values[-count:]
                        first, last = firsts[-count], lasts[-1]
                        if first is None or last is None:
                            first, last = _bounds(firsts[-count:], lasts[-count:])
                        del values[-count:], firsts[-count:], lasts[-count:], states[-count:]
                    else:
                        children, first, last = [], None, None
                    value, first, last = reduce(children, first, last)
                    values.append(value)
                    firsts.append(first)
                    lasts.append(last)
                states.append(actions[states[-1]][rule])
                if token is None and states[-1] == end_state:
                    return values[-1]


def _bounds(firsts: list, lasts: list) -> tuple[object, object]:
    """The bounds of children some of which matched no text."""
    first = next((f for f in firsts if f is not None), None)
    last = next((x for x in reversed(lasts) if x is not None), None)
    return first, last


def _state_lexer(lexer) -> tuple[Callable, dict[str, dict[str, str]]]:
    """The match function of one lexer state, and for the terminals whose text may be a keyword of
    that state (NAME), each keyword's text and type."""
    scanner = lexer.scanner
    if len(scanner._mres) != 1:
        raise RuntimeError("a lexer state needs more than one regular expression; dsl.parse_loop needs updating")
    keywords = {}
    for kind, callback in lexer.callback.items():
        if not isinstance(callback, UnlessCallback):
            raise RuntimeError(f"unexpected lexer callback for {kind}; dsl.parse_loop needs updating")
        words = callback.scanner.terminals
        if not all(isinstance(t.pattern, PatternStr) and not t.pattern.flags for t in words):
            raise RuntimeError(f"keywords of {kind} with flags; dsl.parse_loop needs updating")
        keywords[kind] = {t.pattern.value: t.name for t in words}
    return scanner._mres[0].match, keywords
