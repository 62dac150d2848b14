"""What publishing checks, and what it changes in the database: one piece of code for the studio's
publish page and `flowdesk publish`.

`check(project, engine, ...)` compiles the project's files as they are on disk and compares them
with the live version: the text of each file changed, what changed in numbers, flows, queues,
hours, agents and the CRM's entities, and the migration of the database that follows (a dry run
of `runtime.crm.migrate`, so it checks the data too).  It runs the project's flow tests
(flows/*.test.yaml) against the new bundle.  `Candidate.blockers` says why it may not be published.

`publish(engine, candidate, ...)` migrates the database and records and activates the new version;
`roll_back(engine, number, ...)` migrates the database back to that version's schemas and activates
it.  Both refuse, changing nothing, a migration that would lose data.
"""
from __future__ import annotations

import datetime as dt
import difflib
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import Engine

from compiler import CompileResult, compile_project, ir
from dsl.diagnostics import render
from runtime import versions

FOLDERS = ("flows", "schemas")
SETTINGS = "flowdesk.yaml"
TEST_SUFFIX = ".test.yaml"
SECTIONS = (("numbers", "号码"), ("flows", "流程"), ("queues", "队列"), ("hours", "服务时间"), ("agents", "坐席"),
            ("entities", "数据实体"), ("workflows", "工单流程"), ("forms", "表单"), ("lists", "列表"),
            ("roles", "角色"), ("evaluations", "质检评分表"))


class PublishRefused(Exception):
    """Nothing was published or rolled back; `reasons` say why and what to do."""

    def __init__(self, reasons: list[str]):
        self.reasons = reasons
        super().__init__("\n".join(reasons))


# ------------------------------------------------------------------ what a candidate is

@dataclass(frozen=True)
class FileChange:
    path: str
    status: str          # added | removed | changed
    diff: str            # unified diff, live version first

    @property
    def status_title(self) -> str:
        return {"added": "新增", "removed": "删除", "changed": "修改"}[self.status]


@dataclass(frozen=True)
class Change:
    section: str         # 流程, 队列...
    status: str          # added | removed | changed
    name: str
    detail: str = ""

    @property
    def text(self) -> str:
        verb = {"added": "新增", "removed": "删除", "changed": "修改"}[self.status]
        return f"{verb}{self.section} {self.name}" + (f":{self.detail}" if self.detail else "")


@dataclass(frozen=True)
class TestResult:
    path: str
    name: str
    passed: bool
    message: str = ""    # why it failed, with the call's transcript


@dataclass
class Candidate:
    """The project's files as they are now, weighed against the live version."""
    sources: dict[str, str]
    result: CompileResult
    errors: list[str]                         # the compiler's errors as `flowdesk check` prints them
    live: versions.Version | None
    files: list[FileChange] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    migration: list[str] = field(default_factory=list)      # what the database's migration does
    refusals: list[str] = field(default_factory=list)       # why the migration would be refused
    tests: list[TestResult] = field(default_factory=list)

    @property
    def bundle(self) -> ir.Bundle | None:
        return self.result.bundle if not self.errors else None

    @property
    def failed_tests(self) -> list[TestResult]:
        return [t for t in self.tests if not t.passed]

    @property
    def changed(self) -> bool:
        """Something to publish: the bundle, or only the files' text (a comment is worth a version
        too, so the live version's sources stay those in git)."""
        return self.bundle is not None and (self.live is None or self.bundle.hash != self.live.bundle_hash
                                            or bool(self.files))

    @property
    def blockers(self) -> list[str]:
        """Why this may not be published; empty when it may."""
        out = []
        if self.errors:
            out.append(f"项目有 {len(self.errors)} 个错误,不能发布;请先在文件中改正。")
        out += [f"数据库迁移会丢失数据,不能发布:{reason}" for reason in self.refusals]
        if self.failed_tests:
            names = "、".join(t.name for t in self.failed_tests[:5])
            out.append(f"{len(self.failed_tests)} 个流程测试没有通过({names}),不能发布;请修改流程或测试。")
        if not out and not self.changed:
            out.append(f"与线上版本 {self.live.number} 相同,没有可发布的改动。")
        return out


# ------------------------------------------------------------------ checking

def read_sources(project: Path) -> dict[str, str]:
    """The files a version is compiled from, {path in the project: text}: flowdesk.yaml and every
    file under flows/ and schemas/ except the flow tests (the holidays' files included)."""
    out = {}
    settings = project / SETTINGS
    if settings.is_file():
        out[SETTINGS] = settings.read_text(encoding="utf-8")
    for folder in FOLDERS:
        root = project / folder
        if root.is_dir():
            for path in sorted(root.rglob("*")):
                if path.is_file() and not path.name.endswith(TEST_SUFFIX) and not path.name.startswith("."):
                    try:
                        out[path.relative_to(project).as_posix()] = path.read_text(encoding="utf-8")
                    except UnicodeDecodeError:
                        continue      # not text: the compiler reads no such file either
    return out


def compile_files(project: Path, environment: str | None) -> CompileResult:
    return compile_project([project / folder for folder in FOLDERS if (project / folder).is_dir()],
                           environment=environment)


def check(project: Path, engine: Engine, environment: str | None = None) -> Candidate:
    """The project's files, compiled, compared with the live version, migrated on a dry run and tested."""
    from runtime.crm.migrate import MigrationRefused, migrate

    versions.create_tables(engine)
    live = versions.live(engine)
    result = compile_files(project, environment)
    errors = [render(d, result.sources.text_of(d.file)) for d in result.errors]
    if result.bundle is None and not errors:
        errors = ["项目中没有可以编译的文件"]
    candidate = Candidate(read_sources(project), result, errors, live)
    live_sources = versions.sources(engine, live.number) if live else {}
    candidate.files = file_changes(live_sources, candidate.sources)
    if candidate.bundle is None:
        return candidate
    if live is not None:
        candidate.changes = bundle_changes(versions.bundle(engine, live.number), candidate.bundle)
    try:
        report = migrate(engine, candidate.bundle, dry_run=True)
        candidate.migration = report.changes
    except MigrationRefused as refused:
        candidate.refusals = refused.messages
    candidate.tests = run_tests(project, candidate.bundle)
    return candidate


