"""What changing the schema does to the deployed CRM: the deployed entities and the new ones in,
a plan of changes out.  Pure: it reads no database.

Safe changes are applied without asking: a new entity or field, a wider type, a renamed field
(`renamed from OLD`), a new enum choice, a workflow on an entity (its records start in the initial
state), a unique or required rule dropped.  Changes that could lose data are *lossy*: the plan
carries a message, in the user's words, saying which entity and field, what would be lost and what
to do; they are refused unless the user allows loss, and even then the old values are kept in a
backup table `crm_backup_<version>_<table>` (the entity's table name without `crm_`).

A type change is safe when every value the old field can hold is a value the new field accepts:

- text, phone and email to the same kind or to text, with a `max` at least as long (or none);
- an enum or agent field to text long enough for its names;
- money to number (both keep 14 digits before the point; number keeps more after it).

Anything else (number to money drops decimals, text to number, a shorter `max`, a ref to another
entity, a date to a datetime, which would need a time zone) is lossy.

Two rules depend on the data and are checked when the plan is applied: a field that becomes
required (or a new required field) needs a value on every existing record, which its default
gives; a field that becomes unique must not have duplicates.
"""
from __future__ import annotations

from dataclasses import dataclass, field as dataclass_field
from typing import ClassVar

from compiler import ir

STATE = "state"  # the column of an entity's workflow state, diffed like an enum field
NAME_LENGTH = 64  # the longest enum choice or agent name (runtime.crm.tables.NAME_LENGTH)
LENGTHS = {"phone": 32, "email": 254}  # phone and email without `max` (runtime.crm.tables)
STRING_KINDS = ("text", "phone", "email")


def backup_table(version: int, table: str) -> str:
    """Where the values that a lossy change removes from `table` are kept."""
    return f"crm_backup_{version}_{table.removeprefix('crm_')}"


def table_of(entity: str) -> str:
    from runtime.crm.tables import table_name  # one definition of the name; tables.py is pure too

    return table_name(entity)


def link_table_of(entity: str, field: str) -> str:
    return f"{table_of(entity)}__{field}"


# ------------------------------------------------------------------ changes

@dataclass
class Change:
    entity: str
    lossy: ClassVar[bool] = False

    def describe(self) -> str:
        raise NotImplementedError

    def refusal(self, version: int) -> str:
        """Why a lossy change is refused and what to do (for lossy changes only)."""
        raise NotImplementedError

    @property
    def table(self) -> str:
        return table_of(self.entity)


@dataclass
class AddEntity(Change):
    def describe(self) -> str:
        return f"add entity {self.entity} (table {self.table})"


@dataclass
class DropEntity(Change):
    lossy: ClassVar[bool] = True

    def describe(self) -> str:
        return f"drop entity {self.entity}, keeping its records in a backup table"

    def refusal(self, version: int) -> str:
        return (f"entity {self.entity} is not in the new schema: dropping it would lose all its records. "
                f"Put it back, or run with --allow-loss to drop it; its records are then kept in table "
                f"{backup_table(version, self.table)}.")


@dataclass
class AddField(Change):
    field: ir.EntityField
    fill: str | int | bool | None = None  # the value existing records get (the default)

    def describe(self) -> str:
        what = "workflow state" if self.field.name == STATE else f"field {self.field.name}"
        then = f"existing records get {self.fill}" if self.fill is not None else "empty on existing records"
        return f"{self.entity}: add {what} ({then})"


@dataclass
class DropField(Change):
    field: ir.EntityField
    lossy: ClassVar[bool] = True

    def describe(self) -> str:
        return f"{self.entity}: drop field {self.field.name}, keeping its values in a backup table"

    def refusal(self, version: int) -> str:
        kept = backup_table(version, link_table_of(self.entity, self.field.name) if self.field.type == "list"
                            else self.table)
        if self.field.name == STATE:
            return (f"{self.entity} no longer has a workflow: dropping it would lose the state of every "
                    f"{self.entity} record. Keep the workflow, or run with --allow-loss; the states are then "
                    f"kept in table {kept}.")
        return (f"field {self.field.name} of {self.entity} is not in the new schema: dropping it would lose "
                f"its values. Add `renamed from {self.field.name}` to the field it became if it was renamed, "
                f"or run with --allow-loss to drop it; its values are then kept in table {kept}.")


@dataclass
class RenameField(Change):
    old: str
    new: str
    is_list: bool = False

    def describe(self) -> str:
        return f"{self.entity}: rename field {self.old} to {self.new} (the values move with it)"


