"""Migrations on real databases, SQLite and PostgreSQL (`database_url` in conftest.py gives each test
a PostgreSQL schema of its own): the data survives, refusals change nothing, and the tables end up
as runtime.crm.tables would make them on an empty database."""
from __future__ import annotations

import datetime as dt
import shutil
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import MetaData, Table, inspect, insert, select

from compiler import compile_project
from runtime.crm.migrate import MigrationRefused, history, migrate
from runtime.crm.tables import crm_metadata
from runtime.storage import open_engine

ROOT = Path(__file__).resolve().parent.parent
NOW = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.timezone.utc)
# What the record store needs besides the entities' tables, made by the first deploy.
STORE_TABLES = ["create table crm_audit", "create table crm_notifications", "create table crm_sla_events",
                "create table crm_users"]

BASE = """
entity Customer {
    name: text required max 20
    phone: phone unique
    tier: enum(gold, star, general) default general
    notes: text max 200
}

list customers for Customer {
    columns name, tier
    filters tier
    sort name asc
}
"""


@pytest.fixture
def engine(database_url):
    engine = open_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def project(tmp_path):
    """Writes a schema text into a project folder and compiles it."""
    folder = tmp_path / "project"
    folder.mkdir()

    def compile_schema(text: str):
        (folder / "crm.schema").write_text(text, encoding="utf-8")
        result = compile_project([folder])
        assert result.ok, result.diagnostics
        return result.bundle
    return compile_schema


def table(engine, name: str) -> Table:
    return Table(name, MetaData(), autoload_with=engine)


def add(engine, name: str, *rows: dict) -> None:
    t = table(engine, name)
    with engine.begin() as connection:
        for row in rows:
            connection.execute(insert(t).values({"created_at": NOW, "updated_at": NOW, "version": 1, **row}))


def rows(engine, name: str, *columns: str) -> list[tuple]:
    t = table(engine, name)
    with engine.connect() as connection:
        return [tuple(r) for r in connection.execute(select(*[t.c[c] for c in columns]).order_by(t.c[columns[0]]))]


def deployed(engine, project, text=BASE):
    migrate(engine, project(text), now=lambda: NOW)
    add(engine, "crm_customer", {"name": "Li Na", "phone": "13800000001", "tier": "gold", "notes": "likes calls"},
        {"name": "Wang Fang", "phone": "13800000002", "tier": "star"},
        {"name": "Zhao Lei", "phone": "13800000003", "tier": "general", "notes": "x" * 150})


def snapshot(engine) -> dict:
    """Everything a migration could change: every table's shape and rows."""
    look = inspect(engine)
    out = {}
    for name in sorted(look.get_table_names()):
        t = table(engine, name)
        with engine.connect() as connection:
            data = sorted(map(repr, connection.execute(select(t))))
        out[name] = {
            "columns": [(c["name"], str(c["type"]), c["nullable"]) for c in look.get_columns(name)],
            "indexes": sorted((i["name"], tuple(i["column_names"])) for i in look.get_indexes(name)),
            "unique": sorted((u["name"], tuple(u["column_names"])) for u in look.get_unique_constraints(name)),
            "foreign": sorted((tuple(f["constrained_columns"]), f["referred_table"])
                              for f in look.get_foreign_keys(name)),
            "rows": data,
        }
    return out


def shape(engine, tables) -> dict:
    """The tables' columns, indexes, unique rules and foreign keys, types as the database spells them."""
    look, dialect = inspect(engine), engine.dialect
    return {name: {
        "columns": sorted((c["name"], c["type"].compile(dialect=dialect), c["nullable"])
                          for c in look.get_columns(name)),
        "indexes": sorted((i["name"], tuple(i["column_names"])) for i in look.get_indexes(name)
                          if not i.get("duplicates_constraint")),
        "unique": sorted((u["name"], tuple(u["column_names"])) for u in look.get_unique_constraints(name)),
        "foreign": sorted((tuple(f["constrained_columns"]), f["referred_table"], f["options"].get("ondelete"))
                          for f in look.get_foreign_keys(name)),
    } for name in tables}


