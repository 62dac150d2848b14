"""Typed edits of the example files: each gives canonical text that parses back, changes only what it
says, and keeps every comment; an edit that cannot be made says what and where."""
from __future__ import annotations

import difflib
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dsl.edit_forms import AddFormField, MoveFormField, RemoveFormField, SetFieldLabel, SetFormField
from dsl.edit_lines import HOURS, QUEUE, AddLine, RemoveLine, SetLine
from dsl.edits import (AddMenuOption, EditError, RemoveMenuOption, SetMenuOption, SetMenuSettings, SetSay,
                       apply_edit, menus)
from dsl.formatter import format_source
from dsl.parser import parse

ROOT = Path(__file__).resolve().parent.parent


def source(path: str) -> str:
    return (ROOT / path).read_text(encoding="utf-8")


def comments(text: str) -> list[str]:
    """The comments of a text, in order (no example file has `#` inside a string)."""
    return [line.split("#", 1)[1].strip() for line in text.splitlines() if "#" in line]


def changes(before: str, after: str) -> tuple[list[str], list[str]]:
    """(lines removed, lines added)."""
    diff = list(difflib.unified_diff(before.splitlines(), after.splitlines(), n=0, lineterm=""))[2:]
    return ([d[1:] for d in diff if d.startswith("-")], [d[1:] for d in diff if d.startswith("+")])


def edited(path: str, edit) -> str:
    before = source(path)
    after = apply_edit(before, path, edit)
    assert format_source(after, path) == (after, [])     # canonical, and it parses
    return after


EDITS = [
    ("flows/hotline.flow", SetMenuOption("hotline", "main_menu", "0", new_key="8", title="转人工", target="vip_queue"),
     ['        0 "人工服务" -> to_agent'], ['        8 "转人工" -> vip_queue']),
    ("flows/hotline.flow", AddMenuOption("hotline", "after_service", "9", "结束", "goodbye"),
     [], ['        9 "结束" -> goodbye']),
    ("flows/hotline.flow", RemoveMenuOption("hotline", "main_menu", "5"), ['        5 "服务时间" -> hours_info'], []),
    ("flows/hotline.flow", SetMenuSettings("hotline", "after_service", prompt="请按1或0。", timeout="10s", retries="3"),
     ['        prompt "返回主菜单请按1,人工服务请按0,结束通话请直接挂机。"'],
     ['        prompt "请按1或0。"', "        timeout 10s", "        retries 3"]),
    ("flows/hotline.flow", SetMenuSettings("hotline", "main_menu", timeout="", retries=""),
     ["        timeout 8s", "        retries 2"], []),
    ("flows/hotline.flow", SetSay("hotline", 1, "您好,这里是星海通信。"),
     ['    say "您好,欢迎致电星海通信客服热线。为了提升服务质量,您的通话可能会被录音。"'],
     ['    say "您好,这里是星海通信。"']),
    ("flows/queues.flow", SetLine(QUEUE, "general", 5, 'max wait 3m then voicemail "general"'),
     ["    max wait 5m then callback"], ['    max wait 3m then voicemail "general"']),
    ("flows/queues.flow", AddLine(QUEUE, "general", "priority 2"), [], ["    priority 2"]),
    ("flows/queues.flow", RemoveLine(QUEUE, "general", 3), ["    announce position every 1m"], []),
    ("flows/hours.flow", SetLine(HOURS, "office", 2, "mon-fri 08:30-17:30"),
     ["    mon-fri 09:00-18:00"], ["    mon-fri 08:30-17:30"]),
    ("flows/hours.flow", AddLine(HOURS, "service_hours", 'closed 2026-12-31 "年终盘点"'),
     [], ['    closed 2026-12-31 "年终盘点"']),
    ("flows/hours.flow", RemoveLine(HOURS, "office", 4), ['    open 2026-01-04 09:00-18:00 "元旦调休上班"'], []),
    ("schemas/customer.schema", AddFormField("customer_card", "备注", "plan_x", readonly=True),
     [], ["        plan_x readonly"]),
    ("schemas/customer.schema", RemoveFormField("customer_card", "号码与账户", "joined"), ["        joined readonly"], []),
    ("schemas/customer.schema", MoveFormField("customer_card", "基本信息", "birthday", "基本信息", 0),
     ["        birthday"], ["        birthday"]),
    ("schemas/customer.schema", SetFormField("customer_card", "基本信息", "email", readonly=True),
     ["        email"], ["        email readonly"]),
    ("schemas/customer.schema", SetFieldLabel("Customer", "plan", "资费套餐"),
     ['    plan: text max 40 label "套餐"'], ['    plan: text max 40 label "资费套餐"']),
]


