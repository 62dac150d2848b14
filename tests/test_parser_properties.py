"""Properties of the parser and the formatter over generated input.

- Whatever text the parser is given (random, or a valid file damaged at random), it returns a
  ParseResult: a module, or diagnostics that point inside the text.  It never raises.
- Programs generated as syntax trees (flows with nested menus, ifs and switches, entities,
  queues, hours, workflows ...) print to text that parses back to the same tree, and comments
  added anywhere between their tokens survive formatting in order.
"""
from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from dsl import ast
from dsl.formatter import format_module, format_source
from dsl.parser import GRAMMAR, ParseResult, parse
from dsl.shape import shape

ROOT = Path(__file__).resolve().parents[1]

# ------------------------------------------------------------------ the parser never raises

SEED = '''import "../schemas/crm.schema"
# hotline
hours office "营业时间" { timezone "Asia/Shanghai" mon-fri 08:00-20:00 closed 2026-10-01..2026-10-07 "国庆节" }
queue vip "VIP" { strategy skills skills vip >= 2 max wait 180s then callback service level 80% within 20s }
agent zhang "张伟" { extension "1001" roles agent skills vip 3 queues vip }
flow hotline "客服热线" {
    entry number env.HOTLINE
    var count: number = 0
    answer
    lookup customer = Customer where phone == caller else -> unknown
    main: menu {  # main menu
        prompt "您好 {customer.name},请按键"
        1 "账单" -> billing
        2 { set count = (count + 1) * 2 goto main }
        "#" -> unknown
        on timeout { repeat }
        on failure -> unknown
    }
    billing: http bill = GET env.API + "/b/" + caller timeout 3s returns { amount: money } else -> unknown
    if not open(office) or count > 3 -> unknown elif customer.tier in [gold] { enqueue vip priority 5 }
    switch customer.tier { case gold, star -> unknown else { transfer agent customer.manager.agent else -> unknown } }
    unknown: voicemail "box" callback
}
entity Customer "客户" { name: text required max 40 tier: enum(gold "金卡", star) default star manager: ref M }
form card for Customer { section "基本" when tier == gold { name, tier readonly } }
list customers for Customer { columns name sort name desc }
workflow w for Ticket { hours office state new initial "新建" state done "完成" final
    transition close "关闭": new -> done by lead when x != none { notify assignee "好" set a = 1 }
    sla s 4h from new until done { at 80% escalate lead remind assignee every 1h } }
role r { read, update Customer where manager.agent == user }
evaluation e { call types inquiry "咨询", complaint part p "态度" not for inquiry { item polite "礼貌" 10 } }
'''

SEEDS = [SEED] + [p.read_text(encoding="utf-8", errors="replace")
                  for folder in ("flows", "schemas", "tests/golden/diagnostics")
                  for p in sorted((ROOT / folder).rglob("*")) if p.suffix in (".flow", ".schema")]

PIECES = ["{", "}", "->", '"', "'", ":", ",", "..", "==", "(", ")", "[", "]", "#", "\n", " ", "\t", "\r",
          "\\", "menu", "say", "if", "else", "elif", "case", "on", "timeout", "state", "transition", "flow",
          "entity", "1", "*", "-", "30s", "80%", "08:00", "2026-10-01", "您好", "é", "\u2028", "\x0c", "\ufeff"]


