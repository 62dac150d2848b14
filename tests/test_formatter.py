"""The canonical formatter: one layout per construct, comments kept in order, formatting twice
changes nothing, and the formatted file means what the original meant."""
from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from dsl.formatter import format_module, format_source
from dsl.parser import parse
from dsl.shape import shape

ROOT = Path(__file__).resolve().parents[1]
_STRING_OR_COMMENT = re.compile(r'"(?:[^"\\\n]|\\.)*"|#[^\n]*')


def comments_in(text: str) -> list[str]:
    """The `#` comments of a source, in order (a `#` inside quotes is text, not a comment)."""
    return [m.group().rstrip() for m in _STRING_OR_COMMENT.finditer(text) if m.group().startswith("#")]


def check_formatting(text: str, path: str = "case.flow") -> str:
    """Formats `text` and checks the three promises of the formatter; returns the formatted text."""
    formatted, diagnostics = format_source(text, path)
    assert diagnostics == [] and formatted is not None, diagnostics
    again, _ = format_source(formatted, path)
    assert again == formatted, f"not idempotent:\n{formatted}\n---\n{again}"
    assert shape(parse(formatted, path).module) == shape(parse(text, path).module), formatted
    assert comments_in(formatted) == comments_in(text), formatted
    return formatted


def fmt(text: str) -> str:
    return check_formatting(textwrap.dedent(text))


