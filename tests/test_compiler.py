"""The compiler's stages, each on small sources written for the test."""
from __future__ import annotations

from pathlib import Path

import pytest

from compiler import compile_project, ir
from compiler.bundle import content_hash, from_json, to_json


def project(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return tmp_path


def compiled(tmp_path, files, **kw):
    result = compile_project([project(tmp_path, files)], **kw)
    assert result.ok, [d.headline() for d in result.diagnostics]
    return result.bundle


CUSTOMER = """
entity Customer "客户" {
    name: text required max 20 label "姓名"
    phone: phone unique
    tier: enum(platinum "白金", gold "金卡", general "普通") default general
    balance: money default 0 range 0..100000
}
"""


# ------------------------------------------------------------------ flows become state machines

def test_statements_run_in_order_and_blocks_continue_after_their_statement(tmp_path):
    bundle = compiled(tmp_path, {"a.flow": CUSTOMER + """
flow main {
    answer
    lookup customer = Customer where phone == caller
    if customer.tier in [platinum, gold] {
        say "尊敬的{customer.name}"
    }
    say "再见"
    hangup
}
"""})
    steps = {s.id: s for s in bundle.flows["main"].steps}
    flow = bundle.flows["main"]
    assert flow.start == "answer@1"
    assert steps["answer@1"].next == "lookup@2"
    branch = steps["if@3"]
    assert branch.conditions[0].goto == "say@4"
    assert steps["say@4"].next == "say@5"   # the block continues after the if
    assert branch.next == "say@5"
    greeting = steps["say@4"].text
    assert greeting[0].text == "尊敬的" and greeting[1].expr.path == ["customer", "name"]
    assert greeting[1].expr.type == "text"
    where = steps["lookup@2"].where
    assert where.args[0].path == ["@record", "phone"] and where.args[1].path == ["caller"]
    assert flow.variables["customer"].type == "record:Customer"
    assert flow.variables["customer"].set_at == ["lookup@2"]


def test_menu_handlers_repeat_and_failure(tmp_path):
    bundle = compiled(tmp_path, {"a.flow": """
flow main {
    main_menu: menu {
        prompt "查询请按1"
        timeout 4s
        retries 3
        1 "查询" -> done
        on timeout {
            say "您没有输入"
            repeat
        }
        on invalid -> main_menu
        on failure -> done
    }
    done: hangup
}
"""})
    steps = {s.id: s for s in bundle.flows["main"].steps}
    menu = steps["main_menu"]
    assert (menu.timeout_ms, menu.retries) == (4000, 3)
    assert [(o.key, o.title, o.goto) for o in menu.options] == [("1", "查询", "done")]
    assert menu.on_invalid == "main_menu" and menu.on_failure == "done"
    say = steps[menu.on_timeout]
    assert steps[say.next] == ir.RepeatStep(id=say.next, menu="main_menu")


def test_goto_is_an_edge_not_a_step(tmp_path):
    bundle = compiled(tmp_path, {"a.flow": """
flow main {
    collect pin: digits {
        prompt "请输入密码"
        length 6
        on failure -> bye
    }
    goto bye
    bye: hangup
}
"""})
    steps = {s.id: s for s in bundle.flows["main"].steps}
    assert steps["collect@1"].next == "bye"
    assert not any(s.kind == "goto" for s in steps.values())
    assert (steps["collect@1"].min_length, steps["collect@1"].max_length) == (6, 6)


def test_environment_symbols_are_resolved_per_environment(tmp_path):
    files = {
        "flowdesk.yaml": "default_environment: test\nsecrets: [TOKEN]\nenvironments:\n"
                         "  test: {HOTLINE: '4008001000', API: 'http://127.0.0.1:9'}\n"
                         "  production: {HOTLINE: '10086', API: 'https://billing.example.net'}\n",
        "flows/a.flow": """
flow main {
    entry number env.HOTLINE
    http bill = GET env.API + "/bills/" + caller timeout 2s header "Authorization" = secret("TOKEN") returns { amount: money } else -> bye
    say "余额 {bill.amount} 元"
    bye: hangup
}
""",
    }
    test = compiled(tmp_path, files)
    production = compile_project([tmp_path / "flows"], environment="production").bundle
    assert test.numbers == {"4008001000": "main"} and production.numbers == {"10086": "main"}
    http = production.flows["main"].steps[0]
    assert http.url.args[0].args[0] == ir.Const(type="text", value="https://billing.example.net")
    assert http.headers[0].value == ir.Fn(type="text", name="secret", args=[ir.Const(type="text", value="TOKEN")])
    assert production.flows["main"].variables["bill"].type == "object:main.bill"
    assert test.hash != production.hash


def test_imports_make_declarations_visible(tmp_path):
    bundle = compiled(tmp_path, {
        "flows/queues.flow": "queue general {\n strategy round_robin\n wrapup 30s\n}\n",
        "flows/main.flow": 'import "queues.flow"\nflow main {\n enqueue general priority 5\n}\n',
    })
    assert bundle.queues["general"].strategy == "round_robin"
    assert bundle.queues["general"].wrapup_ms == 30_000
    assert bundle.flows["main"].steps[0].priority == 5


def test_checking_one_file_follows_its_imports(tmp_path):
    root = project(tmp_path, {
        "flows/queues.flow": "queue general {\n strategy round_robin\n}\n",
        "flows/main.flow": 'import "queues.flow"\nflow main {\n enqueue general\n}\n',
    })
    result = compile_project([root / "flows" / "main.flow"])
    assert result.ok and "general" in result.bundle.queues


# ------------------------------------------------------------------ CRM and workflows

def test_entity_fields_and_workflow_state(tmp_path):
    bundle = compiled(tmp_path, {"a.schema": CUSTOMER + """
hours office {
    timezone "Asia/Shanghai"
    mon-fri 09:00-12:00, 13:00-18:00
    closed 2026-10-01..2026-10-07 "国庆节"
}
role team_lead { read, update Customer }
entity Ticket {
    customer: ref Customer required
    assignee: agent
}
workflow complaint for Ticket {
    hours office
    state new initial "新建"
    state waiting paused
    state closed final
    transition wait: new -> waiting by team_lead when customer.tier == gold { notify assignee "请跟进" }
    transition close: new, waiting -> closed
    sla resolution 48h from new until closed {
        at 80% escalate team_lead
    }
}
form ticket_form for Ticket {
    section "工单" {
        customer
        state readonly
    }
}
"""})
    customer = {f.name: f for f in bundle.entities["Customer"].fields}
    assert customer["tier"].choices[0] == ir.EnumChoice(name="platinum", label="白金")
    assert customer["tier"].default == "general" and customer["balance"].maximum == "100000"
    assert customer["name"].max_length == 20 and customer["name"].required
    assert bundle.entities["Ticket"].workflow == "complaint"
    workflow = bundle.workflows["complaint"]
    assert [s.name for s in workflow.states if s.paused] == ["waiting"]
    guard = workflow.transitions[0].guard
    assert guard.args[0].path == ["@record", "customer", "tier"]
    assert workflow.slas[0].rules[0] == ir.SlaRule(kind="escalate", percent=80.0, role="team_lead")
    assert bundle.hours["office"].weekly["mon"] == [ir.TimeRange(start="09:00", end="12:00"),
                                                    ir.TimeRange(start="13:00", end="18:00")]
    assert bundle.hours["office"].weekly["sat"] == []


# ------------------------------------------------------------------ the bundle

def test_bundle_is_byte_identical_for_identical_input(tmp_path):
    files = {"a.flow": CUSTOMER + 'flow main {\n answer\n say "你好"\n hangup\n}\n'}
    first = to_json(compiled(tmp_path / "one", files))
    second = to_json(compiled(tmp_path / "two", files))
    assert first == second
    assert from_json(first).hash.startswith("sha256:")


def test_bundle_hash_follows_content(tmp_path):
    a = compiled(tmp_path / "a", {"a.flow": 'flow main {\n say "你好"\n hangup\n}\n'})
    b = compiled(tmp_path / "b", {"a.flow": 'flow main {\n say "您好"\n hangup\n}\n'})
    assert a.hash != b.hash and content_hash(a) == a.hash


def test_a_tampered_bundle_is_refused(tmp_path):
    text = to_json(compiled(tmp_path, {"a.flow": 'flow main {\n say "你好"\n hangup\n}\n'}))
    with pytest.raises(ValueError, match="does not match its hash"):
        from_json(text.replace("你好", "再见"))


def test_errors_from_every_file_are_reported_together(tmp_path):
    result = compile_project([project(tmp_path, {
        "a.flow": "flow a {\n enqueue nowhere\n}\n",
        "b.flow": "flow b {\n say \n}\n",
        "c.schema": "entity C {\n x: txt\n}\n",
    })])
    assert result.bundle is None
    assert {(d.file, d.code) for d in result.errors} == {("a.flow", "E201"), ("b.flow", "E103"), ("c.schema", "E601")}


def test_texts_override_files_on_disk(tmp_path):
    root = project(tmp_path, {"a.flow": "flow a {\n hangup\n}\n"})
    result = compile_project([root], texts={root / "a.flow": "flow a {\n enqueue nowhere\n}\n"})
    assert [d.code for d in result.errors] == ["E201"]
