"""The example call centre: it checks clean and compiles to the checked-in bundle, per environment.

After a deliberate change to the examples or the compiler, `UPDATE_GOLDEN=1` rewrites the bundles;
review their diff like code.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from compiler import compile_project
from compiler.bundle import from_json, to_json
from flowdesk.cli import main

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "golden" / "bundles"


def test_the_examples_check_clean_even_when_strict(capsys):
    assert main(["check", "--strict", str(ROOT / "flows"), str(ROOT / "schemas")]) == 0


@pytest.mark.parametrize("environment", ["test", "production"])
def test_the_examples_compile_to_the_golden_bundle(environment):
    result = compile_project([ROOT / "flows", ROOT / "schemas"], environment=environment)
    assert result.ok, [d.headline() for d in result.errors]
    text = to_json(result.bundle)
    golden = GOLDEN / f"hotline.{environment}.json"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(text, encoding="utf-8")
    assert text == golden.read_text(encoding="utf-8")
    assert from_json(text) == result.bundle


def test_the_example_covers_the_hotline_the_business_asked_for():
    bundle = compile_project([ROOT / "flows", ROOT / "schemas"]).bundle
    assert {"Customer", "AccountManager", "Ticket"} <= set(bundle.entities)
    tiers = {c.name for f in bundle.entities["Customer"].fields if f.name == "tier" for c in f.choices}
    assert tiers == {"platinum", "gold", "star", "general"}
    workflow = bundle.workflows[bundle.entities["Ticket"].workflow]
    assert [s.name for s in workflow.states] == ["new", "assigned", "in_progress", "waiting_customer", "resolved", "closed"]
    assert [s.name for s in workflow.states if s.paused] == ["waiting_customer"]
    slas = {s.name: s for s in workflow.slas}
    assert slas["first_response"].duration_ms == 4 * 3600_000 and slas["resolution"].duration_ms == 48 * 3600_000
    assert all(any(r.kind == "escalate" and r.percent == 80 for r in s.rules) for s in slas.values())
    evaluation = next(iter(bundle.evaluations.values()))
    assert len(evaluation.parts) == 5
    kinds = {step.kind for flow in bundle.flows.values() for step in flow.steps}
    assert {"menu", "collect", "http", "lookup", "create", "update", "enqueue", "voicemail", "survey",
            "subflow", "record", "transfer_number"} <= kinds


def test_the_example_flow_tests_pass_and_reach_every_step_and_branch(capsys):
    assert main(["test", str(ROOT / "flows"), "--coverage"]) == 0
    out = capsys.readouterr().out
    assert " 0 failed" in out and "TOTAL 100.0%" in out
    assert "missed" not in out
