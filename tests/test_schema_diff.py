"""The schema diff: which changes are safe, which could lose data, and what the user is told."""
from __future__ import annotations

import pytest

from compiler import compile_project, ir
from compiler import schema_diff as sd


def field(name, type_="text", **options) -> ir.EntityField:
    return ir.EntityField(name=name, type=type_, **options)


def entity(name, *fields, workflow=None) -> ir.Entity:
    return ir.Entity(name=name, fields=list(fields), workflow=workflow)


def choices(*names) -> list[ir.EnumChoice]:
    return [ir.EnumChoice(name=n) for n in names]


def plan_of(old_fields, new_fields, **kwargs) -> sd.SchemaPlan:
    return sd.diff({"Customer": entity("Customer", *old_fields)}, {"Customer": entity("Customer", *new_fields)},
                   **kwargs)


def kinds(plan: sd.SchemaPlan) -> list[str]:
    return [type(c).__name__ for c in plan.changes]


def test_nothing_deployed_adds_every_entity():
    plan = sd.diff(None, {"Customer": entity("Customer", field("name")), "Ticket": entity("Ticket")})
    assert kinds(plan) == ["AddEntity", "AddEntity"]
    assert [c.entity for c in plan.changes] == ["Customer", "Ticket"]
    assert not plan.lossy and not plan.problems


def test_the_same_schema_is_an_empty_plan():
    fields = [field("name", max_length=40, required=True), field("tier", "enum", choices=choices("gold"))]
    assert plan_of(fields, fields).empty


def test_labels_and_ranges_need_no_change():
    plan = plan_of([field("spend", "money", label="a", minimum="0", maximum="10")],
                   [field("spend", "money", label="b", minimum="0", maximum="5")])
    assert plan.empty


def test_added_field_with_default_fills_existing_records():
    plan = plan_of([field("name")], [field("name"), field("vip", "bool", default=False)])
    [change] = plan.changes
    assert isinstance(change, sd.AddField) and change.field.name == "vip" and change.fill is False
    assert change.describe() == "Customer: add field vip (existing records get False)"


def test_added_required_field_without_default_is_checked_against_the_records():
    plan = plan_of([field("name")], [field("name"), field("email", "email", required=True)])
    assert kinds(plan) == ["AddField", "RequireField"]
    assert plan.changes[1].fill is None and not plan.lossy


def test_added_unique_field_is_checked_for_duplicates():
    plan = plan_of([], [field("phone", "phone", unique=True)])
    assert kinds(plan) == ["AddField", "AddUnique"]


def test_dropped_field_is_lossy_and_says_what_to_do():
    plan = plan_of([field("name"), field("phone", "phone")], [field("name")])
    [change] = plan.changes
    assert isinstance(change, sd.DropField) and change.lossy
    assert plan.refusals(3, allow_loss=False) == [
        "field phone of Customer is not in the new schema: dropping it would lose its values. Add `renamed from "
        "phone` to the field it became if it was renamed, or run with --allow-loss to drop it; its values are "
        "then kept in table crm_backup_3_customer."]
    assert plan.refusals(3, allow_loss=True) == []


def test_dropped_entity_is_lossy():
    plan = sd.diff({"Customer": entity("Customer"), "AccountManager": entity("AccountManager")},
                   {"Customer": entity("Customer")})
    [change] = plan.changes
    assert isinstance(change, sd.DropEntity)
    assert plan.refusals(2, allow_loss=False) == [
        "entity AccountManager is not in the new schema: dropping it would lose all its records. Put it back, "
        "or run with --allow-loss to drop it; its records are then kept in table crm_backup_2_account_manager."]


def test_rename_moves_the_field():
    plan = plan_of([field("phone", "phone")], [field("mobile", "phone", renamed_from="phone")])
    [change] = plan.changes
    assert isinstance(change, sd.RenameField) and (change.old, change.new) == ("phone", "mobile")
    assert not plan.lossy


def test_rename_already_applied_is_no_change():
    assert plan_of([field("mobile", "phone")], [field("mobile", "phone", renamed_from="phone")]).empty


def test_rename_from_a_field_that_was_never_deployed_is_a_problem():
    plan = plan_of([field("name"), field("phone", "phone")],
                   [field("name"), field("phone", "phone"), field("mobile", "phone", renamed_from="mobil")])
    assert plan.problems == [
        "field mobile of Customer says `renamed from mobil`, but the deployed Customer has no field mobil (its "
        "fields are: name, phone); correct the old name, or remove `renamed from` if mobile is a new field"]
    assert plan.refusals(2, allow_loss=True) == plan.problems  # --allow-loss does not excuse a wrong name


def test_rename_and_a_new_field_under_the_old_name():
    plan = plan_of([field("phone", "phone")],
                   [field("mobile", "phone", renamed_from="phone"), field("phone", "phone")])
    assert kinds(plan) == ["RenameField", "AddField"]


def test_renamed_and_widened_field():
    plan = plan_of([field("card", max_length=20)], [field("vip_card", max_length=40, renamed_from="card")])
    assert kinds(plan) == ["RenameField", "ChangeType"]
    assert plan.changes[1].how == "widen" and plan.changes[1].old.name == "card"


@pytest.mark.parametrize("old, new", [
    (field("x", max_length=20), field("x", max_length=40)),
    (field("x", max_length=20), field("x")),
    (field("x", "phone"), field("x", "text", max_length=32)),
    (field("x", "email"), field("x", "text")),
    (field("x", "enum", choices=choices("gold", "general")), field("x", "text", max_length=10)),
    (field("x", "agent"), field("x", "text")),
    (field("x", "money"), field("x", "number")),
])
def test_widening_is_safe(old, new):
    [change] = plan_of([old], [new]).changes
    assert isinstance(change, sd.ChangeType) and change.how == "widen" and not change.lossy


