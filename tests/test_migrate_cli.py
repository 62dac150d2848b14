"""`flowdesk migrate` on the command line: what it prints, its exit codes, and where the database is."""
from __future__ import annotations

import argparse

import pytest
from sqlalchemy import create_engine, inspect

from flowdesk import migrate_cmd
from flowdesk.cli import db_option, env_option

SCHEMA = """
entity Customer {
    name: text required max 20
    phone: phone
}
"""


def run(*argv: str) -> int:
    """The command as `flowdesk migrate` runs it, through its own argument parser."""
    parser = argparse.ArgumentParser(prog="flowdesk")
    migrate_cmd.add_parser(parser.add_subparsers(dest="command", required=True), env_option, db_option)
    args = parser.parse_args(["migrate", *argv])
    return args.run(args)


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.delenv("FLOWDESK_DB", raising=False)
    root = tmp_path / "hotline"
    (root / "schemas").mkdir(parents=True)
    (root / "flowdesk.yaml").write_text("default_environment: test\nenvironments:\n  test: {}\n", encoding="utf-8")
    (root / "schemas" / "crm.schema").write_text(SCHEMA, encoding="utf-8")
    return root


def write(project, text: str) -> None:
    (project / "schemas" / "crm.schema").write_text(text, encoding="utf-8")


def columns(url: str, table: str) -> list[str]:
    engine = create_engine(url)
    try:
        return [c["name"] for c in inspect(engine).get_columns(table)]
    finally:
        engine.dispose()


def test_first_migrate_uses_the_projects_database_shared_with_the_call_log(project, capsys):
    assert run(str(project / "schemas")) == 0
    database = project / ".flowdesk" / "flowdesk.db"
    out = capsys.readouterr().out
    # The entity's table, then the store's own: the audit log, notices, SLA events and log-ins.
    assert out == ("  create table crm_customer\n  create table crm_audit\n  create table crm_notifications\n"
                   "  create table crm_sla_events\n  create table crm_users\n"
                   f"migrated sqlite:///{database} to version 1\n")
    names = inspect(create_engine(f"sqlite:///{database}")).get_table_names()
    assert {"crm_customer", "crm_schema_versions", "calls"} <= set(names)


def test_running_it_again_says_there_is_nothing_to_change(project, capsys):
    run(str(project / "schemas"))
    capsys.readouterr()
    assert run(str(project / "schemas")) == 0
    assert capsys.readouterr().out.startswith("nothing to change: sqlite:///")


def test_the_plan_is_printed_in_plain_words(project, capsys):
    run(str(project / "schemas"))
    write(project, SCHEMA.replace("phone: phone", "mobile: phone renamed from phone\n    vip: bool default false"))
    capsys.readouterr()
    assert run(str(project / "schemas")) == 0
    assert capsys.readouterr().out.splitlines()[:2] == [
        "  Customer: rename field phone to mobile (the values move with it)",
        "  Customer: add field vip (existing records get False)"]


def test_a_lossy_change_is_refused_with_what_to_do(project, capsys):
    run(str(project / "schemas"))
    write(project, SCHEMA.replace("    phone: phone\n", ""))
    capsys.readouterr()
    assert run(str(project / "schemas")) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("refused: field phone of Customer is not in the new schema")
    assert "--allow-loss" in err[0] and "crm_backup_2_customer" in err[0]
    assert err[1].startswith("not migrated: nothing in sqlite:///") and err[1].endswith("was changed")
    assert "phone" in columns(f"sqlite:///{project / '.flowdesk' / 'flowdesk.db'}", "crm_customer")


def test_allow_loss_applies_it_and_names_the_backup(project, capsys):
    run(str(project / "schemas"))
    write(project, SCHEMA.replace("    phone: phone\n", ""))
    capsys.readouterr()
    assert run(str(project / "schemas"), "--allow-loss") == 0
    out = capsys.readouterr().out
    assert "  backup: crm_backup_2_customer\n" in out and "to version 2" in out
    assert "phone" not in columns(f"sqlite:///{project / '.flowdesk' / 'flowdesk.db'}", "crm_customer")


def test_dry_run_changes_nothing(project, capsys):
    run(str(project / "schemas"))
    write(project, SCHEMA.replace("phone: phone", "phone: phone\n    email: email"))
    capsys.readouterr()
    assert run(str(project / "schemas"), "--dry-run") == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "  Customer: add field email (empty on existing records)"
    assert "would go to version 2; nothing was changed" in out
    assert "email" not in columns(f"sqlite:///{project / '.flowdesk' / 'flowdesk.db'}", "crm_customer")


def test_schema_errors_are_shown_and_nothing_is_migrated(project, capsys):
    write(project, "entity Customer {\n    name: txt\n}\n")
    assert run(str(project / "schemas")) == 1
    err = capsys.readouterr().err
    assert "unknown type 'txt'" in err and "not migrated: 1 error" in err
    assert not (project / ".flowdesk" / "flowdesk.db").exists() or \
        "crm_customer" not in inspect(create_engine(f"sqlite:///{project / '.flowdesk' / 'flowdesk.db'}")).get_table_names()


def test_db_option_and_flowdesk_db(project, tmp_path, monkeypatch, capsys):
    elsewhere = f"sqlite:///{tmp_path / 'crm.db'}"
    assert run(str(project / "schemas"), "--db", elsewhere) == 0
    assert "crm_customer" in inspect(create_engine(elsewhere)).get_table_names()
    other = f"sqlite:///{tmp_path / 'other.db'}"
    monkeypatch.setenv("FLOWDESK_DB", other)
    assert run(str(project / "schemas")) == 0
    assert capsys.readouterr().out.endswith(f"migrated {other} to version 1\n")


def test_postgresql_through_db(project, database_url, capsys):
    assert run(str(project / "schemas"), "--db", database_url) == 0
    assert "to version 1" in capsys.readouterr().out
    assert run(str(project / "schemas"), "--db", database_url) == 0
    assert capsys.readouterr().out.startswith("nothing to change")


def test_a_database_that_cannot_be_reached_is_said_plainly(project, capsys):
    assert run(str(project / "schemas"), "--db", "postgresql://flowdesk:secret@127.0.0.1:1/crm") == 1
    err = capsys.readouterr().err
    assert err.startswith("error: the database postgresql://flowdesk:***@127.0.0.1:1/crm failed: ")
    assert "secret" not in err and "Traceback" not in err and err.endswith("nothing was changed\n")