def assert_matches_tables_py(engine, bundle, tmp_path) -> None:
    """The migrated tables are exactly those that crm_metadata creates on an empty database."""
    metadata = crm_metadata(bundle)
    fresh = open_engine(engine.url.render_as_string(hide_password=False)) if engine.dialect.name != "sqlite" \
        else open_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
    if engine.dialect.name == "sqlite":
        metadata.create_all(fresh)
        assert shape(engine, metadata.tables) == shape(fresh, metadata.tables)
        return
    # PostgreSQL: the same shape the metadata compiles to, checked against the metadata itself.
    dialect = engine.dialect
    for name, t in metadata.tables.items():
        got = shape(engine, [name])[name]
        assert got["columns"] == sorted((c.name, c.type.compile(dialect=dialect), c.nullable) for c in t.columns)
        assert got["indexes"] == sorted((i.name, tuple(c.name for c in i.columns)) for i in t.indexes)
        assert got["unique"] == sorted((u.name, tuple(c.name for c in u.columns)) for u in t.constraints
                                       if type(u).__name__ == "UniqueConstraint")
        assert got["foreign"] == sorted(((f.parent.name,), f.column.table.name, f.ondelete) for f in t.foreign_keys)
    fresh.dispose()


# ------------------------------------------------------------------ first deploy and no-ops

def test_first_deploy_creates_the_tables_and_records_version_1(engine, project, tmp_path):
    bundle = project(BASE)
    report = migrate(engine, bundle, now=lambda: NOW)
    assert report.first and report.applied and report.version == 1
    assert report.changes == ["create table crm_customer", *STORE_TABLES]
    assert_matches_tables_py(engine, bundle, tmp_path)
    [version] = history(engine)
    assert (version.version, version.bundle_hash, list(version.entities)) == (1, bundle.hash, ["Customer"])
    assert version.applied_at == NOW


def test_the_same_bundle_again_changes_nothing(engine, project):
    deployed(engine, project)
    before = snapshot(engine)
    report = migrate(engine, project(BASE))
    assert (report.applied, report.changes, report.version) == (False, [], 1)
    assert snapshot(engine) == before
    assert len(history(engine)) == 1


def test_a_label_change_is_recorded_without_touching_the_tables(engine, project):
    deployed(engine, project)
    before = snapshot(engine)
    report = migrate(engine, project(BASE.replace("notes: text max 200", 'notes: text max 200 label "备注"')))
    assert report.version == 2
    assert report.changes == ["labels and other details that need no change to the tables"]
    after = snapshot(engine)
    assert {k: v for k, v in after.items() if k != "crm_schema_versions"} == \
        {k: v for k, v in before.items() if k != "crm_schema_versions"}


# ------------------------------------------------------------------ safe changes

def test_added_field_with_default_is_given_to_existing_records(engine, project, tmp_path):
    deployed(engine, project)
    text = BASE.replace("    notes:", "    vip: bool default false\n    spend: money default 100\n"
                                     "    wechat: text max 40\n    notes:")
    bundle = project(text)
    report = migrate(engine, bundle)
    assert report.changes == ["Customer: add field vip (existing records get False)",
                              "Customer: add field spend (existing records get 100)",
                              "Customer: add field wechat (empty on existing records)"]
    assert rows(engine, "crm_customer", "name", "vip", "spend", "wechat") == [
        ("Li Na", False, Decimal("100.00"), None), ("Wang Fang", False, Decimal("100.00"), None),
        ("Zhao Lei", False, Decimal("100.00"), None)]
    assert_matches_tables_py(engine, bundle, tmp_path)


def test_added_entity_with_a_ref_and_a_list(engine, project, tmp_path):
    deployed(engine, project)
    bundle = project(BASE + "\nentity Order {\n    total: money\n    customer: ref Customer\n"
                            "    gifts: list of Customer\n}\n")
    report = migrate(engine, bundle)
    assert report.changes == ["add entity Order (table crm_order)"]
    assert_matches_tables_py(engine, bundle, tmp_path)
    add(engine, "crm_order", {"total": Decimal("9.90"), "customer": 1})
    assert rows(engine, "crm_order", "total", "customer") == [(Decimal("9.90"), 1)]


def test_widened_text_keeps_the_values(engine, project, tmp_path):
    deployed(engine, project)
    bundle = project(BASE.replace("name: text required max 20", "name: text required max 40")
                     .replace("notes: text max 200", "notes: text"))
    migrate(engine, bundle)
    assert rows(engine, "crm_customer", "name", "notes")[2] == ("Zhao Lei", "x" * 150)
    assert_matches_tables_py(engine, bundle, tmp_path)
    add(engine, "crm_customer", {"name": "欧阳" * 15})
    assert ("欧阳" * 15,) in rows(engine, "crm_customer", "name")


