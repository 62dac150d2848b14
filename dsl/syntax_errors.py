"""Lark's parse exceptions turned into diagnostics a person can act on."""
from __future__ import annotations

from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from dsl.ast import Pos
from dsl.diagnostics import Diagnostic, did_you_mean

# What each terminal is called in a message.  Anonymous keyword terminals are named by lark after
# their text (e.g. "SAY" for "say"); those are shown quoted.
TERMINAL_NAMES = {
    "NAME": "a name", "STRING": "a quoted text", "INT": "a whole number", "SIGNED_NUMBER": "a number",
    "DURATION": "a duration such as 30s", "PERCENT": "a percentage such as 80%", "CLOCK": "a time such as 08:00",
    "DATE": "a date such as 2026-10-01", "DTMF_KEY": "a key (0-9 or *)", "HTTP_METHOD": "an HTTP method (GET, POST...)",
    "COMPARE_OP": "a comparison", "ADD_OP": "'+' or '-'", "MUL_OP": "'*' or '/'",
    "LBRACE": "'{'", "RBRACE": "'}'", "LPAR": "'('", "RPAR": "')'", "LSQB": "'['", "RSQB": "']'",
    "COMMA": "','", "COLON": "':'", "DOT": "'.'", "EQUAL": "'='", "MINUS": "'-'", "__ANON_0": "'->'",
    "$END": "the end of the file",
}


def _terminal_name(name: str, grammar_terminals) -> str:
    if name in TERMINAL_NAMES:
        return TERMINAL_NAMES[name]
    term = grammar_terminals.get(name) if grammar_terminals else None
    if term is not None and term.pattern.type == "str":
        return f"'{term.pattern.value}'"
    return name.lower()


def _expected(names, grammar_terminals) -> str:
    shown = sorted({_terminal_name(n, grammar_terminals) for n in names})
    if len(shown) > 8:
        return ", ".join(shown[:8]) + f" or one of {len(shown) - 8} more"
    if len(shown) > 1:
        return ", ".join(shown[:-1]) + " or " + shown[-1]
    return shown[0] if shown else "something else"


def describe_syntax_error(error: UnexpectedInput, text: str, path: str) -> Diagnostic:
    terminals = getattr(error, "terminals_by_name", None) or {}
    if isinstance(error, UnexpectedCharacters):
        char = text[error.pos_in_stream] if error.pos_in_stream < len(text) else ""
        pos = Pos(error.line, error.column, error.line, error.column + 1)
        if char == '"':
            return Diagnostic(path, pos, "E101", "unterminated text: a quoted text must end on the same line",
                              hint='close it with " before the end of the line')
        expected = _expected(error.allowed or [], terminals)
        return Diagnostic(path, pos, "E101", f"unexpected character {char!r}; expected {expected}")
    if isinstance(error, UnexpectedEOF):
        return _ends_too_early(error, text, path, terminals)
    assert isinstance(error, UnexpectedToken)
    token = error.token
    if token.type == "$END":
        return _ends_too_early(error, text, path, terminals)
    pos = Pos(token.line, token.column, token.end_line or token.line, token.end_column or token.column + 1)
    shown = str(token)
    word, word_column = _word_before(text, token)
    if word and set(error.expected) == {"COLON"}:
        # `sya "hello"`: a word the parser could only take as a label, so most likely a misspelt statement.
        word_pos = Pos(token.line, word_column, token.line, word_column + len(word))
        return Diagnostic(path, word_pos, "E103", f"unknown statement '{word}'",
                          hint=did_you_mean(word, STATEMENTS) or f"the statements are: {', '.join(STATEMENTS)}")
    if word and token.type == "COLON":
        word_pos = Pos(token.line, word_column, token.line, word_column + len(word))
        return Diagnostic(path, word_pos, "E103", f"'{word}' is a reserved word and cannot be used as a name here",
                          hint=f"choose another name, e.g. '{word}_text'")
    hint = None
    if "NAME" in error.expected and token.type != "NAME" and shown.isidentifier():
        hint = f"'{shown}' is a reserved word; choose another name"
    return Diagnostic(path, pos, "E103", f"unexpected '{shown}'; expected {_expected(error.expected, terminals)}",
                      hint=hint)


def _ends_too_early(error, text: str, path: str, terminals) -> Diagnostic:
    """E102 at the end of the last line that has text (lines counted by "\n", as the parser does)."""
    lines = text.split("\n")
    while len(lines) > 1 and not lines[-1].strip():
        lines.pop()
    pos = Pos(len(lines), len(lines[-1]) + 1, len(lines), len(lines[-1]) + 2)
    return Diagnostic(path, pos, "E102", f"the file ends too early; expected {_expected(error.expected, terminals)}",
                      hint="check that every '{' has its '}'")


STATEMENTS = ["answer", "say", "play", "menu", "collect", "set", "if", "switch", "lookup", "create", "update",
              "http", "enqueue", "transfer", "voicemail", "record", "survey", "goto", "subflow", "return",
              "repeat", "hangup"]


def _word_before(text: str, token) -> tuple[str | None, int]:
    """The identifier just before `token` on its line, and its column."""
    lines = text.split("\n")
    if not 1 <= token.line <= len(lines):
        return None, 0
    before = lines[token.line - 1][: token.column - 1]
    stripped = before.rstrip()
    start = len(stripped)
    while start > 0 and (stripped[start - 1].isalnum() or stripped[start - 1] == "_"):
        start -= 1
    word = stripped[start:]
    return (word, start + 1) if word.isidentifier() else (None, 0)
