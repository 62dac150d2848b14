"""The complaint workflow of the example: every transition, its actions, and every kind of refusal."""
from __future__ import annotations

import datetime

import pytest

from compiler import compile_project, ir
from runtime.crm.users import SYSTEM, User, users_from_bundle
from runtime.crm.workflows import Fired, TransitionRefused, expr_text, fire, transitions_for

NOW = datetime.datetime(2026, 3, 2, 9, 0, tzinfo=datetime.timezone.utc)
TEAM_LEADS = ["zhao_min", "zhou_qiang"]


@pytest.fixture(scope="module")
def bundle():
    return compile_project(["flows", "schemas"]).bundle


@pytest.fixture(scope="module")
def people(bundle):
    return users_from_bundle(bundle)


def ticket(state="new", **fields):
    row = {"id": 7, "state": state, "assignee": None, "priority": "normal", "resolution": None,
           "satisfied": None, "customer": None, "description": None}
    row.update(fields)
    return row


def move(bundle, people, row, name, who):
    return fire(bundle, "Ticket", row, name, people[who], NOW)


def refused(bundle, people, row, name, who):
    with pytest.raises(TransitionRefused) as caught:
        move(bundle, people, row, name, who)
    return str(caught.value)


# ------------------------------------------------------------------ each transition

def test_team_lead_assigns_and_the_assignee_is_told(bundle, people):
    done = move(bundle, people, ticket(assignee="wang_fang"), "assign", "zhao_min")
    assert done == Fired({"state": "assigned"}, [("wang_fang", "您有一张新的投诉工单,请在 4 个工作小时内首次响应")])


def test_assign_needs_an_assignee_and_a_lead(bundle, people):
    assert refused(bundle, people, ticket(), "assign", "zhao_min") == "分派 needs assignee != none"
    assert refused(bundle, people, ticket(assignee="wang_fang"), "assign", "li_na") == \
        "李娜 (坐席) may not 分派 工单: only 班组长, 值班主管 may"


def test_an_agent_takes_an_unassigned_ticket(bundle, people):
    done = move(bundle, people, ticket(), "take", "li_na")
    assert done == Fired({"assignee": "li_na", "state": "assigned"}, [])
    assert refused(bundle, people, ticket(assignee="wang_fang"), "take", "li_na") == "领取 needs assignee == none"
    assert refused(bundle, people, ticket(), "take", "sun_li").startswith("孙丽 (质检员) may not 领取 工单")


def test_reassign_from_assigned_or_in_progress(bundle, people):
    for state in ("assigned", "in_progress"):
        done = move(bundle, people, ticket(state, assignee="liu_yang"), "reassign", "zhou_qiang")
        assert done == Fired({"state": "assigned"}, [("liu_yang", "一张投诉工单已改派给您")])
    assert refused(bundle, people, ticket("new", assignee="liu_yang"), "reassign", "zhou_qiang") == \
        "工单 is 新建; 改派 needs 已分派 or 处理中"


def test_only_the_assignee_starts(bundle, people):
    assert move(bundle, people, ticket("assigned", assignee="li_na"), "start", "li_na") == Fired({"state": "in_progress"})
    assert refused(bundle, people, ticket("assigned", assignee="li_na"), "start", "wang_fang") == \
        "开始处理 needs assignee == user"
    assert refused(bundle, people, ticket("resolved", assignee="li_na"), "start", "li_na") == \
        "工单 is 已解决; 开始处理 needs 已分派"


def test_waiting_for_the_customer_and_back(bundle, people):
    assert move(bundle, people, ticket("in_progress"), "wait", "li_na").changes == {"state": "waiting_customer"}
    assert move(bundle, people, ticket("waiting_customer"), "resume", "zhao_min").changes == {"state": "in_progress"}
    assert refused(bundle, people, ticket("waiting_customer"), "wait", "li_na") == "工单 is 等待客户; 等待客户 needs 处理中"


def test_resolving_needs_a_resolution_and_tells_every_team_lead(bundle, people):
    done = move(bundle, people, ticket("in_progress", assignee="li_na", resolution="已退费"), "resolve", "li_na")
    assert done.changes == {"state": "resolved"}
    assert done.notifications == [(lead, "投诉工单已解决,请安排回访") for lead in TEAM_LEADS]
    assert refused(bundle, people, ticket("in_progress"), "resolve", "li_na") == "解决 needs resolution != none"


def test_reopening_raises_the_priority_and_tells_the_assignee(bundle, people):
    row = ticket("resolved", assignee="li_na", resolution="已退费", satisfied=False)
    done = move(bundle, people, row, "reopen", "zhao_min")
    assert done == Fired({"priority": "high", "state": "in_progress"}, [("li_na", "客户对处理结果不满意,请二次处理")])
    assert refused(bundle, people, ticket("resolved", satisfied=None), "reopen", "zhao_min") == \
        "二次处理 needs satisfied == false"
    assert "may not 二次处理" in refused(bundle, people, row, "reopen", "li_na")


def test_closing_needs_a_satisfied_customer(bundle, people):
    assert move(bundle, people, ticket("resolved", satisfied=True), "close", "zhou_qiang").changes == {"state": "closed"}
    assert refused(bundle, people, ticket("resolved", satisfied=False), "close", "zhou_qiang") == \
        "关闭 needs satisfied == true"
    assert refused(bundle, people, ticket("closed", satisfied=True), "close", "zhou_qiang") == \
        "工单 is 已关闭; 关闭 needs 已解决"