@st.composite
def damaged_source(draw) -> str:
    text = draw(st.sampled_from(SEEDS))
    for _ in range(draw(st.integers(1, 5))):
        at = draw(st.integers(0, len(text)))
        action = draw(st.sampled_from(["insert", "delete", "duplicate", "swap words", "drop word"]))
        if action == "insert":
            text = text[:at] + draw(st.sampled_from(PIECES) | st.text(max_size=4)) + text[at:]
        elif action == "delete":
            text = text[:at] + text[at + draw(st.integers(1, 15)):]
        elif action == "duplicate":
            end = min(len(text), at + draw(st.integers(1, 60)))
            text = text[:end] + text[at:end] + text[end:]
        else:
            words = re.split(r"(\s+)", text)  # words at even places, the spaces between at odd ones
            if len(words) > 3:
                i = draw(st.integers(0, (len(words) - 3) // 2)) * 2
                if action == "swap words":
                    words[i], words[i + 2] = words[i + 2], words[i]
                else:
                    words[i] = ""
                text = "".join(words)
    return text


def check_parse(text: str) -> ParseResult:
    result = parse(text, "case.flow")
    assert isinstance(result, ParseResult)
    assert isinstance(result.module, ast.Module) != bool(result.diagnostics)
    lines = text.split("\n")  # lark counts lines by "\n" alone, and so must every diagnostic
    for d in result.diagnostics:
        assert d.file == "case.flow" and d.code.startswith("E"), d
        assert 1 <= d.pos.line <= len(lines), (d, text)
        assert 1 <= d.pos.column <= len(lines[d.pos.line - 1]) + 1, (d, text)
    return result


def test_end_of_file_errors_count_lines_as_the_parser_does():
    text = "# a\x0cb\rc\nflow f {"
    (d,) = parse(text, "case.flow").diagnostics
    assert (d.code, d.pos.line, d.pos.column) == ("E102", 2, 9)


@settings(max_examples=300, deadline=None)
@given(damaged_source())
def test_damaged_sources_end_in_a_module_or_diagnostics_inside_the_text(text):
    result = check_parse(text)
    if result.module is not None:
        # Damage that still parses makes odd but valid programs: formatting must hold for them too.
        formatted = format_module(result.module)
        assert format_source(formatted, "case.flow")[0] == formatted
        assert shape(parse(formatted, "case.flow").module) == shape(result.module)
        assert [c.rstrip() for c in comments_in(text)] == comments_in(formatted)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=120) | st.lists(st.sampled_from(PIECES), max_size=30).map("".join))
def test_random_text_ends_in_a_module_or_diagnostics_inside_the_text(text):
    check_parse(text)


# ------------------------------------------------------------------ generated programs

KEYWORDS = set(re.findall(r'"([a-z]+)"', GRAMMAR.read_text(encoding="utf-8")))
names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,7}", fullmatch=True).filter(lambda n: n not in KEYWORDS)
texts = st.text(max_size=10)
maybe_text = st.none() | texts
ms = st.integers(0, 10 ** 8)
whole = st.integers(0, 10 ** 6)
numbers = st.from_regex(r"-?[0-9]{1,6}(\.[0-9]{1,3})?", fullmatch=True).map(Decimal)
percents = st.from_regex(r"[0-9]{1,3}(\.[0-9])?", fullmatch=True).map(Decimal)
# A date that does not exist stays the text written, for the compiler to report.
dates = st.dates() | st.sampled_from(["2026-02-30", "2026-13-01"])
clocks = st.from_regex(r"[0-9]{2}:[0-9]{2}", fullmatch=True)
days = st.sampled_from(["mon", "tue", "wed", "thu", "fri", "sat", "sun"])


def small_list(elements, min_size=0, max_size=3):
    return st.lists(elements, min_size=min_size, max_size=max_size)


def node(cls, **fields):
    return st.builds(cls, **fields)


literals = st.one_of(
    node(ast.Literal, kind=st.just("text"), value=texts),
    node(ast.Literal, kind=st.just("number"), value=numbers),
    node(ast.Literal, kind=st.just("duration"), value=ms),
    node(ast.Literal, kind=st.just("date"), value=dates),
    node(ast.Literal, kind=st.just("bool"), value=st.booleans()),
    node(ast.Literal, kind=st.just("none"), value=st.none()),
)
refs = node(ast.Ref, parts=small_list(names, 1, 3))


def _compound(inner):
    return st.one_of(
        node(ast.Binary, op=st.sampled_from(["or", "and", "==", "!=", "<", "<=", ">", ">=", "+", "-", "*", "/"]),
             left=inner, right=inner),
        node(ast.Not, operand=inner),
        node(ast.In, subject=inner, options=small_list(inner, 1), negated=st.booleans()),
        node(ast.Call, name=names, args=small_list(inner)),
    )


exprs = st.recursive(literals | refs, _compound, max_leaves=8)
maybe_expr = st.none() | exprs