@dataclass
class ChangeType(Change):
    """`how`: `widen` (alter the column), `shorten` (values too long are emptied, then the column
    is altered) or `empty` (the column is made again with the new type, empty)."""
    old: ir.EntityField
    new: ir.EntityField
    how: str
    reason: str = ""

    @property
    def lossy(self) -> bool:  # type: ignore[override]
        return self.how != "widen"

    def describe(self) -> str:
        verb = "widen" if self.how == "widen" else "change"
        return f"{self.entity}: {verb} field {self.new.name} from {spell(self.old)} to {spell(self.new)}"

    def refusal(self, version: int) -> str:
        kept = backup_table(version, link_table_of(self.entity, self.old.name) if self.old.type == "list"
                            else self.table)
        then = ("the longer values are then emptied" if self.how == "shorten"
                else f"the field then starts empty on every {self.entity} record")
        return (f"changing field {self.new.name} of {self.entity} from {spell(self.old)} to {spell(self.new)} "
                f"could lose data: {self.reason}. Keep {spell(self.old)}, or run with --allow-loss; {then} "
                f"and the old values are kept in table {kept}.")


@dataclass
class AddChoices(Change):
    field: str
    choices: list[str]

    def describe(self) -> str:
        what = "states" if self.field == STATE else f"choices of {self.field}"
        return f"{self.entity}: new {what}: {', '.join(self.choices)}"


@dataclass
class RemoveChoices(Change):
    field: str
    choices: list[str]
    replacement: str | None  # what records with a removed choice get: the default, or empty
    column: str = ""  # its deployed name: where the old values are before a rename
    lossy: ClassVar[bool] = True

    def describe(self) -> str:
        return (f"{self.entity}: remove {'states' if self.field == STATE else f'choices of {self.field}'} "
                f"{', '.join(self.choices)}; those records get {self.replacement or 'no value'}")

    def refusal(self, version: int) -> str:
        names = ", ".join(self.choices)
        then = f"becomes {self.replacement}" if self.replacement else "is emptied"
        if self.field == STATE:
            return (f"states {names} are no longer in the workflow of {self.entity}: records in them would lose "
                    f"their state. Keep the states, or run with --allow-loss; those records then go to "
                    f"{self.replacement} and their old states are kept in table {backup_table(version, self.table)}.")
        return (f"choice{'s' if len(self.choices) > 1 else ''} {names} of {self.entity}.{self.field} "
                f"{'are' if len(self.choices) > 1 else 'is'} no longer in the schema: records that have "
                f"{'them' if len(self.choices) > 1 else 'it'} would lose their {self.field}. Keep the choice, or run "
                f"with --allow-loss; their {self.field} then {then} and the old values are kept in table "
                f"{backup_table(version, self.table)}.")


@dataclass
class RequireField(Change):
    """The field becomes required: records without a value get `fill`; without a default, applying
    it is refused while any record has no value."""
    field: str
    fill: str | int | bool | None = None

    def describe(self) -> str:
        then = f"records without one get {self.fill}" if self.fill is not None else "every record must have one"
        return f"{self.entity}: field {self.field} becomes required ({then})"


@dataclass
class AddUnique(Change):
    field: str

    def describe(self) -> str:
        return f"{self.entity}: field {self.field} becomes unique"


@dataclass
class DropUnique(Change):
    field: str

    def describe(self) -> str:
        return f"{self.entity}: field {self.field} is no longer unique"


@dataclass
class SchemaPlan:
    changes: list[Change] = dataclass_field(default_factory=list)
    # Changes that cannot be applied however the user allows it, in the user's words.
    problems: list[str] = dataclass_field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.changes and not self.problems

    @property
    def lossy(self) -> list[Change]:
        return [c for c in self.changes if c.lossy]

    def refusals(self, version: int, allow_loss: bool) -> list[str]:
        """Everything that stops the plan from being applied, as messages."""
        return self.problems + ([] if allow_loss else [c.refusal(version) for c in self.lossy])

    def of(self, kind: type) -> list:
        return [c for c in self.changes if isinstance(c, kind)]


# ------------------------------------------------------------------ diff

def diff(deployed: dict[str, ir.Entity] | None, new: dict[str, ir.Entity], *,
         deployed_workflows: dict[str, ir.Workflow] | None = None,
         workflows: dict[str, ir.Workflow] | None = None) -> SchemaPlan:
    """The plan that turns the deployed entities into the new ones (everything new when nothing is
    deployed).  The workflows give the states of entities' `state` column; without them, a
    workflow's states are not compared."""
    plan = SchemaPlan()
    deployed = deployed or {}
    for name, entity in new.items():
        if name not in deployed:
            plan.changes.append(AddEntity(name))
        else:
            _diff_entity(plan, _with_state(deployed[name], deployed_workflows), _with_state(entity, workflows))
    for name in deployed:
        if name not in new:
            plan.changes.append(DropEntity(name))
    return plan


def _with_state(entity: ir.Entity, workflows: dict[str, ir.Workflow] | None) -> ir.Entity:
    """The entity with its workflow's state as an enum field, so that states diff like choices."""
    if not entity.workflow:
        return entity
    workflow = (workflows or {}).get(entity.workflow)
    states = [ir.EnumChoice(name=s.name) for s in workflow.states] if workflow else []
    initial = next((s.name for s in workflow.states if s.initial), None) if workflow else None
    state = ir.EntityField(name=STATE, type="enum", choices=states, required=True, default=initial)
    return entity.model_copy(update={"fields": [*entity.fields, state]})