def test_a_whole_complaint_from_new_to_closed(bundle, people):
    row = ticket()
    steps = [("take", "wang_fang"), ("start", "wang_fang"), ("wait", "wang_fang"), ("resume", "wang_fang")]
    for name, who in steps:
        row.update(move(bundle, people, row, name, who).changes)
    row["resolution"] = "已补偿"
    row.update(move(bundle, people, row, "resolve", "wang_fang").changes)
    row["satisfied"] = False
    row.update(move(bundle, people, row, "reopen", "zhao_min").changes)
    row.update(move(bundle, people, row, "resolve", "wang_fang").changes)
    row["satisfied"] = True
    row.update(move(bundle, people, row, "close", "zhao_min").changes)
    assert (row["state"], row["assignee"], row["priority"]) == ("closed", "wang_fang", "high")
    assert transitions_for(bundle, "Ticket", row, people["zhou_qiang"]) == []


# ------------------------------------------------------------------ buttons and odd cases

def names(transitions):
    return [t.name for t in transitions]


def test_buttons_follow_state_and_roles(bundle, people):
    assert names(transitions_for(bundle, "Ticket", ticket(), people["li_na"])) == ["take"]
    assert names(transitions_for(bundle, "Ticket", ticket(), people["zhao_min"])) == ["assign", "take"]
    assert names(transitions_for(bundle, "Ticket", ticket(), people["sun_li"])) == []
    assert names(transitions_for(bundle, "Ticket", ticket("resolved"), people["zhou_qiang"])) == ["reopen", "close"]
    assert names(transitions_for(bundle, "Ticket", ticket("in_progress"), SYSTEM)) == ["reassign", "wait", "resolve"]


def test_unknown_transition_and_entity_without_workflow(bundle, people):
    assert refused(bundle, people, ticket(), "escalate", "zhao_min").startswith(
        "工单 has no transition 'escalate' (there are: assign, take")
    with pytest.raises(TransitionRefused, match="^客户 has no workflow$"):
        fire(bundle, "Customer", {"id": 1}, "take", people["li_na"], NOW)


def with_transition(bundle, name, **changes):
    workflow = bundle.workflows["complaint"]
    transitions = [t.model_copy(update=changes) if t.name == name else t for t in workflow.transitions]
    changed = workflow.model_copy(update={"transitions": transitions})
    return bundle.model_copy(update={"workflows": {**bundle.workflows, "complaint": changed}})


def test_without_by_anyone_who_may_update_the_ticket(bundle, people):
    open_wait = with_transition(bundle, "wait", roles=[])
    assert fire(open_wait, "Ticket", ticket("in_progress"), "wait", people["liu_yang"], NOW).changes["state"] == "waiting_customer"
    with pytest.raises(TransitionRefused, match=r"^孙丽 \(质检员\) may not 等待客户 工单: only those who may update it may$"):
        fire(open_wait, "Ticket", ticket("in_progress"), "wait", people["sun_li"], NOW)


def var(type_, *path):
    return ir.Var(type=type_, path=["@record", *path])


def test_a_failed_guard_names_the_part_that_failed(bundle, people):
    guard = ir.Op(type="bool", op="and", args=[
        ir.Op(type="bool", op="!=", args=[var("text", "resolution"), ir.Const(type="none", value=None)]),
        ir.Op(type="bool", op="in", args=[var("enum:Ticket.priority", "priority"),
                                          ir.Const(type="enum:Ticket.priority", value="high"),
                                          ir.Const(type="enum:Ticket.priority", value="urgent")])])
    strict = with_transition(bundle, "resolve", guard=guard)
    with pytest.raises(TransitionRefused, match=r"^解决 needs priority in \[high, urgent\]$"):
        fire(strict, "Ticket", ticket("in_progress", resolution="好了"), "resolve", people["li_na"], NOW)
    done = fire(strict, "Ticket", ticket("in_progress", resolution="好了", priority="urgent"), "resolve", people["li_na"], NOW)
    assert done.changes == {"state": "resolved"}


def test_a_guard_that_cannot_be_evaluated_is_a_refusal(bundle, people):
    odd = with_transition(bundle, "wait", guard=var("text", "description"))
    with pytest.raises(TransitionRefused, match=r"^等待客户 needs description \(a condition must be true or false"):
        fire(odd, "Ticket", ticket("in_progress", description="x"), "wait", people["li_na"], NOW)


def test_guards_follow_references_when_given_a_fetch(bundle, people):
    vip_only = with_transition(bundle, "take", guard=ir.Op(type="bool", op="==", args=[
        var("enum:Customer.tier", "customer", "tier"), ir.Const(type="enum:Customer.tier", value="platinum")]))
    customers = {3: {"id": 3, "tier": "platinum", "manager": None}, 4: {"id": 4, "tier": "star", "manager": None}}
    fetch = lambda entity, record_id: customers.get(record_id) if entity == "Customer" else None  # noqa: E731
    assert fire(vip_only, "Ticket", ticket(customer=3), "take", people["li_na"], NOW, fetch).changes["state"] == "assigned"
    with pytest.raises(TransitionRefused, match="^领取 needs customer.tier == platinum$"):
        fire(vip_only, "Ticket", ticket(customer=4), "take", people["li_na"], NOW, fetch)


def test_expressions_read_as_written(bundle):
    where = bundle.roles["account_manager"].permissions[0].where
    assert expr_text(where) == "manager.agent == user and tier in [platinum, gold]"
    mixed = ir.Op(type="bool", op="and", args=[
        ir.Op(type="bool", op="or", args=[var("bool", "satisfied"), ir.Op(type="bool", op="not", args=[var("bool", "satisfied")])]),
        ir.Op(type="bool", op="==", args=[var("text", "description"), ir.Const(type="text", value='说 "好"')])])
    assert expr_text(mixed) == '(satisfied or not satisfied) and description == "说 \\"好\\""'
    assert expr_text(ir.Const(type="duration", value=5_400_000)) == "1h30m"