def expected(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def in_flow(*statements: str) -> str:
    body = "".join(f"    {line}\n" for s in statements for line in s.splitlines())
    return f"flow f {{\n{body}}}\n"


# ------------------------------------------------------------------ declarations

def test_imports_come_first_and_declarations_are_one_blank_line_apart():
    assert fmt('queue a { strategy skills }  import "x.flow"\n\n\n\nqueue b {}\nimport "y.schema"') == expected("""
        import "x.flow"
        import "y.schema"

        queue a {
            strategy skills
        }

        queue b {}
    """)


def test_hours_items_one_per_line():
    assert fmt('''hours office "营业时间" { timezone "Asia/Shanghai" mon-fri 08:00-20:00 sat,sun 09:00-12:00,13:00-17:00
                  closed 2026-10-01..2026-10-07 "国庆节" closed 2026-05-01 open 2026-09-27 09:00-17:00 "调休"
                  holidays "holidays/cn-2026.yaml" }''') == expected("""
        hours office "营业时间" {
            timezone "Asia/Shanghai"
            mon-fri 08:00-20:00
            sat, sun 09:00-12:00, 13:00-17:00
            closed 2026-10-01..2026-10-07 "国庆节"
            closed 2026-05-01
            open 2026-09-27 09:00-17:00 "调休"
            holidays "holidays/cn-2026.yaml"
        }
    """)


def test_queue_items_with_canonical_durations():
    assert fmt('''queue vip "VIP" { strategy skills skills vip>=2,billing priority 10 music "vip"
                  announce position every 60s max wait 180s then voicemail "vip" ring timeout 15s
                  wrapup 1500ms service level 80.5% within 20s }
                  queue b { max wait 90s then queue vip }  queue c { max wait 1h then callback }
                  queue d { max wait 0s then hangup }  queue e { max wait 3600s then voicemail }''') == expected("""
        queue vip "VIP" {
            strategy skills
            skills vip >= 2, billing
            priority 10
            music "vip"
            announce position every 1m
            max wait 3m then voicemail "vip"
            ring timeout 15s
            wrapup 1500ms
            service level 80.5% within 20s
        }

        queue b {
            max wait 1m30s then queue vip
        }

        queue c {
            max wait 1h then callback
        }

        queue d {
            max wait 0s then hangup
        }

        queue e {
            max wait 1h then voicemail
        }
    """)


def test_agent():
    assert fmt('agent zhang "张伟" { extension "1001" roles agent,account_manager skills vip 3,billing 2 queues vip }') \
        == expected("""
        agent zhang "张伟" {
            extension "1001"
            roles agent, account_manager
            skills vip 3, billing 2
            queues vip
        }
    """)


def test_entity_fields_types_and_options_keep_their_order():
    assert fmt('''entity Customer "客户" { name: text label "姓名" required max 40
                  tier: enum(platinum "白金", gold) default gold  manager: ref AccountManager  tags: list of Tag
                  balance: money range -100..1000.50 default 0 unique renamed from amount }''') == expected("""
        entity Customer "客户" {
            name: text label "姓名" required max 40
            tier: enum(platinum "白金", gold) default gold
            manager: ref AccountManager
            tags: list of Tag
            balance: money range -100..1000.50 default 0 unique renamed from amount
        }
    """)


def test_form_fields_go_on_lines_of_their_own():
    assert fmt('''form card for Customer "资料" { section "基本" { name, phone, tier readonly }
                  section "VIP" when tier in [platinum, gold] { vip_card when tier == gold readonly } }''') == expected("""
        form card for Customer "资料" {
            section "基本" {
                name
                phone
                tier readonly
            }
            section "VIP" when tier in [platinum, gold] {
                vip_card readonly when tier == gold
            }
        }
    """)


def test_list_spells_out_the_sort_order():
    assert fmt("list customers for Customer { columns name, phone filters tier sort name search name,phone }") \
        == expected("""
        list customers for Customer {
            columns name, phone
            filters tier
            sort name asc
            search name, phone
        }
    """)


def test_workflow_items():
    assert fmt('''workflow complaint for Ticket "投诉" { hours office state new initial "新建"
                  state waiting "等待客户" paused  state closed final
                  transition assign "分派": new, waiting -> assigned by lead, boss when assignee != none {
                  notify assignee "新工单" assign user set priority = 1 }
                  transition close: assigned -> closed {}
                  sla first 4h from new until assigned, closed { at 80% escalate lead at 100% notify manager
                  remind assignee every 60m } }''') == expected("""
        workflow complaint for Ticket "投诉" {
            hours office
            state new initial "新建"
            state waiting paused "等待客户"
            state closed final
            transition assign "分派": new, waiting -> assigned by lead, boss when assignee != none {
                notify assignee "新工单"
                assign user
                set priority = 1
            }
            transition close: assigned -> closed
            sla first 4h from new until assigned, closed {
                at 80% escalate lead
                at 100% notify manager
                remind assignee every 1h
            }
        }
    """)


def test_state_flags_may_follow_the_title():
    module = parse('workflow w for T { state waiting "等待客户" paused final }').module
    state = module.declarations[0].items[0]
    assert (state.title, state.flags) == ("等待客户", ["paused", "final"])


def test_role_and_evaluation():
    assert fmt('''role manager "经理" { read,update Customer where manager.agent == user read Ticket }
                  evaluation inbound "质检" { call types inquiry "咨询", complaint
                  part attitude "态度" { item polite "礼貌" 10 item calm 5 } part skills not for inquiry {} }''') \
        == expected("""
        role manager "经理" {
            read, update Customer where manager.agent == user
            read Ticket
        }

        evaluation inbound "质检" {
            call types inquiry "咨询", complaint
            part attitude "态度" {
                item polite "礼貌" 10
                item calm 5
            }
            part skills not for inquiry {}
        }
    """)


# ------------------------------------------------------------------ flows

def test_flow_heads_then_statements_with_labels():
    assert fmt('''flow hotline "热线" { entry number env.HOTLINE var count: number = 0 var seen: bool
                  answer say "您好,欢迎致电。{caller}" play "sound/hello"  start: record
                  survey after subflow check goto start }''') == expected("""
        flow hotline "热线" {
            entry number env.HOTLINE
            var count: number = 0
            var seen: bool
            answer
            say "您好,欢迎致电。{caller}"
            play "sound/hello"
            start: record
            survey after
            subflow check
            goto start
        }
    """)


def test_menu():
    assert fmt(in_flow('main: menu { prompt "请按键" timeout 5s retries 2 1 "账单" -> billing',
                       '2 { say "x" goto main } "#" -> billing * -> main "10" -> main',
                       'on timeout { repeat } on invalid {} on failure -> done }')) == expected("""
        flow f {
            main: menu {
                prompt "请按键"
                timeout 5s
                retries 2
                1 "账单" -> billing
                2 {
                    say "x"
                    goto main
                }
                "#" -> billing
                * -> main
                "10" -> main
                on timeout {
                    repeat
                }
                on invalid {}
                on failure -> done
            }
        }
    """)


def test_collect():
    assert fmt(in_flow('collect acct: digits { prompt "输入" length 4..8 terminator "#" timeout 10s',
                       'retries 3 valid when len(acct) == 8 on invalid { repeat } on failure -> done }',
                       'collect pin: digits { length 4 }')) == expected("""
        flow f {
            collect acct: digits {
                prompt "输入"
                length 4..8
                terminator "#"
                timeout 10s
                retries 3
                valid when len(acct) == 8
                on invalid {
                    repeat
                }
                on failure -> done
            }
            collect pin: digits {
                length 4
            }
        }
    """)


def test_if_elif_else_join_the_closing_brace():
    assert fmt(in_flow('if a -> x elif b { hangup } elif c -> y else { say "no" }',
                       'if d { } else -> z',
                       'if e -> x')) == expected("""
        flow f {
            if a -> x elif b {
                hangup
            } elif c -> y else {
                say "no"
            }
            if d {} else -> z
            if e -> x
        }
    """)


def test_switch():
    assert fmt(in_flow('switch customer.tier { case platinum, gold -> vip case star { hangup } else -> done }',
                       'switch x { case 1 -> a }')) == expected("""
        flow f {
            switch customer.tier {
                case platinum, gold -> vip
                case star {
                    hangup
                }
                else -> done
            }
            switch x {
                case 1 -> a
            }
        }
    """)


def test_records():
    assert fmt(in_flow('lookup c = Customer where phone == caller else -> unknown',
                       'lookup d = Customer where id == 1 else { hangup }',
                       'lookup e = Customer where phone == caller',
                       'create t = Ticket { subject = "x", phone = caller, } create Log {}',
                       'update t.owner { status = open }')) == expected("""
        flow f {
            lookup c = Customer where phone == caller else -> unknown
            lookup d = Customer where id == 1 else {
                hangup
            }
            lookup e = Customer where phone == caller
            create t = Ticket {
                subject = "x"
                phone = caller
            }
            create Log {}
            update t.owner {
                status = open
            }
        }
    """)


def test_http():
    assert fmt(in_flow('bill: http b = GET env.API + "/bills/" + caller timeout 3s',
                       'header "Authorization" = "Bearer " + secret("T") body caller',
                       'returns { amount: money due: date kind: enum(a, b) } else -> failed',
                       'http p = POST url returns {} else { hangup }')) == expected("""
        flow f {
            bill: http b = GET env.API + "/bills/" + caller
                timeout 3s
                header "Authorization" = "Bearer " + secret("T")
                body caller
                returns {
                    amount: money
                    due: date
                    kind: enum(a, b)
                }
                else -> failed
            http p = POST url
                returns {}
                else {
                    hangup
                }
        }
    """)


def test_hand_over_statements():
    assert fmt(in_flow('enqueue vip prefer customer.manager.agent for 30s priority 5 enqueue general',
                       'transfer agent m.agent timeout 20s else { voicemail "box" callback }',
                       'transfer agent m.agent else -> done transfer number "10086"',
                       'voicemail "box" return hangup')) == expected("""
        flow f {
            enqueue vip priority 5 prefer customer.manager.agent for 30s
            enqueue general
            transfer agent m.agent timeout 20s else {
                voicemail "box" callback
            }
            transfer agent m.agent else -> done
            transfer number "10086"
            voicemail "box"
            return
            hangup
        }
    """)


# ------------------------------------------------------------------ expressions and literals

@pytest.mark.parametrize("written, canonical", [
    ("(a or b) and c", "(a or b) and c"),
    ("a or (b and c)", "a or b and c"),
    ("(a or b) or c", "a or b or c"),
    ("a or (b or c)", "a or (b or c)"),
    ("((a))", "a"),
    ("(a - b) - c", "a - b - c"),
    ("a - (b - c)", "a - (b - c)"),
    ("(a * b) + c", "a * b + c"),
    ("a * (b + c)", "a * (b + c)"),
    ("a / (b * c)", "a / (b * c)"),
    ("not (a and b)", "not (a and b)"),
    ("not (a == b)", "not a == b"),
    ("(not a) == b", "(not a) == b"),
    ("not not a", "not not a"),
    ("(a == b) == c", "(a == b) == c"),
    ("a != (b + 1)", "a != b + 1"),
    ("(a in [1]) in [true, false]", "(a in [1]) in [true, false]"),
    ("x not in [1, 2 + 3, (a or b)]", "x not in [1, 2 + 3, a or b]"),
    ("(a + b) in [1]", "a + b in [1]"),
    ("a - -1", "a - -1"),
    ("len((a)) >= 2 and open(office)", "len(a) >= 2 and open(office)"),
    ("f()", "f()"),
    ("90s + 1500ms", "1m30s + 1500ms"),
    ("2026-10-01", "2026-10-01"),
    ("none", "none"),
    ("1.50", "1.50"),
    ('"他说\\"你好\\"\\n"', '"他说\\"你好\\"\\n"'),
    ('"\\u4e2d\\t"', '"中\\t"'),
])
def test_expressions_get_only_the_parentheses_they_need(written, canonical):
    assert fmt(in_flow(f"set x = {written}")) == in_flow(f"set x = {canonical}")


# ------------------------------------------------------------------ comments

def test_comments_inside_menus_stay_inside():
    assert fmt(in_flow("menu {  # the main menu", "# billing", "1 -> billing  # one", "# 2 -> sales (closed)", "}",
                       "billing: hangup")) == expected("""
        flow f {
            menu {
                # the main menu
                # billing
                1 -> billing  # one
                # 2 -> sales (closed)
            }
            billing: hangup
        }
    """)


def test_comments_in_entity_bodies_between_declarations_and_at_the_end():
    assert fmt("""
        # customers
        entity Customer {  # people who call
            name: text  # full name
            # phone numbers
            phone: phone
            # more later
        }  # end of customer

        # tickets
        entity Ticket {}
        # the end
        # really
        """) == expected("""
        # customers
        entity Customer {
            # people who call
            name: text  # full name
            # phone numbers
            phone: phone
            # more later
        }  # end of customer

        # tickets
        entity Ticket {}

        # the end
        # really
    """)


def test_trailing_comments_on_lines_that_close_nested_blocks():
    assert fmt(in_flow("if a {", "    menu { 1 { hangup } }  # closes menu", "} else {  # otherwise",
                       "    hangup", "}  # closes if", "on_timeout: menu { on timeout { repeat } }  # short")) == expected("""
        flow f {
            if a {
                menu {
                    1 {
                        hangup
                    }
                }  # closes menu
            } else {
                # otherwise
                hangup
            }  # closes if
            on_timeout: menu {
                on timeout {
                    repeat
                }
            }  # short
        }
    """)


def test_comments_inside_one_line_constructs_move_above_them():
    assert fmt(in_flow("set x = a +  # first part", "    b", "if a  # why", "    -> x elif b -> y",
                       "tier_check: switch tier {", "case gold -> x", "# fallback", "else -> y", "}")) == expected("""
        flow f {
            # first part
            set x = a + b
            # why
            if a -> x elif b -> y
            tier_check: switch tier {
                case gold -> x
                # fallback
                else -> y
            }
        }
    """)


def test_comments_between_branches_go_to_the_next_block():
    assert fmt(in_flow("if a {", "    hangup", "}", "# when b", "elif b {", "    hangup", "}", "# otherwise",
                       "else -> x")) == expected("""
        flow f {
            if a {
                hangup
            } elif b {
                # when b
                hangup
                # otherwise
            } else -> x
        }
    """)


def test_comments_in_empty_bodies_open_them():
    assert fmt(in_flow("if a {", "    # nothing yet", "} else -> x", "transition_like: create T {", "# later",
                       "}")) == expected("""
        flow f {
            if a {
                # nothing yet
            } else -> x
            transition_like: create T {
                # later
            }
        }
    """)
    assert fmt("workflow w for T { transition t: a -> b {  # soon\n } }") == expected("""
        workflow w for T {
            transition t: a -> b {
                # soon
            }
        }
    """)


def test_comments_in_http_settings_and_returns():
    assert fmt(in_flow("http b = GET url  # the bill", "# slow server", "timeout 3s",
                       "returns { amount: money  # in yuan", "# due date", "due: date }", "# on error",
                       "else -> failed  # give up")) == expected("""
        flow f {
            http b = GET url
                # the bill
                # slow server
                timeout 3s
                returns {
                    amount: money  # in yuan
                    # due date
                    due: date
                }
                # on error
                else -> failed  # give up
        }
    """)


def test_comment_only_file_and_empty_file():
    assert fmt("# just a note\n\n# and another") == "# just a note\n# and another\n"
    assert fmt("") == ""
    assert fmt("   \n\n") == ""


def test_comments_survive_windows_line_ends_and_a_byte_order_mark():
    formatted, diagnostics = format_source("\ufeffqueue q {  # q\r\n  strategy skills # s\r\n}\r\n", "q.flow")
    assert diagnostics == []
    assert formatted == "queue q {\n    # q\n    strategy skills  # s\n}\n"


def test_texts_keep_chinese_readable_and_escape_what_editors_would_break():
    formatted = fmt(in_flow('say "\\u60a8好\\u2028\\u0085\\ud800 \\t"'))
    assert formatted == in_flow('say "您好\\u2028\\u0085\\ud800 \\t"')
    formatted.encode("utf-8")


def test_an_unknown_escape_leaves_the_others_alone():
    assert fmt(in_flow('say "a\\tb \\q"')) == in_flow('say "a\\tb q"')


def test_a_hash_inside_quotes_is_text():
    assert fmt(in_flow('menu { "#" -> x  # hash key', '}')) == in_flow('menu {', '    "#" -> x  # hash key', '}')


def test_comments_are_attached_to_the_nodes_they_describe():
    module = parse(in_flow("# greet", "say \"hi\"  # hello", "menu {", "1 -> x", "# spare", "}")).module
    say, menu = module.declarations[0].body
    assert (say.comments, say.trailing_comment) == (["# greet"], "# hello")
    assert menu.end_comments == ["# spare"]


# ------------------------------------------------------------------ blank lines, errors, depth

def test_one_blank_line_between_statements_is_kept():
    assert fmt("flow f {\n    answer\n\n\n\n    # part two\n    say \"x\"\n    hangup\n\n}") == expected("""
        flow f {
            answer

            # part two
            say "x"
            hangup
        }
    """)


def test_no_blank_lines_after_an_opening_brace():
    assert fmt("flow f {\n\n\n    answer\n\n}\n") == "flow f {\n    answer\n}\n"


def test_syntax_errors_come_back_as_diagnostics():
    formatted, diagnostics = format_source("flow f { say }", "bad.flow")
    assert formatted is None
    assert [(d.code, d.file, d.pos.line) for d in diagnostics] == [("E103", "bad.flow", 1)]


def test_deep_nesting_and_long_chains_format_without_running_out_of_stack():
    depth = 1500
    text = "flow f {\n" + "if a {\n" * depth + "hangup  # deep\n" + "}\n" * depth + "}\n"
    formatted, diagnostics = format_source(text, "deep.flow")
    assert diagnostics == [] and formatted.count("if a {") == depth
    assert "    " * (depth + 1) + "hangup  # deep" in formatted
    chain = " or ".join(f"x{i}" for i in range(3000))
    formatted, _ = format_source(in_flow(f"set y = {chain}", "set z = " + "not " * 2000 + "w"), "long.flow")
    assert f"set y = {chain}\n" in formatted and "set z = " + "not " * 2000 + "w\n" in formatted


def test_format_module_prints_a_tree_built_in_code():
    from dsl import ast

    module = ast.Module(path="m.flow", imports=[], declarations=[
        ast.Flow(name="f", entries=[], variables=[], body=[
            ast.Set(target=ast.Ref(parts=["x"]), value=ast.Binary(op="*", left=ast.Binary(
                op="+", left=ast.Literal(kind="number", value=1), right=ast.Ref(parts=["y"])),
                right=ast.Literal(kind="duration", value=90_000))),
            ast.Hangup(label="done")])])
    assert format_module(module) == in_flow("set x = (1 + y) * 1m30s", "done: hangup")


def test_comments_travel_with_imports_moved_to_the_top():
    formatted, _ = format_source('queue a {}\n# needs x\nimport "x.flow"  # x\n', "a.flow")
    assert formatted == '# needs x\nimport "x.flow"  # x\n\nqueue a {}\n'


# ------------------------------------------------------------------ the project's own files

PROJECT_FILES = sorted(p for folder in ("flows", "schemas") for p in (ROOT / folder).rglob("*")
                       if p.suffix in (".flow", ".schema"))


@pytest.mark.skipif(not PROJECT_FILES, reason="flows/ and schemas/ hold no files yet")
@pytest.mark.parametrize("path", PROJECT_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_project_files_format_idempotently_and_keep_their_meaning(path):
    check_formatting(path.read_text(encoding="utf-8"), str(path))


def _parsing(paths):
    for path in paths:
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        if parse(text, str(path)).module is not None:
            yield path


# The diagnostics cases are small real programs (their mistakes are mostly past the parser).
DIAGNOSTIC_CASES = sorted(_parsing(p for p in (ROOT / "tests" / "golden" / "diagnostics").rglob("*")
                                   if p.suffix in (".flow", ".schema")))


@pytest.mark.parametrize("path", DIAGNOSTIC_CASES, ids=lambda p: str(p.relative_to(ROOT)))
def test_diagnostic_cases_format_idempotently_and_keep_their_meaning(path):
    check_formatting(path.read_text(encoding="utf-8"), str(path))