def _diff_entity(plan: SchemaPlan, old: ir.Entity, new: ir.Entity) -> None:
    before = {f.name: f for f in old.fields}
    after = {f.name: f for f in new.fields}
    matched: dict[str, ir.EntityField] = {}  # new name -> deployed field it continues
    renamed_away = set()
    # A deployed name that another field was renamed from is a new field when it appears again.
    claimed = {f.renamed_from for f in new.fields if f.renamed_from and f.name not in before}
    for f in new.fields:
        if f.name in before and f.name not in claimed:
            matched[f.name] = before[f.name]
        elif f.renamed_from and f.renamed_from != f.name:
            source = before.get(f.renamed_from)
            if source is None:
                plan.problems.append(_rename_not_found(old, f))
                continue
            if f.renamed_from in renamed_away:
                plan.problems.append(f"field {f.name} of {new.name} says `renamed from {f.renamed_from}`, "
                                     f"but another field was already renamed from it; keep one of them")
                continue
            renamed_away.add(f.renamed_from)
            plan.changes.append(RenameField(new.name, f.renamed_from, f.name, is_list=f.type == "list"))
            matched[f.name] = source
        else:
            plan.changes.append(AddField(new.name, f, fill=f.default))
            if f.required and f.default is None:
                plan.changes.append(RequireField(new.name, f.name))
            if f.unique:
                plan.changes.append(AddUnique(new.name, f.name))
    for name, f in before.items():
        if name not in after and name not in renamed_away:
            plan.changes.append(DropField(new.name, f))
    for name, source in matched.items():
        _diff_field(plan, new.name, source, after[name])


def _rename_not_found(old: ir.Entity, f: ir.EntityField) -> str:
    known = ", ".join(x.name for x in old.fields if x.name != STATE) or "none"
    return (f"field {f.name} of {old.name} says `renamed from {f.renamed_from}`, but the deployed {old.name} has "
            f"no field {f.renamed_from} (its fields are: {known}); correct the old name, or remove "
            f"`renamed from` if {f.name} is a new field")


def _diff_field(plan: SchemaPlan, entity: str, old: ir.EntityField, new: ir.EntityField) -> None:
    change = type_change(entity, old, new)
    if change is not None:
        plan.changes.append(change)
    elif new.type == "enum":
        _diff_choices(plan, entity, old, new)
    if new.required and not old.required:
        plan.changes.append(RequireField(entity, new.name, fill=new.default))
    if new.unique and not old.unique:
        plan.changes.append(AddUnique(entity, new.name))
    elif old.unique and not new.unique:
        plan.changes.append(DropUnique(entity, new.name))


def _diff_choices(plan: SchemaPlan, entity: str, old: ir.EntityField, new: ir.EntityField) -> None:
    before = [c.name for c in old.choices]
    after = [c.name for c in new.choices]
    if not before or not after:  # states of a workflow that was not given: not compared
        return
    added = [c for c in after if c not in before]
    removed = [c for c in before if c not in after]
    if added:
        plan.changes.append(AddChoices(entity, new.name, added))
    if removed:
        plan.changes.append(RemoveChoices(entity, new.name, removed, replacement=new.default,
                                          column=old.name))


def spell(f: ir.EntityField) -> str:
    """A field's type as the schema writes it: `text max 40`, `ref Customer`."""
    if f.type in ("ref", "list"):
        return f"{'ref' if f.type == 'ref' else 'list of'} {f.target}"
    if f.type in STRING_KINDS and f.max_length:
        return f"{f.type} max {f.max_length}"
    return f.type


def longest(f: ir.EntityField) -> int | None:
    """The longest value the field holds; None for no limit."""
    if f.type in ("enum", "agent"):
        return max((len(c.name) for c in f.choices), default=NAME_LENGTH) if f.type == "enum" else NAME_LENGTH
    return f.max_length or LENGTHS.get(f.type)


def type_change(entity: str, old: ir.EntityField, new: ir.EntityField) -> ChangeType | None:
    """How the column changes when the field's type does; None when it stays as it is."""
    if old.type == new.type and old.target == new.target and longest(old) == longest(new):
        return None
    if old.type == new.type and old.type in ("enum", "agent"):
        return None  # choices are compared on their own; the column holds any name
    make = lambda how, reason="": ChangeType(entity, old, new, how, reason)  # noqa: E731
    old_len, new_len = longest(old), longest(new)
    fits = new_len is None or (old_len is not None and old_len <= new_len)
    if old.type in (*STRING_KINDS, "enum", "agent") and new.type in STRING_KINDS:
        if new.type not in ("text", old.type):
            return make("empty", f"not every {old.type} value is a valid {new.type}")
        if fits:
            return make("widen")
        return make("shorten", f"values longer than {new_len} characters would not fit")
    if (old.type, new.type) == ("money", "number"):
        return make("widen")
    if (old.type, new.type) == ("number", "money"):
        return make("empty", "money keeps 2 decimal places and 14 digits before the point")
    if old.type == new.type and old.type in ("ref", "list"):
        return make("empty", f"its links point at {old.target} records, not {new.target} records")
    return make("empty", f"{spell(old)} values cannot all become {spell(new)}")