def test_renamed_field_keeps_its_data_and_its_unique_rule(engine, project, tmp_path):
    deployed(engine, project)
    bundle = project(BASE.replace("phone: phone unique", "mobile: phone unique renamed from phone"))
    report = migrate(engine, bundle)
    assert report.changes == ["Customer: rename field phone to mobile (the values move with it)"]
    assert rows(engine, "crm_customer", "id", "name", "mobile") == [
        (1, "Li Na", "13800000001"), (2, "Wang Fang", "13800000002"), (3, "Zhao Lei", "13800000003")]
    assert_matches_tables_py(engine, bundle, tmp_path)
    # the rename stays in the schema; deploying it again is no change
    assert migrate(engine, bundle).changes == []


def test_renamed_list_field_keeps_its_links(engine, project, tmp_path):
    text = BASE + "\nentity Team {\n    name: text\n    members: list of Customer\n}\n"
    deployed(engine, project, text)
    add(engine, "crm_team", {"name": "north"})
    with engine.begin() as connection:
        connection.execute(insert(table(engine, "crm_team__members")), [{"record_id": 1, "target_id": 2}])
    bundle = project(text.replace("members: list of Customer", "people: list of Customer renamed from members"))
    migrate(engine, bundle)
    assert rows(engine, "crm_team__people", "record_id", "target_id") == [(1, 2)]
    assert_matches_tables_py(engine, bundle, tmp_path)


def test_workflow_added_puts_records_in_the_initial_state(engine, project, tmp_path):
    deployed(engine, project)
    bundle = project(BASE + """
workflow care for Customer {
    state new initial
    state called final
    transition call: new -> called
}
""")
    report = migrate(engine, bundle)
    assert report.changes == ["Customer: add workflow state (existing records get new)",
                              "create index ix_crm_customer_state on crm_customer (state)"]
    assert rows(engine, "crm_customer", "id", "state") == [(1, "new"), (2, "new"), (3, "new")]
    assert_matches_tables_py(engine, bundle, tmp_path)  # state NOT NULL, indexed


def test_a_list_sorting_on_another_field_gets_its_index_and_the_old_one_goes(engine, project, tmp_path):
    deployed(engine, project)
    bundle = project(BASE.replace("filters tier", "filters notes"))
    report = migrate(engine, bundle)
    assert report.changes == ["drop index ix_crm_customer_tier_name_id, which no list needs any more",
                              "create index ix_crm_customer_notes_name_id on crm_customer (notes, name, id)"]
    assert_matches_tables_py(engine, bundle, tmp_path)


def test_required_with_a_default_fills_the_empty_records(engine, project):
    deployed(engine, project)
    migrate(engine, project(BASE.replace("notes: text max 200", 'notes: text max 200 required default "-"')))
    assert rows(engine, "crm_customer", "name", "notes") == [
        ("Li Na", "likes calls"), ("Wang Fang", "-"), ("Zhao Lei", "x" * 150)]


def test_required_without_a_default_is_applied_when_every_record_has_a_value(engine, project):
    deployed(engine, project)
    report = migrate(engine, project(BASE.replace("phone: phone unique", "phone: phone unique required")))
    assert report.changes == ["Customer: field phone becomes required (every record must have one)"]


# ------------------------------------------------------------------ refused: nothing changes

def refused(engine, bundle, **kwargs) -> list[str]:
    before = snapshot(engine)
    with pytest.raises(MigrationRefused) as caught:
        migrate(engine, bundle, **kwargs)
    assert snapshot(engine) == before
    return caught.value.messages


def test_dropped_field_is_refused(engine, project):
    deployed(engine, project)
    assert refused(engine, project(BASE.replace("    notes: text max 200\n", ""))) == [
        "field notes of Customer is not in the new schema: dropping it would lose its values. Add `renamed from "
        "notes` to the field it became if it was renamed, or run with --allow-loss to drop it; its values are "
        "then kept in table crm_backup_2_customer."]


def test_removed_choice_is_refused(engine, project):
    deployed(engine, project)
    [message] = refused(engine, project(BASE.replace("enum(gold, star, general)", "enum(gold, general)")))
    assert message.startswith("choice star of Customer.tier is no longer in the schema")


def test_required_without_default_is_refused_while_records_are_empty(engine, project):
    deployed(engine, project)
    assert refused(engine, project(BASE.replace("notes: text max 200", "notes: text max 200 required"))) == [
        "field notes of Customer becomes required, but 1 Customer record has no notes: give the field a default "
        "(`default ...`) for them, or fill them in first"]


def test_new_required_field_without_default_is_refused_on_existing_records(engine, project):
    deployed(engine, project)
    [message] = refused(engine, project(BASE.replace("    notes:", "    email: email required\n    notes:")))
    assert message.startswith("field email of Customer becomes required, but 3 Customer records have no email")


