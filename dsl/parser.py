"""Source text -> syntax tree, with syntax errors as diagnostics.

The grammar lives in `grammar.lark` beside this module; lark builds an LALR(1) parser with the
contextual lexer from it once per process.  Comments are collected by the lexer and attached to
the nodes they describe (`dsl.comments`) so the formatter can keep them.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from lark import Lark, Token
from lark.exceptions import UnexpectedInput

from dsl import ast
from dsl.comments import attach_comments
from dsl.diagnostics import Diagnostic
from dsl.transformer import ToAst
from dsl.syntax_errors import describe_syntax_error

GRAMMAR = Path(__file__).with_name("grammar.lark")


@lru_cache(maxsize=None)
def _parser() -> Lark:
    return Lark(GRAMMAR.read_text(encoding="utf-8"), parser="lalr", lexer="contextual",
                propagate_positions=True, maybe_placeholders=True, start=["start", "expr"],
                lexer_callbacks={"COMMENT": _collect_comment})


# The lexer callback has no per-call context, so comments are gathered in a list that
# `parse` swaps in for the duration of one parse.
_comment_sink: list[Token] = []


def _collect_comment(token: Token) -> Token:
    _comment_sink.append(token)
    return token


class ParseResult:
    def __init__(self, module: ast.Module | None, diagnostics: list[Diagnostic]):
        self.module = module
        self.diagnostics = diagnostics


def parse(text: str, path: str = "<input>") -> ParseResult:
    """Parse one file.  On a syntax error the module is None and the diagnostic says where."""
    global _comment_sink
    _comment_sink = comments = []
    try:
        tree = _parser().parse(text, start="start")
    except UnexpectedInput as error:
        return ParseResult(None, [describe_syntax_error(error, text, path)])
    finally:
        _comment_sink = []
    module = ToAst().transform(tree)
    module.path = path
    attach_comments(module, [(c.line, c.column, str(c)) for c in comments], text)
    return ParseResult(module, [])


def parse_expression(text: str) -> ast.Expr:
    """An expression on its own, as written inside `{...}` in a prompt.  Raises UnexpectedInput."""
    return ToAst().transform(_parser().parse(text, start="expr"))