def file_changes(before: dict[str, str], after: dict[str, str]) -> list[FileChange]:
    out = []
    for path in sorted(set(before) | set(after)):
        old, new = before.get(path), after.get(path)
        if old == new:
            continue
        status = "added" if old is None else "removed" if new is None else "changed"
        lines = difflib.unified_diff((old or "").splitlines(keepends=True), (new or "").splitlines(keepends=True),
                                     fromfile=f"线上/{path}", tofile=f"新版/{path}")
        out.append(FileChange(path, status, "".join(line if line.endswith("\n") else line + "\n" for line in lines)))
    return out


def bundle_changes(old: ir.Bundle, new: ir.Bundle) -> list[Change]:
    """What was added, removed and changed, section by section; a flow's changed steps are named."""
    out = []
    for section, title in SECTIONS:
        before, after = getattr(old, section), getattr(new, section)
        for name in sorted(set(before) | set(after)):
            if name not in before:
                out.append(Change(title, "added", name, _shown(after[name])))
            elif name not in after:
                out.append(Change(title, "removed", name, _shown(before[name])))
            elif before[name] != after[name]:
                detail = _steps_changed(before[name], after[name]) if section == "flows" else _shown(after[name])
                out.append(Change(title, "changed", name, detail))
    return out


def _shown(item) -> str:
    """What a line of the change list says about an item: its title, or the flow a number goes to."""
    if isinstance(item, str):
        return f"→ {item}"
    return getattr(item, "title", None) or ""


def _steps_changed(old: ir.Flow, new: ir.Flow) -> str:
    before, after = {s.id: s for s in old.steps}, {s.id: s for s in new.steps}
    parts = []
    for verb, names in (("新增步骤", [s for s in after if s not in before]),
                        ("删除步骤", [s for s in before if s not in after]),
                        ("修改步骤", [s for s in after if s in before and before[s] != after[s]])):
        if names:
            parts.append(f"{verb} {', '.join(names)}")
    return ";".join(parts) or "流程设置"


def run_tests(project: Path, bundle: ir.Bundle) -> list[TestResult]:
    """Every flow test of the project (flows/*.test.yaml) run against `bundle`."""
    from runtime import flowtest
    from runtime.scenario import ScenarioError, load_tests

    out = []
    for path in flowtest.find_test_files([project / folder for folder in FOLDERS if (project / folder).is_dir()]):
        shown = path.relative_to(project).as_posix()
        try:
            tests = load_tests(path)
        except ScenarioError as error:
            out.append(TestResult(shown, "(测试文件)", False, f"测试文件有错误:{error}"))
            continue
        for test in tests:
            outcome = flowtest.run_test(bundle, test, path)
            message = "" if outcome.passed else "\n".join(
                [f"第 {test.line} 行,{outcome.error.step}: {outcome.error}", "通话记录:",
                 *(f"    {line}" for line in outcome.transcript)])
            out.append(TestResult(shown, test.name, outcome.passed, message))
    return out


# ------------------------------------------------------------------ changing the database

def publish(engine: Engine, candidate: Candidate, *, by: str, at: dt.datetime, note: str = "") -> int:
    """Migrate the database to the candidate's schemas, record it as the next version and make it
    live; its number.  PublishRefused (nothing changed) when it has blockers or the migration is
    refused now."""
    from runtime.crm.migrate import MigrationRefused, migrate

    if candidate.blockers:
        raise PublishRefused(candidate.blockers)
    published: list[int] = []

    def record(connection) -> None:     # in the migration's transaction: the tables and the version together
        published.append(versions.publish_in(connection, candidate.bundle, candidate.sources, by=by, at=at,
                                             note=note))
    try:
        migrate(engine, candidate.bundle, now=lambda: at, then=record)
    except MigrationRefused as refused:
        raise PublishRefused([f"数据库迁移会丢失数据,不能发布:{m}" for m in refused.messages]) from None
    return published[0]


def roll_back(engine: Engine, number: int, *, by: str, at: dt.datetime) -> ir.Bundle:
    """Make version `number` live again, with the database migrated back to its schemas; its bundle."""
    from runtime.crm.migrate import MigrationRefused, migrate

    live = versions.live(engine)
    if versions.version(engine, number) is None:
        raise PublishRefused([f"没有版本 {number}"])
    if live is not None and live.number == number:
        raise PublishRefused([f"版本 {number} 已经是线上版本"])
    try:
        bundle = versions.bundle(engine, number)
    except versions.VersionError as error:
        raise PublishRefused([str(error)]) from None
    try:
        migrate(engine, bundle, now=lambda: at,
                then=lambda connection: versions.activate(connection, number, kind="rollback", by=by, at=at))
    except MigrationRefused as refused:
        raise PublishRefused([f"回滚到版本 {number} 需要把数据库改回当时的结构,这会丢失数据:{m}"
                              for m in refused.messages]) from None
    return bundle


def start_version(engine: Engine, project: Path, bundle: ir.Bundle, *, at: dt.datetime) -> int:
    """The first version, recorded when a studio starts on a database that has none: the files it
    compiled at start."""
    return versions.publish(engine, bundle, read_sources(project), by="system", at=at, note="首次启动",
                            kind="start")
