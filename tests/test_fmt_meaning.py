"""Formatting changes no meaning: the bundle compiled from formatted files is the one compiled
from the files as written (same content hash), for the example call centre and a generated project."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bench.generate import write_project
from compiler import compile_project
from dsl.formatter import format_source

ROOT = Path(__file__).resolve().parents[1]


def _copy_example(tmp_path: Path) -> Path:
    for name in ("flows", "schemas"):
        shutil.copytree(ROOT / name, tmp_path / name)
    shutil.copy(ROOT / "flowdesk.yaml", tmp_path / "flowdesk.yaml")
    return tmp_path


def _reformat_all(root: Path) -> int:
    changed = 0
    for path in sorted(root.rglob("*")):
        if path.suffix in (".flow", ".schema"):
            text = path.read_text(encoding="utf-8")
            formatted, diagnostics = format_source(text, str(path))
            assert formatted is not None, diagnostics
            changed += formatted != text
            path.write_text(formatted, encoding="utf-8")
    return changed


@pytest.mark.parametrize("make", [_copy_example, lambda p: write_project(p, steps=400, entities=20)],
                         ids=["example", "generated"])
def test_formatting_keeps_the_bundle(tmp_path, make):
    root = make(tmp_path)
    before = compile_project([root])
    assert before.ok, [d.headline() for d in before.errors]
    _reformat_all(root)
    after = compile_project([root])
    assert after.ok and after.bundle.hash == before.bundle.hash
    assert _reformat_all(root) == 0  # and formatting again changes nothing
