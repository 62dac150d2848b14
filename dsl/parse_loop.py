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
  callback (`dsl.tree_building`) with its raw children.

Input with a syntax error is handed to lark's own parser, so that the error raised (and the
diagnostic made from it) is lark's, to the letter.
"""
from __future__ import annotations

from typing import Callable

from lark import Lark, Token
from lark.lexer import PatternStr, UnlessCallback
from lark.parsers.lalr_analysis import Shift

_new_str = str.__new__


class _SyntaxError(Exception):
    """Raised inside the loop; the caller lets lark parse the text to say what is wrong."""


class ParseLoop:
    def __init__(self, parser: Lark, callbacks: dict[object, Callable[[list], object]]):
        self.lark = parser
        table = parser.parser.parser._parse_table  # ParsingFrontend -> LALR_Parser -> its table
        self.start_states = dict(table.start_states)
        self.end_states = dict(table.end_states)
        # Per parser state: terminal or rule name -> the next state (shift, goto) or, for a
        # reduction, (number of children, rule name, callback).
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
        self.lark.parse(text, start=start)  # raises the error, as lark words it
        raise RuntimeError("the parse loop rejected input that lark accepts")

    def _run(self, text: str, start: str, comments: list) -> object:
        actions, lexers, ignored, multiline = self.actions, self.lexers, self.ignored, self.multiline
        end_state = self.end_states[start]
        states = [self.start_states[start]]
        values: list = []
        pos, line, line_start, size = 0, 1, 0, len(text)
        while True:
            if pos < size:
                match, keywords = lexers[states[-1]]
                m = match(text, pos)
                if m is None:
                    raise _SyntaxError
                value, kind = m.group(0), m.lastgroup
                start_pos, start_line, column = pos, line, pos - line_start + 1
                pos = m.end()
                if kind in multiline:
                    newlines = value.count("\n")
                    if newlines:
                        line += newlines
                        line_start = start_pos + value.rindex("\n") + 1
                if kind in ignored:
                    if kind == "COMMENT":
                        comments.append((start_line, column, value))
                    continue
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
                    break
                count, rule, callback = action
                if callback is None:  # the rule's value is its one child's, unchanged
                    del states[-1]
                elif count:
                    children = values[-count:]
                    del values[-count:]
                    del states[-count:]
                    values.append(callback(children))
                else:
                    values.append(callback([]))
                states.append(actions[states[-1]][rule])
                if token is None and states[-1] == end_state:
                    return values[-1]


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