type_refs = st.one_of(
    node(ast.TypeRef, kind=st.just("simple"), name=names),
    node(ast.TypeRef, kind=st.just("enum"), values=small_list(node(ast.EnumValue, name=names, label=maybe_text), 1)),
    node(ast.TypeRef, kind=st.sampled_from(["ref", "list"]), name=names),
)


def targets(depth: int):
    gotos = node(ast.GotoTarget, label=names)
    if depth <= 0:
        return gotos
    return gotos | node(ast.Block, statements=statements(depth - 1))


def settings_of(*keys):
    values = {
        "prompt": texts, "timeout": ms, "retries": whole, "terminator": texts, "valid": exprs, "body": exprs,
    }
    return st.one_of(*(node(ast.Setting, key=st.just(k), value=values[k]) for k in keys))


def handlers(depth: int):
    return node(ast.EventHandler, event=st.sampled_from(["timeout", "invalid", "failure"]), target=targets(depth))


def menu_items(depth: int):
    keys = st.sampled_from(list("0123456789*#")) | st.text(max_size=3)
    return st.one_of(settings_of("prompt", "timeout", "retries"), handlers(depth),
                     node(ast.MenuOption, key=keys, title=maybe_text, target=targets(depth)))


def collect_items(depth: int):
    lengths = st.builds(lambda low, high: ast.Setting(key="length", value=low, value2=high), whole, st.none() | whole)
    return st.one_of(settings_of("prompt", "timeout", "retries", "terminator", "valid"), lengths, handlers(depth))


http_items = st.one_of(
    settings_of("timeout", "body"),
    st.builds(lambda name, value: ast.Setting(key="header", value=name, value2=value), texts, exprs),
    st.builds(lambda fields: ast.Setting(key="returns", value=fields),
              small_list(node(ast.HttpField, name=names, type=type_refs))),
)


@st.composite
def enqueues(draw):
    prefer = draw(maybe_expr)
    return ast.Enqueue(queue=draw(names), priority=draw(st.none() | whole), prefer=prefer,
                       prefer_for_ms=draw(ms) if prefer is not None else None)


def statement(depth: int):
    simple = st.one_of(
        node(ast.Answer), node(ast.Say, text=texts), node(ast.Play, sound=texts),
        node(ast.Set, target=refs, value=exprs), node(ast.Update, target=refs, fields=assignments),
        node(ast.Create, var=st.none() | names, entity=names, fields=assignments), enqueues(),
        node(ast.TransferNumber, number=exprs), node(ast.Voicemail, box=texts, callback=st.booleans()),
        node(ast.Record), node(ast.Survey, flow=names), node(ast.Goto, target_label=names),
        node(ast.Subflow, flow=names), node(ast.Return), node(ast.Repeat), node(ast.Hangup),
        node(ast.Lookup, var=names, entity=names, where=exprs, otherwise=st.none() | targets(0)),
    )
    if depth <= 0:
        return st.tuples(st.none() | names, simple).map(_labelled)
    nested = st.one_of(
        node(ast.Menu, items=small_list(menu_items(depth))),
        node(ast.Collect, var=names, type=names, items=small_list(collect_items(depth))),
        node(ast.If, branches=small_list(node(ast.Branch, condition=exprs, target=targets(depth)), 1),
             otherwise=st.none() | targets(depth)),
        node(ast.Switch, subject=exprs, otherwise=st.none() | targets(depth),
             cases=small_list(node(ast.Case, values=small_list(exprs, 1), target=targets(depth)))),
        node(ast.Lookup, var=names, entity=names, where=exprs, otherwise=st.none() | targets(depth)),
        node(ast.Http, var=names, method=st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE"]), url=exprs,
             items=small_list(http_items), otherwise=targets(depth)),
        node(ast.TransferAgent, agent=exprs, timeout_ms=st.none() | ms, otherwise=targets(depth)),
    )
    # Half of the statements hold blocks, so that nesting is common and not drowned by simple ones.
    return st.tuples(st.none() | names, st.booleans().flatmap(lambda deep: nested if deep else simple)).map(_labelled)


def _labelled(pair):
    label, stmt = pair
    stmt.label = label
    return stmt


assignments = small_list(node(ast.FieldAssign, name=names, value=exprs))