@pytest.mark.parametrize("path, edit, removed, added", EDITS, ids=[type(e[1]).__name__ for e in EDITS])
def test_an_edit_changes_only_its_lines_and_keeps_every_comment(path, edit, removed, added):
    before = source(path)
    after = edited(path, edit)
    assert changes(before, after) == (removed, added)
    assert comments(after) == comments(before)


def test_a_block_replaced_by_a_step_label_keeps_the_comments_around_it():
    after = edited("flows/hotline.flow", SetMenuOption("hotline", "main_menu", "1", target="to_agent"))
    assert '        1 "话费余额查询" -> to_agent' in after
    assert "subflow balance_inquiry\n            goto after_service\n        }\n        2" not in after
    assert comments(after) == comments(source("flows/hotline.flow"))


def test_a_moved_field_takes_its_comment_along():
    before = source("schemas/customer.schema")
    text = before.replace("        birthday\n", "        # 生日提醒用\n        birthday  # 可不填\n")
    after = apply_edit(text, "schemas/customer.schema",
                       MoveFormField("customer_card", "基本信息", "birthday", "备注", 0))
    assert '    section "备注" {\n        # 生日提醒用\n        birthday  # 可不填\n        notes\n' in after


def test_a_changed_queue_line_keeps_its_comments():
    text = source("flows/queues.flow").replace("    wrapup 30s\n", "    # after-call notes\n    wrapup 30s  # short\n", 1)
    after = apply_edit(text, "flows/queues.flow", SetLine(QUEUE, "general", 7, "wrapup 45s"))
    assert "    # after-call notes\n    wrapup 45s  # short\n" in after


def test_the_menus_of_a_flow_are_named_by_label_or_place():
    module = parse("flow f { a: menu { 1 -> a } if true { menu { 2 -> a } } }", "f.flow").module
    assert [name for name, _ in menus(module.declarations[0])] == ["a", "#2"]
    after = apply_edit("flow f { a: menu { 1 -> a } if true { menu { 2 -> a } } }", "f.flow",
                       SetMenuOption("f", "#2", "2", new_key="#"))
    assert '"#" -> a' in after


WRONG = [
    ("flows/hotline.flow", SetMenuOption("hotline", "main_manu", "1", title="x"), "流程 hotline 中没有菜单 main_manu"),
    ("flows/hotline.flow", SetMenuOption("hotline", "main_menu", "6", title="x"), "菜单 main_menu 没有按键 6 的选项"),
    ("flows/hotline.flow", SetMenuOption("hotline", "main_menu", "0", new_key="1"), "已有按键 1「话费余额查询」"),
    ("flows/hotline.flow", AddMenuOption("hotline", "main_menu", "12", None, "goodbye"), "'12' 不是电话按键"),
    ("flows/hotline.flow", AddMenuOption("hotline", "main_menu", "6", None, "goodby"), "'goodby' 不是流程 hotline 中的步骤标签"),
    ("flows/hotline.flow", SetMenuSettings("hotline", "main_menu", timeout="8 seconds"), "超时 '8 seconds' 不是时长"),
    ("flows/hotline.flow", SetMenuSettings("hotline", "main_menu", prompt=" "), "提示语不能为空"),
    ("flows/hotline.flow", SetSay("nowhere", 1, "x"), "flows/hotline.flow 中没有流程 nowhere"),
    ("flows/hotline.flow", SetSay("hotline", 99, "x"), "流程 hotline 没有第 99 句播报"),
    ("flows/queues.flow", SetLine(QUEUE, "general", 7, "wrapup soon"), "队列 general 第 7 行写法不对"),
    ("flows/queues.flow", AddLine(QUEUE, "general", "wrapup 1m"), "已有「话后处理」一行"),
    ("flows/queues.flow", SetLine(QUEUE, "general", 7, "wrapup 1m } queue x {"), "不是一条队列设置"),
    ("flows/queues.flow", RemoveLine(QUEUE, "general", 20), "队列 general 没有第 20 行"),
    ("flows/hours.flow", SetLine(HOURS, "office", 2, "mon-fri 09:00-25:00"), "09:00-25:00 不是一天中的时间"),
    ("flows/hours.flow", SetLine(HOURS, "office", 2, "mon-fri 09:70-18:00"), "09:70-18:00 不是一天中的时间"),
    ("flows/hours.flow", SetLine(HOURS, "office", 2, "mon-fri 18:00-09:00"), "18:00-09:00 结束早于开始"),
    ("flows/hours.flow", AddLine(HOURS, "office", "closed 2026-02-30"), "日期 2026-02-30 不存在"),
    ("flows/hours.flow", AddLine(HOURS, "office", "closed 2026-10-07..2026-10-01"), "结束早于开始"),
    ("flows/hours.flow", AddLine(HOURS, "office", 'timezone "UTC"'), "已有「时区」一行"),
    ("flows/hours.flow", AddLine(HOURS, "office", "mon 09:00-12:00\nsun 09:00-12:00"), "只能写一行"),
    ("schemas/customer.schema", AddFormField("customer_card", "备注", "plan"), "已有字段 plan(在分区「号码与账户」中)"),
    ("schemas/customer.schema", AddFormField("customer_card", "备注", "9x"), "'9x' 不是名称"),
    ("schemas/customer.schema", AddFormField("customer_card", "其他", "plan"), "没有分区「其他」"),
    ("schemas/customer.schema", RemoveFormField("customer_card", "备注", "notes"), "分区至少要有一个字段"),
    ("schemas/customer.schema", MoveFormField("customer_card", "基本信息", "name", "备注", 5), "没有第 6 个位置"),
    ("schemas/customer.schema", SetFieldLabel("Customer", "nickname", "昵称"), "实体 Customer 中没有字段 nickname"),
]