def test_unique_with_duplicates_is_refused_naming_them(engine, project):
    deployed(engine, project)
    add(engine, "crm_customer", {"name": "Li Na", "phone": "13800000009"})
    # the rename and the new field are undone with the refusal too: one transaction
    text = (BASE.replace("name: text required max 20", "name: text required max 20 unique")
            .replace("phone: phone unique", "mobile: phone unique renamed from phone\n    vip: bool default true"))
    assert refused(engine, project(text)) == [
        "field name of Customer becomes unique, but these values are on more than one record: Li Na (2 records); "
        "change those records first, or drop `unique`"]


def test_every_refusal_is_told_at_once(engine, project):
    deployed(engine, project)
    text = BASE.replace("    notes: text max 200\n", "").replace("enum(gold, star, general)", "enum(gold, general)")
    assert len(refused(engine, project(text))) == 2


def test_rename_from_an_unknown_field_is_refused_even_with_allow_loss(engine, project):
    deployed(engine, project)
    [message] = refused(engine, project(BASE.replace("    notes:", "    mobile: phone renamed from mobil\n    notes:")),
                        allow_loss=True)
    assert "has no field mobil" in message


def test_changed_ref_target_is_refused(engine, project):
    text = BASE + "\nentity Person {\n  name: text\n}\nentity Order {\n  buyer: ref Customer\n}\n"
    deployed(engine, project, text)
    [message] = refused(engine, project(text.replace("buyer: ref Customer", "buyer: ref Person")))
    assert message.startswith("changing field buyer of Order from ref Customer to ref Person could lose data")


def test_dry_run_says_what_would_change_and_changes_nothing(engine, project):
    deployed(engine, project)
    before = snapshot(engine)
    report = migrate(engine, project(BASE.replace("    notes: text max 200\n", "")), allow_loss=True, dry_run=True)
    assert report.dry_run and not report.applied and report.version == 2
    assert report.changes == ["Customer: drop field notes, keeping its values in a backup table"]
    assert report.backups == ["crm_backup_2_customer"]
    assert snapshot(engine) == before


# ------------------------------------------------------------------ allowed loss: backups

def test_allowed_drop_keeps_the_values_with_their_ids(engine, project, tmp_path):
    deployed(engine, project)
    bundle = project(BASE.replace("    notes: text max 200\n", ""))
    report = migrate(engine, bundle, allow_loss=True)
    assert report.backups == ["crm_backup_2_customer"]
    assert rows(engine, "crm_backup_2_customer", "id", "notes") == [(1, "likes calls"), (2, None), (3, "x" * 150)]
    assert "notes" not in [c["name"] for c in inspect(engine).get_columns("crm_customer")]
    assert_matches_tables_py(engine, bundle, tmp_path)


def test_allowed_entity_drop_keeps_every_record(engine, project, tmp_path):
    text = BASE + "\nentity Team {\n    name: text\n    members: list of Customer\n}\n"
    deployed(engine, project, text)
    add(engine, "crm_team", {"name": "north"}, {"name": "south"})
    with engine.begin() as connection:
        connection.execute(insert(table(engine, "crm_team__members")), [{"record_id": 2, "target_id": 3}])
    migrate(engine, project(BASE), allow_loss=True)
    names = inspect(engine).get_table_names()
    assert "crm_team" not in names and "crm_team__members" not in names
    assert rows(engine, "crm_backup_2_team", "id", "name") == [(1, "north"), (2, "south")]
    assert rows(engine, "crm_backup_2_team__members", "record_id", "target_id") == [(2, 3)]


def test_allowed_choice_removal_gives_the_default_and_keeps_the_old_value(engine, project):
    deployed(engine, project)
    migrate(engine, project(BASE.replace("enum(gold, star, general)", "enum(gold, general)")), allow_loss=True)
    assert rows(engine, "crm_customer", "id", "tier") == [(1, "gold"), (2, "general"), (3, "general")]
    assert rows(engine, "crm_backup_2_customer", "id", "tier") == [(1, "gold"), (2, "star"), (3, "general")]


def test_allowed_shortening_empties_only_the_values_that_do_not_fit(engine, project, tmp_path):
    deployed(engine, project)
    bundle = project(BASE.replace("notes: text max 200", "notes: text max 100"))
    migrate(engine, bundle, allow_loss=True)
    assert rows(engine, "crm_customer", "id", "notes") == [(1, "likes calls"), (2, None), (3, None)]
    assert rows(engine, "crm_backup_2_customer", "id", "notes")[2] == (3, "x" * 150)
    assert_matches_tables_py(engine, bundle, tmp_path)