def statements(depth: int):
    return small_list(statement(depth), 1 if depth > 0 else 0)


flows = node(ast.Flow, name=names, title=maybe_text, entries=small_list(node(ast.FlowEntry, number=exprs), max_size=2),
             variables=small_list(node(ast.FlowVar, name=names, type=type_refs, initial=maybe_expr), max_size=2),
             body=statements(3))

skill_needs = small_list(node(ast.SkillNeed, skill=names, level=st.none() | whole), 1)
overflows = st.one_of(node(ast.Overflow, kind=st.just("voicemail"), target=maybe_text),
                      node(ast.Overflow, kind=st.just("queue"), target=names),
                      node(ast.Overflow, kind=st.sampled_from(["callback", "hangup"])))


def _item(cls, key, value, value2=st.none()):
    return node(cls, key=st.just(key), value=value, value2=value2)


queue_items = st.one_of(
    _item(ast.QueueItem, "strategy", names), _item(ast.QueueItem, "skills", skill_needs),
    _item(ast.QueueItem, "priority", whole), _item(ast.QueueItem, "music", texts),
    _item(ast.QueueItem, "announce", names, ms), _item(ast.QueueItem, "max_wait", ms, overflows),
    _item(ast.QueueItem, "ring_timeout", ms), _item(ast.QueueItem, "wrapup", ms),
    _item(ast.QueueItem, "service_level", percents, ms),
)
queues = node(ast.Queue, name=names, title=maybe_text, items=small_list(queue_items, max_size=5))

agent_items = st.one_of(
    node(ast.AgentItem, key=st.just("extension"), value=texts),
    node(ast.AgentItem, key=st.sampled_from(["roles", "queues"]), value=small_list(names, 1)),
    node(ast.AgentItem, key=st.just("skills"), value=small_list(node(ast.SkillNeed, skill=names, level=whole), 1)),
)
agents = node(ast.Agent, name=names, title=maybe_text, items=small_list(agent_items))

time_ranges = small_list(node(ast.TimeRange, start=clocks, end=clocks), 1)
hours_items = st.one_of(
    node(ast.HoursItem, kind=st.sampled_from(["timezone", "holidays"]), text=texts),
    node(ast.HoursItem, kind=st.just("weekly"), ranges=time_ranges,
         days=small_list(node(ast.DayRange, first=days, last=st.none() | days), 1)),
    node(ast.HoursItem, kind=st.just("closed"), first=dates, last=st.none() | dates, note=maybe_text),
    node(ast.HoursItem, kind=st.just("open"), first=dates, last=st.none() | dates, ranges=time_ranges,
         note=maybe_text),
)
hours = node(ast.Hours, name=names, title=maybe_text, items=small_list(hours_items, max_size=4))

field_options = st.one_of(
    node(ast.FieldOption, key=st.sampled_from(["required", "unique"])),
    node(ast.FieldOption, key=st.just("default"), value=exprs),
    node(ast.FieldOption, key=st.just("max"), value=whole),
    node(ast.FieldOption, key=st.just("range"), value=numbers, value2=numbers),
    node(ast.FieldOption, key=st.just("label"), value=texts),
    node(ast.FieldOption, key=st.just("renamed"), value=names),
)
entities = node(ast.Entity, name=names, title=maybe_text,
                fields=small_list(node(ast.FieldDecl, name=names, type=type_refs, options=small_list(field_options))))

form_fields = node(ast.FormField, name=names, readonly=st.booleans(), when=maybe_expr)
forms = node(ast.Form, name=names, entity=names, title=maybe_text,
             sections=small_list(node(ast.FormSection, title=texts, when=maybe_expr, fields=small_list(form_fields, 1))))

list_items = st.one_of(
    node(ast.ListItem, key=st.sampled_from(["columns", "filters", "search"]), value=small_list(names, 1)),
    node(ast.ListItem, key=st.just("sort"), value=names, value2=st.sampled_from(["asc", "desc"])),
)
lists = node(ast.ListView, name=names, entity=names, title=maybe_text, items=small_list(list_items))