@pytest.mark.parametrize("path, edit, message", WRONG, ids=[w[2] for w in WRONG])
def test_an_edit_that_cannot_be_made_says_what_and_where(path, edit, message):
    with pytest.raises(EditError, match=re.escape(message)):
        apply_edit(source(path), path, edit)


def test_a_file_that_does_not_parse_is_not_edited():
    with pytest.raises(EditError, match="第 1 行有语法错误.*请先在文本编辑器中改正"):
        apply_edit("flow f {", "flows/f.flow", SetSay("f", 1, "x"))


# Any prompt text, key and title round-trips through the printed file.
PRINTABLE = st.text(st.characters(blacklist_categories=["Cs"]), min_size=1, max_size=30).filter(str.strip)


@settings(max_examples=60, deadline=None)
@given(prompt=PRINTABLE, title=PRINTABLE, key=st.sampled_from(sorted("6789#")))
def test_any_text_typed_into_a_menu_reads_back_the_same(prompt, title, key):
    text = source("flows/hotline.flow")
    text = apply_edit(text, "f.flow", SetMenuSettings("hotline", "after_service", prompt=prompt))
    text = apply_edit(text, "f.flow", AddMenuOption("hotline", "after_service", key, title, "goodbye"))
    menu = dict(menus(parse(text, "f.flow").module.declarations[0]))["after_service"]
    settings_ = {i.key: i.value for i in menu.items if hasattr(i, "key") and not hasattr(i, "target")}
    options = {i.key: i.title for i in menu.items if hasattr(i, "title")}
    assert settings_["prompt"] == prompt
    assert options[key] == title.strip()
    assert format_source(text) == (text, [])


@settings(max_examples=40, deadline=None)
@given(moves=st.lists(st.tuples(st.integers(0, 30), st.integers(0, 3), st.integers(0, 8)), max_size=6))
def test_moving_fields_about_keeps_every_field_and_comment_once(moves):
    path = "schemas/customer.schema"
    text = source(path)
    for field_at, section_at, position in moves:
        form = next(d for d in parse(text, path).module.declarations if d.name == "customer_card")
        placed = [(s.title, f.name) for s in form.sections for f in s.fields]
        title, name = placed[field_at % len(placed)]
        to = form.sections[section_at % len(form.sections)]
        try:
            text = apply_edit(text, path, MoveFormField("customer_card", title, name, to.title, position))
        except EditError as error:      # the last field of a section, or a place past the end
            assert "至少要有一个字段" in str(error) or "个位置" in str(error)
    form = next(d for d in parse(text, path).module.declarations if d.name == "customer_card")
    assert sorted(f.name for s in form.sections for f in s.fields) == sorted(
        ["name", "phone", "id_card", "email", "address", "birthday", "status", "suspended_at", "plan", "balance",
         "monthly_spend", "joined", "tier", "vip_card", "manager", "notes"])
    assert comments(text) == comments(source(path))
    assert format_source(text) == (text, [])
