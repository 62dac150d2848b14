"""Source text -> syntax tree, with syntax errors as diagnostics.

The grammar lives in `grammar.lark` beside this module; lark builds an LALR(1) parser with the
contextual lexer from it once per process.  The parse itself runs lark's tables in a loop of our
own (`dsl.parse_loop`) that builds the syntax tree as it goes (`dsl.tree_building`).  Comments
are collected by the lexer and attached to the nodes they describe (`dsl.comments`) so the
formatter can keep them.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from lark import Lark
from lark.exceptions import UnexpectedInput

from dsl import ast
from dsl.comments import attach_comments
from dsl.diagnostics import Diagnostic
from dsl.parse_loop import ParseLoop
from dsl.syntax_errors import describe_syntax_error
from dsl.transformer import ToAst
from dsl.tree_building import rule_callbacks

GRAMMAR = Path(__file__).with_name("grammar.lark")


@lru_cache(maxsize=None)
def _parser() -> ParseLoop:
    grammar = Lark(GRAMMAR.read_text(encoding="utf-8"), parser="lalr", lexer="contextual",
                   maybe_placeholders=True, start=["start", "expr"])
    return ParseLoop(grammar, rule_callbacks(grammar, ToAst()))


class ParseResult:
    def __init__(self, module: ast.Module | None, diagnostics: list[Diagnostic]):
        self.module = module
        self.diagnostics = diagnostics


def parse(text: str, path: str = "<input>") -> ParseResult:
    """Parse one file.  On a syntax error the module is None and the diagnostic says where."""
    try:
        module, comments = _parser().parse(text, "start")
    except UnexpectedInput as error:
        return ParseResult(None, [describe_syntax_error(error, text, path)])
    module.path = path
    attach_comments(module, comments, text)
    return ParseResult(module, [])


def parse_expression(text: str) -> ast.Expr:
    """An expression on its own, as written inside `{...}` in a prompt.  Raises UnexpectedInput."""
    expr, _ = _parser().parse(text, "expr")
    return expr
