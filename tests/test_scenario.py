"""Reading flow test files: defaults, steps, and clear errors for bad files."""
from __future__ import annotations

import pytest

from runtime.scenario import Hear, Press, ScenarioError, Wait, load_tests

GOOD = """
flow: hotline
from: 13800138000
at: 2026-11-23 10:00
crm:
  Customer:
    - {id: 1, name: 张三, phone: "13800138000", tier: gold}
tests:
  - name: balance
    steps:
      - hear: 您好
      - press: 1
      - wait: 6s
    expect:
      queue: vip
  - name: another caller
    from: "13900139000"
    steps:
      - press: "12#"
"""


def test_file_defaults_fill_each_test(tmp_path):
    path = tmp_path / "hotline.test.yaml"
    path.write_text(GOOD, encoding="utf-8")
    first, second = load_tests(path)
    assert (first.flow, first.caller, first.line) == ("hotline", "13800138000", 9)
    assert first.steps == [Hear(hear="您好"), Press(press="1"), Wait(wait="6s")]
    assert first.crm["Customer"][0]["name"] == "张三" and "__line__" not in first.crm["Customer"][0]
    assert first.expect.queue == "vip"
    assert second.caller == "13900139000" and second.steps == [Press(press="12#")]
    assert second.at.hour == 10


@pytest.mark.parametrize("text, message", [
    ("flow: x\ntests:\n  - name: t\n    steps:\n      - press: 1a\n", "is not a string of phone keys"),
    ("flow: x\ntests:\n  - name: t\n    steps:\n      - dance: yes\n", "test 't'"),
    ("tests:\n  - name: t\n    steps: []\n", "say which flow the call dials"),
    ("flow: x\n", "needs a `tests:` list"),
    ("flow: [x\n", "not valid YAML"),
])
def test_bad_files_say_where_and_what(tmp_path, text, message):
    path = tmp_path / "bad.test.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ScenarioError, match=message) as error:
        load_tests(path)
    assert str(path) in str(error.value)