workflow_actions = st.one_of(
    node(ast.WorkflowAction, kind=st.just("assign"), value=exprs),
    node(ast.WorkflowAction, kind=st.just("notify"), value=exprs, value2=maybe_text),
    node(ast.WorkflowAction, kind=st.just("set"), value=names, value2=exprs),
)
sla_rules = st.one_of(
    node(ast.SlaRule, kind=st.just("escalate"), percent=percents, who=names),
    node(ast.SlaRule, kind=st.just("notify"), percent=percents, who=exprs),
    node(ast.SlaRule, kind=st.just("remind"), who=exprs, every_ms=ms),
)
workflow_items = st.one_of(
    node(ast.WorkflowItem, kind=st.just("hours"), name=names),
    node(ast.WorkflowItem, kind=st.just("state"), name=names, title=maybe_text,
         flags=small_list(st.sampled_from(["initial", "final", "paused"]))),
    node(ast.WorkflowItem, kind=st.just("transition"), name=names, title=maybe_text, sources=small_list(names, 1),
         dest=names, roles=small_list(names), guard=maybe_expr, actions=small_list(workflow_actions)),
    node(ast.WorkflowItem, kind=st.just("sla"), name=names, duration_ms=ms, sources=small_list(names, 1, 1),
         flags=small_list(names, 1), rules=small_list(sla_rules)),
)
workflows = node(ast.Workflow, name=names, entity=names, title=maybe_text, items=small_list(workflow_items, max_size=5))

permissions = node(ast.Permission, access=small_list(st.sampled_from(["read", "create", "update", "delete"]), 1),
                   entity=names, where=maybe_expr)
roles = node(ast.Role, name=names, title=maybe_text, permissions=small_list(permissions))

eval_parts = node(ast.EvalPart, name=names, title=maybe_text, not_for=small_list(names),
                  items=small_list(node(ast.EvalItem, name=names, title=maybe_text, points=whole)))
evaluations = node(ast.Evaluation, name=names, title=maybe_text,
                   call_types=small_list(node(ast.EnumValue, name=names, label=maybe_text), 1), parts=small_list(eval_parts))

others = st.one_of(queues, agents, hours, entities, forms, lists, workflows, roles, evaluations)
# Flows have the most to get wrong, so every other declaration is one.
declarations = st.booleans().flatmap(lambda flow: flows if flow else others)
modules = node(ast.Module, path=st.just("gen.flow"), imports=small_list(node(ast.Import, path=texts), max_size=2),
               declarations=small_list(declarations, 1, 3))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(modules)
def test_generated_programs_print_to_text_that_parses_back_to_the_same_tree(module):
    text = format_module(module)
    result = parse(text, "gen.flow")
    assert result.diagnostics == [], (result.diagnostics, text)
    assert shape(result.module) == shape(module), text
    assert format_module(result.module) == text


# ------------------------------------------------------------------ comments anywhere

_STRING_OR_COMMENT = re.compile(r'"(?:[^"\\\n]|\\.)*"|#[^\n]*')


def comments_in(text: str) -> list[str]:
    return [m.group() for m in _STRING_OR_COMMENT.finditer(text) if m.group().startswith("#")]


def gaps(text: str) -> list[int]:
    """Offsets of the spaces and line ends between tokens (not inside quotes or comments)."""
    taken = {i for m in _STRING_OR_COMMENT.finditer(text) for i in range(m.start(), m.end())}
    return [i for i, c in enumerate(text) if c in " \n" and i not in taken]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(modules, st.data())
def test_comments_between_any_tokens_are_kept_in_order(module, data):
    text = format_module(module)
    spots = gaps(text)
    chosen = sorted(data.draw(st.lists(st.sampled_from(spots), max_size=8)) if spots else [], reverse=True)
    for n, at in enumerate(chosen):
        text = text[:at] + f"  # note {n} {{\n" + text[at:]
    formatted, diagnostics = format_source(text, "gen.flow")
    assert diagnostics == [], text
    assert comments_in(formatted) == comments_in(text), (text, formatted)
    assert format_source(formatted, "gen.flow")[0] == formatted, formatted
    assert shape(parse(formatted, "gen.flow").module) == shape(module)


def test_generated_names_avoid_every_keyword():
    assert {"timeout", "label", "state", "none", "in", "not"} <= KEYWORDS
