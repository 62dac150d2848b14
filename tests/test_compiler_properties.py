"""Property: whatever text the compiler is given, it ends in a bundle or in diagnostics, never in
an exception, and every diagnostic points inside the file it names."""
from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings, strategies as st

from compiler import compile_project

ROOT = Path(__file__).resolve().parents[1]
SEEDS = sorted(
    [p for p in (ROOT / "tests" / "golden" / "diagnostics").rglob("*") if p.suffix in (".flow", ".schema")]
    + [p for folder in ("flows", "schemas") for p in (ROOT / folder).rglob("*") if p.suffix in (".flow", ".schema")]
)
TOKENS = ["{", "}", "->", "\"", ":", ",", "..", "==", "menu", "say", "hangup", "goto", "if", "else", "enqueue",
          "entity", "flow", "queue", "state", "transition", "1", "30s", "80%", "08:00", "2026-10-01", "env.X",
          "{x}", "您好", "\n", " ", "#", "customer.tier", "repeat", "return", "none", "true"]


@st.composite
def mutated_source(draw):
    seed = draw(st.sampled_from(SEEDS))
    text = seed.read_text(encoding="utf-8", errors="replace")
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(text)))
        action = draw(st.sampled_from(["insert", "delete", "duplicate", "swap"]))
        if action == "insert":
            text = text[:at] + draw(st.sampled_from(TOKENS) | st.text(max_size=3)) + text[at:]
        elif action == "delete":
            text = text[:at] + text[at + draw(st.integers(1, 12)):]
        elif action == "duplicate":
            end = min(len(text), at + draw(st.integers(1, 40)))
            text = text[:end] + text[at:end] + text[end:]
        else:
            lines = text.splitlines(keepends=True)
            if len(lines) > 2:
                i = draw(st.integers(0, len(lines) - 2))
                lines[i], lines[i + 1] = lines[i + 1], lines[i]
                text = "".join(lines)
    return seed, text


def _check(tmp_path: Path, name: str, text: str) -> None:
    path = tmp_path / name
    path.write_text("", encoding="utf-8")
    result = compile_project([path], texts={path: text})
    assert (result.bundle is None) == any(d.is_error for d in result.diagnostics)
    lines = text.splitlines() or [""]
    for d in result.diagnostics:
        if d.file == name:
            assert 1 <= d.pos.line <= len(lines) + 1, d.headline()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mutated_source())
def test_mutated_sources_end_in_a_bundle_or_diagnostics(tmp_path, case):
    seed, text = case
    _check(tmp_path, "case" + seed.suffix, text)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=200))
def test_random_text_ends_in_diagnostics(tmp_path, text):
    _check(tmp_path, "random.flow", text)
