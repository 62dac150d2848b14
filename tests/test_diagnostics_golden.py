"""Every diagnostic code has a bad-input file and the exact text `flowdesk check` prints for it.

Cases live in tests/golden/diagnostics: `CODE_what.flow` (or `.schema`) with `CODE_what.expected`
beside it, or a folder `CODE_what/` holding several files and `expected.txt`.  Set
UPDATE_GOLDEN=1 to rewrite the expected files after a deliberate change of wording.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from compiler import compile_project
from dsl.diagnostics import render

CASES = Path(__file__).parent / "golden" / "diagnostics"


def _cases():
    for path in sorted(CASES.iterdir()):
        if path.suffix in (".flow", ".schema"):
            yield pytest.param(path, path.with_suffix(".expected"), id=path.stem)
        elif path.is_dir():
            yield pytest.param(path, path / "expected.txt", id=path.name)


def _rendered(path: Path) -> str:
    result = compile_project([path])
    return "\n\n".join(render(d, result.sources.text_of(d.file)) for d in result.diagnostics) + "\n"


@pytest.mark.parametrize("source, expected", list(_cases()))
def test_diagnostic_text(source: Path, expected: Path):
    actual = _rendered(source)
    if os.environ.get("UPDATE_GOLDEN"):
        expected.write_text(actual, encoding="utf-8")
    assert actual == expected.read_text(encoding="utf-8")
    code = source.stem.split("_")[0]
    codes = [code] if "x" not in code else [f"{code[:3]}{n}" for n in range(10)]
    assert any(f"[{c}]" in actual for c in codes), f"{source.name} should report {code}"


def test_every_code_the_compiler_can_report_has_a_case():
    import re

    sources = "".join(p.read_text(encoding="utf-8") for p in Path(__file__).parents[1].glob("compiler/*.py"))
    sources += "".join(p.read_text(encoding="utf-8") for p in Path(__file__).parents[1].glob("dsl/*.py"))
    reported = set(re.findall(r'"([EW][0-9]{3})"', sources))
    covered = "".join(p.read_text(encoding="utf-8") for p in CASES.rglob("*.expected"))
    covered += "".join(p.read_text(encoding="utf-8") for p in CASES.rglob("expected.txt"))
    # E110 names a path that does not exist, so it has no input file: tests/test_cli.py covers it.
    missing = sorted(c for c in reported - {"E110"} if f"[{c}]" not in covered)
    assert not missing, f"codes without a golden case: {missing}"