def test_history_lists_every_version(engine, project):
    deployed(engine, project)
    migrate(engine, project(BASE.replace("    notes:", "    vip: bool\n    notes:")))
    assert [(v.version, v.changes) for v in history(engine)] == [
        (1, ["create table crm_customer", *STORE_TABLES]), (2, ["Customer: add field vip (empty on existing records)"])]


# ------------------------------------------------------------------ the example project

def test_the_example_project_migrates_when_its_customers_change(engine, tmp_path):
    for folder in ("flows", "schemas"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    shutil.copy(ROOT / "flowdesk.yaml", tmp_path / "flowdesk.yaml")
    paths = [tmp_path / "flows", tmp_path / "schemas"]
    first = compile_project(paths).bundle
    report = migrate(engine, first)
    assert report.first and "create table crm_ticket" in report.changes
    add(engine, "crm_account_manager", {"name": "Chen", "phone": "13900000000", "agent": "zhang_wei"})
    add(engine, "crm_customer", {"name": "Li Na", "phone": "13800000001", "vip_card": "V001", "manager": 1,
                                 "plan": "5G 畅享 199"})
    add(engine, "crm_ticket", {"caller_phone": "13800000001", "category": "complaint", "customer": 1,
                               "state": "new"})
    schema = tmp_path / "schemas" / "customer.schema"
    text = schema.read_text(encoding="utf-8")
    text = (text.replace('vip_card: text max 20 label "VIP 卡号"',
                         'vip_number: text max 30 renamed from vip_card label "VIP 卡号"')
            .replace('plan: text max 40 label "套餐"', 'plan: text max 80 label "套餐"\n    wechat: text max 40')
            .replace("vip_card, id_card", "vip_number, id_card").replace("        vip_card\n", "        vip_number\n"))
    schema.write_text(text, encoding="utf-8")
    result = compile_project(paths)
    assert result.ok, result.diagnostics
    report = migrate(engine, result.bundle)
    assert report.changes == [
        "Customer: rename field vip_card to vip_number (the values move with it)",
        "Customer: add field wechat (empty on existing records)",
        "Customer: widen field vip_number from text max 20 to text max 30",
        "Customer: widen field plan from text max 40 to text max 80",
        "drop search index crm_search__customer and make it again on (id_card, name, vip_number)",
    ]
    assert rows(engine, "crm_customer", "name", "vip_number", "plan", "manager") == [
        ("Li Na", "V001", "5G 畅享 199", 1)]
    assert rows(engine, "crm_ticket", "customer", "state") == [(1, "new")]  # links to the customer kept
    assert_matches_tables_py(engine, result.bundle, tmp_path)


def test_allowed_ref_target_change_starts_empty_and_keeps_the_old_links(engine, project, tmp_path):
    text = BASE + "\nentity Person {\n  name: text\n}\nentity Order {\n  buyer: ref Customer\n}\n"
    deployed(engine, project, text)
    add(engine, "crm_order", {"buyer": 2})
    bundle = project(text.replace("buyer: ref Customer", "buyer: ref Person"))
    migrate(engine, bundle, allow_loss=True)
    assert rows(engine, "crm_order", "id", "buyer") == [(1, None)]
    assert rows(engine, "crm_backup_2_order", "id", "buyer") == [(1, 2)]
    assert_matches_tables_py(engine, bundle, tmp_path)  # the foreign key now points at crm_person


def test_sqlite_foreign_keys_are_on_again_after_a_migration(engine, project):
    if engine.dialect.name != "sqlite":
        pytest.skip("a SQLite setting")
    deployed(engine, project)
    migrate(engine, project(BASE.replace("max 20", "max 30")))
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_allowed_change_from_text_to_a_list_backs_up_the_text_and_makes_the_link_table(engine, project, tmp_path):
    deployed(engine, project)
    bundle = project(BASE.replace("notes: text max 200", "notes: list of Customer"))
    report = migrate(engine, bundle, allow_loss=True)
    assert report.backups == ["crm_backup_2_customer"]
    assert rows(engine, "crm_backup_2_customer", "id", "notes")[0] == (1, "likes calls")
    assert "notes" not in [c["name"] for c in inspect(engine).get_columns("crm_customer")]
    assert_matches_tables_py(engine, bundle, tmp_path)  # crm_customer__notes made as tables.py makes it
