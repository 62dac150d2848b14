"""The picture of a workflow: every state once, every transition as one arrow per state it leaves from."""
from __future__ import annotations

from pathlib import Path

from compiler import compile_project
from compiler.workflow_graph import to_dot

REPO = Path(__file__).resolve().parent.parent


def test_the_complaint_workflow_picture_has_every_state_and_transition():
    bundle = compile_project([REPO / "flows", REPO / "schemas"]).bundle
    workflow = bundle.workflows["complaint"]
    dot = to_dot(workflow)
    assert dot.startswith('digraph "complaint" {')
    for state in workflow.states:
        assert dot.count(f'  "{state.name}" [label=') == 1
    assert '"start new" -> "new";' in dot
    assert '"closed" [label="已关闭\\nclosed", peripheries=2];' in dot
    assert '"waiting_customer" [label="等待客户\\nwaiting_customer", style="rounded,dashed"];' in dot
    assert '"assigned" -> "in_progress" [label="开始处理\\n(agent, team_lead)"];' in dot
    assert '"assigned" -> "assigned" [label="改派\\n(team_lead, supervisor)"];' in dot
    assert '"in_progress" -> "assigned" [label="改派\\n(team_lead, supervisor)"];' in dot
    assert dot.count(" -> ") == 1 + sum(len(t.sources) for t in workflow.transitions)


def test_names_and_titles_with_quotes_stay_inside_their_labels():
    from compiler import ir

    workflow = ir.Workflow(name="w", entity="Ticket", states=[
        ir.WorkflowState(name="a", title='说 "好"', initial=True), ir.WorkflowState(name="b", final=True)],
        transitions=[ir.Transition(name="go", title='"走"', sources=["a"], dest="b")])
    dot = to_dot(workflow)
    assert '"a" [label="说 \\"好\\"\\na"];' in dot
    assert '"a" -> "b" [label="\\"走\\""];' in dot
