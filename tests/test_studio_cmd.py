"""`flowdesk studio`: its options, its refusals, and the demo set-up (passwords and records)."""
from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import pytest

from flowdesk import studio_cmd
from flowdesk.cli import db_option, env_option
from runtime.crm.users import SYSTEM
from studio.app import create_app

REPO = Path(__file__).resolve().parent.parent


def parse(*argv: str):
    parser = argparse.ArgumentParser()
    studio_cmd.add_parser(parser.add_subparsers(), env_option, db_option)
    return parser.parse_args(["studio", *argv])


def project(folder: Path) -> Path:
    for name in ("flows", "schemas"):
        shutil.copytree(REPO / name, folder / name, ignore=shutil.ignore_patterns("*.test.yaml"))
    shutil.copy(REPO / "flowdesk.yaml", folder / "flowdesk.yaml")
    return folder


def test_options_and_their_defaults():
    args = parse()
    assert (args.project, args.port, args.host, args.demo, args.db) == (".", 8000, "127.0.0.1", False, None)
    args = parse("--project", "x", "--port", "9000", "--host", "0.0.0.0", "--demo", "--db", "sqlite:///a.db")
    assert (args.project, args.port, args.host, args.demo, args.db) == ("x", 9000, "0.0.0.0", True, "sqlite:///a.db")


def test_a_folder_that_is_no_project_is_a_usage_error(tmp_path, capsys):
    assert studio_cmd.cmd_studio(parse("--project", str(tmp_path))) == 2
    assert "no flows/ or schemas/" in capsys.readouterr().err


def test_a_project_with_errors_is_not_served(tmp_path, capsys):
    folder = project(tmp_path / "p")
    (folder / "schemas" / "broken.schema").write_text('entity Broken "坏" {\n    x: nosuchtype\n}\n')
    assert studio_cmd.cmd_studio(parse("--project", str(folder))) == 1
    err = capsys.readouterr().err
    assert "does not compile" in err and "broken.schema" in err


def test_demo_prints_log_ins_that_work_and_seeds_an_empty_crm_once(tmp_path):
    app = create_app(project(tmp_path / "p"))
    studio = app.state.studio
    printed: list[str] = []
    studio_cmd.prepare_demo(studio, out=printed.append)
    log_ins = {line.split()[0]: line.split()[1] for line in printed if line.startswith("  ")}
    assert set(log_ins) == set(studio.bundle.agents)
    assert studio.accounts.authenticate("li_na", log_ins["li_na"]).name == "li_na"
    counts = {e: len(studio.store.list(SYSTEM, e).rows) for e in ("AccountManager", "Customer", "Ticket")}
    assert counts == {"AccountManager": 2, "Customer": 5, "Ticket": 3}
    vip = next(r for r in studio.store.list(SYSTEM, "Customer").rows if r["name"] == "刘德明")
    manager = studio.store.get(SYSTEM, "AccountManager", vip["manager"])
    assert manager["agent"] == "zhang_wei"
    again: list[str] = []
    studio_cmd.prepare_demo(studio, out=again.append)
    assert not any(line.startswith("demo records added") for line in again)
    assert len(studio.store.list(SYSTEM, "Customer").rows) == 5


def test_bad_demo_records_are_refused_whole(tmp_path):
    app = create_app(project(tmp_path / "p"))
    store = app.state.studio.store
    records = tmp_path / "demo.yaml"
    records.write_text("Customer:\n  - {name: 好, phone: '13800138000'}\n  - {name: 坏, phone: 'abc'}\n",
                       encoding="utf-8")
    with pytest.raises(studio_cmd.DemoError, match="Customer #2"):
        studio_cmd.seed(store, records)
    assert store.list(SYSTEM, "Customer").rows == []
    records.write_text("Nothing:\n  - {a: 1}\n", encoding="utf-8")
    with pytest.raises(studio_cmd.DemoError, match="no entity 'Nothing'"):
        studio_cmd.seed(store, records)
    records.write_text("Customer:\n  - {name: x, phone: '13800138000', manager: {agent: nobody}}\n", encoding="utf-8")
    with pytest.raises(studio_cmd.DemoError, match="no AccountManager has"):
        studio_cmd.seed(store, records)