@pytest.mark.parametrize("old, new, how, reason", [
    (field("x", max_length=40), field("x", max_length=20), "shorten",
     "values longer than 20 characters would not fit"),
    (field("x"), field("x", max_length=200), "shorten", "values longer than 200 characters would not fit"),
    (field("x", "enum", choices=choices("platinum")), field("x", "text", max_length=5), "shorten",
     "values longer than 5 characters would not fit"),
    (field("x"), field("x", "email"), "empty", "not every text value is a valid email"),
    (field("x", "number"), field("x", "money"), "empty",
     "money keeps 2 decimal places and 14 digits before the point"),
    (field("x", "text"), field("x", "number"), "empty", "text values cannot all become number"),
    (field("x", "date"), field("x", "datetime"), "empty", "date values cannot all become datetime"),
    (field("x", "ref", target="Customer"), field("x", "ref", target="Person"), "empty",
     "its links point at Customer records, not Person records"),
])
def test_narrowing_could_lose_data(old, new, how, reason):
    [change] = plan_of([old], [new]).changes
    assert isinstance(change, sd.ChangeType) and change.lossy
    assert (change.how, change.reason) == (how, reason)


def test_narrowing_message_names_the_field_and_the_backup():
    plan = plan_of([field("plan", max_length=40)], [field("plan", max_length=20)])
    assert plan.refusals(4, allow_loss=False) == [
        "changing field plan of Customer from text max 40 to text max 20 could lose data: values longer than 20 "
        "characters would not fit. Keep text max 40, or run with --allow-loss; the longer values are then "
        "emptied and the old values are kept in table crm_backup_4_customer."]


def test_enum_choice_added_is_safe_and_removed_is_lossy():
    old = field("tier", "enum", choices=choices("gold", "star", "general"), default="general")
    plan = plan_of([old], [old.model_copy(update={"choices": choices("gold", "general", "platinum")})])
    assert kinds(plan) == ["AddChoices", "RemoveChoices"]
    added, removed = plan.changes
    assert added.choices == ["platinum"] and not added.lossy
    assert removed.choices == ["star"] and removed.replacement == "general"
    assert plan.refusals(2, allow_loss=False) == [
        "choice star of Customer.tier is no longer in the schema: records that have it would lose their tier. "
        "Keep the choice, or run with --allow-loss; their tier then becomes general and the old values are kept "
        "in table crm_backup_2_customer."]


def test_required_added_with_and_without_default():
    with_default = plan_of([field("tier")], [field("tier", required=True, default="general")])
    assert kinds(with_default) == ["RequireField"] and with_default.changes[0].fill == "general"
    without = plan_of([field("tier")], [field("tier", required=True)])
    assert kinds(without) == ["RequireField"] and without.changes[0].fill is None


def test_unique_added_and_dropped():
    assert kinds(plan_of([field("phone")], [field("phone", unique=True)])) == ["AddUnique"]
    assert kinds(plan_of([field("phone", unique=True)], [field("phone")])) == ["DropUnique"]


def complaint_workflow(*states) -> ir.Workflow:
    return ir.Workflow(name="complaint", entity="Customer", transitions=[],
                       states=[ir.WorkflowState(name=s, initial=i == 0) for i, s in enumerate(states)])


def test_workflow_added_gives_records_the_initial_state():
    plan = sd.diff({"Customer": entity("Customer")}, {"Customer": entity("Customer", workflow="complaint")},
                   workflows={"complaint": complaint_workflow("new", "closed")})
    [change] = plan.changes
    assert isinstance(change, sd.AddField) and change.field.name == "state" and change.fill == "new"
    assert change.describe() == "Customer: add workflow state (existing records get new)"


def test_workflow_dropped_is_lossy():
    plan = sd.diff({"Customer": entity("Customer", workflow="complaint")}, {"Customer": entity("Customer")},
                   deployed_workflows={"complaint": complaint_workflow("new", "closed")})
    [change] = plan.changes
    assert isinstance(change, sd.DropField) and change.field.name == "state"
    assert "Customer no longer has a workflow" in change.refusal(5)


def test_workflow_state_removed_is_lossy_and_records_go_to_the_initial_state():
    old, new = complaint_workflow("new", "waiting", "closed"), complaint_workflow("new", "closed")
    plan = sd.diff({"Customer": entity("Customer", workflow="complaint")},
                   {"Customer": entity("Customer", workflow="complaint")},
                   deployed_workflows={"complaint": old}, workflows={"complaint": new})
    [change] = plan.changes
    assert isinstance(change, sd.RemoveChoices) and change.replacement == "new"
    assert change.refusal(2).startswith("states waiting are no longer in the workflow of Customer")


def test_compiled_schema_texts(tmp_path):
    def entities(text: str) -> dict[str, ir.Entity]:
        (tmp_path / "crm.schema").write_text(text, encoding="utf-8")
        result = compile_project([tmp_path])
        assert result.ok, result.diagnostics
        return result.bundle.entities

    before = entities("entity Customer {\n  name: text max 20\n  phone: phone\n  fax: text\n}\n")
    after = entities("entity Customer {\n  name: text max 40\n  mobile: phone renamed from phone\n"
                     "  vip: bool default false\n}\n")
    plan = sd.diff(before, after)
    assert [c.describe() for c in plan.changes] == [
        "Customer: rename field phone to mobile (the values move with it)",
        "Customer: add field vip (existing records get False)",
        "Customer: drop field fax, keeping its values in a backup table",
        "Customer: widen field name from text max 20 to text max 40",
    ]
    assert len(plan.refusals(2, allow_loss=False)) == 1
