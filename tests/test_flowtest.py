"""The flow test runner and flow coverage, on a small project written for the test."""
from __future__ import annotations

from pathlib import Path

import pytest

from compiler import compile_project
from flowdesk.cli import main
from runtime import flowtest
from runtime.scenario import load_tests

FLOW = """
queue general {
    strategy longest_idle
}
agent li_na { queues general }
hours service {
    timezone "Asia/Shanghai"
    mon-fri 09:00-18:00
}
entity Ticket {
    phone: phone
    topic: text
}
flow main {
    answer
    if not open(service) {
        say "现在下班了"
        hangup
    }
    top: menu {
        prompt "投诉请按1,人工请按0"
        1 {
            create Ticket { phone = caller  topic = "投诉" }
            say "已登记"
            hangup
        }
        0 -> agent
        on failure {
            say "再见"
            hangup
        }
    }
    agent: enqueue general
}
"""

TESTS = """
flow: main
at: 2026-11-23 10:00
agents: [li_na]
tests:
  - name: a complaint is registered
    steps:
      - hear: 投诉请按1
      - press: 1
      - hear: 已登记
    expect:
      created: {Ticket: [{topic: 投诉, phone: "13800138000"}]}
      ended: hangup
  - name: an agent answers
    steps:
      - hear: 投诉请按1
      - press: 0
      - answer: li_na
      - agent_hangs_up: true
    expect: {queue: general, agent: li_na, ended: agent_hangup}
  - name: nobody presses anything
    steps:
      - wait: 30s
    expect:
      prompts: [投诉请按1, 投诉请按1, 投诉请按1, 再见]
  - name: at night
    at: 2026-11-23 23:30
    expect: {prompts: [下班], ended: hangup}
"""


@pytest.fixture
def project(tmp_path) -> Path:
    (tmp_path / "main.flow").write_text(FLOW, encoding="utf-8")
    (tmp_path / "main.test.yaml").write_text(TESTS, encoding="utf-8")
    return tmp_path


def run_all(project):
    bundle = compile_project([project]).bundle
    path = project / "main.test.yaml"
    return bundle, [flowtest.run_test(bundle, t, path) for t in load_tests(path)]


def test_scripted_calls_pass(project):
    _, outcomes = run_all(project)
    assert [(o.test.name, o.error and str(o.error)) for o in outcomes] == [
        ("a complaint is registered", None), ("an agent answers", None), ("nobody presses anything", None),
        ("at night", None)]


def test_coverage_counts_steps_and_branches(project):
    bundle, outcomes = run_all(project)
    (main_flow,) = flowtest.coverage(bundle, outcomes)
    assert main_flow.missed_steps == [] and main_flow.missed_branches == []
    assert main_flow.percent == 100.0
    partial = flowtest.coverage(bundle, outcomes[:1])[0]
    assert "agent" in partial.missed_steps and partial.percent < 100


@pytest.mark.parametrize("steps, expect, message", [
    ("[{hear: 再见}]", "{}", "expected to hear '再见'\n   heard: '投诉请按1,人工请按0'"),
    ("[{hear: 投诉}, {press: 1}]", "{created: {Ticket: [{topic: 建议}]}}", "Ticket created: field topic is '投诉', expected '建议'"),
    ("[{press: 0}, {answer: wang}]", "{}", "agent wang was never rung for this call"),
    ("[{press: 1}]", "{ended: voicemail}", "expected the call to end with 'voicemail', it ended with 'hangup'"),
    ("[{press: 1}]", "{prompts: [投诉]}", "prompts differ"),
    ("[{press: 1}, {wait: 1s}, {press: 1}]", "{}", "the call had already ended (hangup)"),
])
def test_failures_say_which_step_and_what_differs(project, steps, expect, message):
    (project / "bad.test.yaml").write_text(
        f"flow: main\nat: 2026-11-23 10:00\nagents: [li_na]\ntests:\n  - name: t\n    steps: {steps}\n    expect: {expect}\n",
        encoding="utf-8")
    bundle = compile_project([project]).bundle
    (test,) = load_tests(project / "bad.test.yaml")
    outcome = flowtest.run_test(bundle, test, project / "bad.test.yaml")
    assert outcome.error is not None and message in str(outcome.error)
    assert outcome.transcript  # the report shows what happened on the call


def test_the_command_reports_like_pytest(project, capsys):
    assert main(["test", str(project), "--coverage"]) == 0
    out = capsys.readouterr().out
    assert "main.test.yaml::a complaint is registered PASSED" in out
    assert "4 passed, 0 failed" in out and "TOTAL 100.0%" in out


def test_the_command_fails_on_a_failing_test(project, capsys):
    (project / "main.test.yaml").write_text(TESTS.replace("hear: 已登记", "hear: 已受理"), encoding="utf-8")
    assert main(["test", str(project)]) == 1
    out = capsys.readouterr().out
    assert "FAILED" in out and "step 3 (hear: 已受理)" in out and "1 failed" in out


def test_a_broken_test_file_is_an_error_with_its_place(project, capsys):
    (project / "main.test.yaml").write_text("flow: main\ntests:\n  - name: t\n    steps: [{press: x}]\n", encoding="utf-8")
    assert main(["test", str(project)]) == 1
    assert "step 1: 'x' is not a string of phone keys" in capsys.readouterr().err


def test_a_test_of_a_flow_that_does_not_exist_fails_with_a_hint(project):
    (project / "bad.test.yaml").write_text("flow: mian\ntests:\n  - name: t\n    steps: []\n", encoding="utf-8")
    bundle = compile_project([project]).bundle
    (test,) = load_tests(project / "bad.test.yaml")
    outcome = flowtest.run_test(bundle, test, project / "bad.test.yaml")
    assert outcome.error.step == "start" and "there is no flow 'mian' (did you mean 'main'?)" in str(outcome.error)


def test_a_key_right_after_a_spoken_text_reaches_the_next_menu(tmp_path):
    (tmp_path / "f.flow").write_text(
        'flow f {\n    say "你好"\n    top: menu {\n        prompt "按1"\n        1 {\n            say "一"\n'
        '            hangup\n        }\n        on failure -> top\n    }\n}\n', encoding="utf-8")
    (tmp_path / "f.test.yaml").write_text(
        "flow: f\ntests:\n  - name: t\n    steps: [{hear: 你好}, {press: 1}]\n    expect: {prompts: [你好, 按1, 一]}\n",
        encoding="utf-8")
    bundle = compile_project([tmp_path]).bundle
    (test,) = load_tests(tmp_path / "f.test.yaml")
    assert flowtest.run_test(bundle, test, tmp_path / "f.test.yaml").error is None
