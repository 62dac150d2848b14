"""Numbered versions of a project and which one is live, on SQLite and PostgreSQL."""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from sqlalchemy import update

from compiler import compile_project
from runtime import versions
from tests.conftest import database_engine

REPO = Path(__file__).resolve().parents[1]
AT = dt.datetime(2026, 11, 23, 2, 0, tzinfo=dt.timezone.utc)


@pytest.fixture(scope="module")
def bundle():
    return compile_project([REPO / "flows", REPO / "schemas"]).bundle


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path):
    with database_engine(request.param, tmp_path, prefix="versions") as engine:
        versions.create_tables(engine)
        yield engine


def later(minutes: int) -> dt.datetime:
    return AT + dt.timedelta(minutes=minutes)


def test_nothing_is_live_before_the_first_version(engine):
    assert versions.live(engine) is None
    assert versions.previous(engine) is None
    assert versions.history(engine) == []


def test_versions_count_up_and_the_last_activated_is_live(engine, bundle):
    changed = bundle.model_copy(update={"hash": "sha256:other"})
    first = versions.publish(engine, bundle, {"flows/a.flow": "一"}, by="system", at=AT, kind="start")
    second = versions.publish(engine, changed, {"flows/a.flow": "二"}, by="zhou_qiang", at=later(5), note="新提示音")
    assert (first, second) == (1, 2)
    live = versions.live(engine)
    assert (live.number, live.bundle_hash, live.published_by, live.note) == (2, "sha256:other", "zhou_qiang", "新提示音")
    assert live.published_at == later(5)
    assert versions.previous(engine).number == 1
    assert [v.number for v in versions.history(engine)] == [2, 1]
    assert versions.sources(engine, 1) == {"flows/a.flow": "一"}


def test_a_rollback_activates_an_earlier_version_and_keeps_every_version(engine, bundle):
    versions.publish(engine, bundle, {}, by="system", at=AT, kind="start")
    versions.publish(engine, bundle, {}, by="zhou_qiang", at=later(1))
    with engine.begin() as connection:
        versions.activate(connection, 1, kind="rollback", by="zhou_qiang", at=later(2))
    assert versions.live(engine).number == 1
    assert versions.previous(engine).number == 2      # what was live before the rollback
    log = versions.activations(engine)
    assert [(a.number, a.kind, a.by) for a in log] == [(1, "rollback", "zhou_qiang"), (2, "publish", "zhou_qiang"),
                                                        (1, "start", "system")]
    assert log[0].at == later(2)
    assert [v.number for v in versions.history(engine)] == [2, 1]


def test_activating_a_version_that_does_not_exist_is_refused(engine):
    with pytest.raises(versions.VersionError, match="there is no version 7"), engine.begin() as connection:
        versions.activate(connection, 7, kind="rollback", by="zhou_qiang", at=AT)
    assert versions.live(engine) is None


def test_the_stored_bundle_comes_back_as_it_was(engine, bundle):
    versions.publish(engine, bundle, {}, by="system", at=AT, kind="start")
    assert versions.bundle(engine, 1) == bundle


def test_a_bundle_of_another_format_is_compiled_again_from_its_sources(engine, bundle):
    files = {path.relative_to(REPO).as_posix(): path.read_text(encoding="utf-8")
             for folder in ("flows", "schemas") for path in (REPO / folder).rglob("*")
             if path.is_file() and not path.name.endswith(".test.yaml")}
    files["flowdesk.yaml"] = (REPO / "flowdesk.yaml").read_text(encoding="utf-8")
    versions.publish(engine, bundle, files, by="system", at=AT, kind="start")
    old = json.loads(bundle.model_dump_json())
    old["format"] = 0
    with engine.begin() as connection:
        connection.execute(update(versions.VERSIONS).values(bundle=json.dumps(old)))
    assert versions.bundle(engine, 1).hash == bundle.hash


def test_a_damaged_bundle_is_refused_with_its_number(engine, bundle):
    versions.publish(engine, bundle, {}, by="system", at=AT, kind="start")
    damaged = json.loads(bundle.model_dump_json())
    damaged["environment"] = "production"
    with engine.begin() as connection:
        connection.execute(update(versions.VERSIONS).values(bundle=json.dumps(damaged)))
    with pytest.raises(versions.VersionError, match="version 1 is damaged"):
        versions.bundle(engine, 1)


def test_publishing_and_rolling_back_migrate_the_database(engine, tmp_path):
    """studio.release on both databases: a new field is migrated in; rolling back over it is refused."""
    import shutil

    from sqlalchemy import inspect

    from studio import release

    project = tmp_path / "project"
    for name in ("flows", "schemas"):
        shutil.copytree(REPO / name, project / name, ignore=shutil.ignore_patterns("*.test.yaml"))
    shutil.copy(REPO / "flowdesk.yaml", project / "flowdesk.yaml")
    first = release.check(project, engine)
    assert first.blockers == [] and first.live is None
    assert release.publish(engine, first, by="ci", at=AT) == 1
    schema = project / "schemas" / "customer.schema"
    schema.write_text(schema.read_text(encoding="utf-8").replace(
        '    notes: text max 500 label "备注"\n', '    notes: text max 500 label "备注"\n    wechat: text max 40\n'),
        encoding="utf-8")
    second = release.check(project, engine)
    assert any("add field wechat" in change for change in second.migration)
    assert release.publish(engine, second, by="ci", at=later(1)) == 2
    assert "wechat" in {c["name"] for c in inspect(engine).get_columns("crm_customer")}
    with pytest.raises(release.PublishRefused, match="回滚到版本 1 需要把数据库改回当时的结构"):
        release.roll_back(engine, 1, by="ci", at=later(2))
    assert versions.live(engine).number == 2
