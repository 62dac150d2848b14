"""`flowdesk publish`: the studio's checks from the command line, exit code 1 when they refuse."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from flowdesk import cli
from runtime import versions

REPO = Path(__file__).resolve().parents[1]
HOTLINE = "flows/hotline.flow"
OLD_GREETING = "您好,欢迎致电星海通信客服热线。"
NEW_GREETING = "您好,这里是星海通信新版热线。"


@pytest.fixture
def project(tmp_path) -> Path:
    folder = tmp_path / "project"
    for name in ("flows", "schemas"):
        shutil.copytree(REPO / name, folder / name)      # with the example's flow tests
    shutil.copy(REPO / "flowdesk.yaml", folder / "flowdesk.yaml")
    return folder


@pytest.fixture
def db(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'flowdesk.db'}"


def edit(project: Path, path: str, old: str, new: str) -> None:
    target = project / path
    target.write_text(target.read_text(encoding="utf-8").replace(old, new, 1), encoding="utf-8")


def live(db: str):
    engine = create_engine(db)
    try:
        return versions.live(engine)
    finally:
        engine.dispose()


def test_the_first_publish_is_version_1_after_the_flow_tests_pass(project, db, capsys):
    assert cli.main(["publish", str(project), "--db", db, "--by", "ci", "--note", "first"]) == 0
    out = capsys.readouterr().out
    assert "live version: none yet" in out and "flow tests: 75 passed, 0 failed" in out
    assert "published version 1" in out
    version = live(db)
    assert (version.number, version.published_by, version.note) == (1, "ci", "first")


def test_nothing_changed_is_refused(project, db, capsys):
    cli.main(["publish", str(project), "--db", db])
    capsys.readouterr()
    assert cli.main(["publish", str(project), "--db", db]) == 1
    assert "与线上版本 1 相同" in capsys.readouterr().err


def test_a_failing_flow_test_refuses_and_names_it(project, db, capsys):
    cli.main(["publish", str(project), "--db", db])
    edit(project, HOTLINE, OLD_GREETING, NEW_GREETING)
    capsys.readouterr()
    assert cli.main(["publish", str(project), "--db", db, "--diff"]) == 1
    captured = capsys.readouterr()
    assert "修改 flows/hotline.flow" in captured.out and f"+    say \"{NEW_GREETING}" in captured.out
    assert "FAILED flows/hotline.test.yaml::" in captured.err and "流程测试没有通过" in captured.err
    assert "not published: nothing in" in captured.err and live(db).number == 1


def test_a_compile_error_refuses(project, db, capsys):
    edit(project, HOTLINE, "-> to_agent", "-> to_agnet")
    assert cli.main(["publish", str(project), "--db", db]) == 1
    err = capsys.readouterr().err
    assert "to_agnet" in err and "个错误,不能发布" in err and live(db) is None


def test_a_lossy_migration_refuses(project, db, capsys):
    cli.main(["publish", str(project), "--db", db])
    edit(project, "schemas/customer.schema", "notes: text max 500", "notes: text max 100")
    capsys.readouterr()
    assert cli.main(["publish", str(project), "--db", db]) == 1
    assert "数据库迁移会丢失数据" in capsys.readouterr().err and live(db).number == 1


def test_publish_then_roll_back(project, db, capsys):
    cli.main(["publish", str(project), "--db", db])
    edit(project, "flows/queues.flow", "wrapup 30s", "wrapup 40s")
    assert cli.main(["publish", str(project), "--db", db, "--note", "longer wrap-up"]) == 0
    assert "修改队列 general" in capsys.readouterr().out and live(db).number == 2
    assert cli.main(["publish", str(project), "--db", db, "--rollback"]) == 0
    assert "rolled back" in capsys.readouterr().out and live(db).number == 1
    assert cli.main(["publish", str(project), "--db", db, "--rollback", "2"]) == 0
    assert live(db).number == 2
    assert cli.main(["publish", str(project), "--db", db, "--rollback", "7"]) == 1
    assert "没有版本 7" in capsys.readouterr().err


def test_a_folder_without_a_project_is_a_usage_error(tmp_path, capsys):
    assert cli.main(["publish", str(tmp_path), "--db", f"sqlite:///{tmp_path / 'x.db'}"]) == 2
    assert "has no flows/ or schemas/ folder" in capsys.readouterr().err
