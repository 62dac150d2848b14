"""The published versions of a project, numbered 1, 2, 3..., and which one is live.

`bundle_versions` keeps each published bundle whole (its JSON) beside the source files it was
compiled from, so a version can be run again, compared with, or compiled again by a newer
compiler.  `bundle_activations` is the log of what went live when: a version published, a
rollback to an earlier one, or the first start of the studio on a database without versions.
The live version is the one activated last; activating never changes a stored version.
"""
from __future__ import annotations

import datetime as dt
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import (Column, DateTime, ForeignKey, Integer, MetaData, String, Table, Text, func, insert,
                        select)
from sqlalchemy.engine import Connection, Engine

from compiler import bundle as sealed
from compiler import ir
from runtime.values import coerce

KINDS = ("start", "publish", "rollback")

METADATA = MetaData()
VERSIONS = Table(
    "bundle_versions", METADATA,
    Column("number", Integer, primary_key=True, autoincrement=False),
    Column("bundle_hash", String(80), nullable=False),
    Column("bundle", Text, nullable=False),           # the bundle's JSON
    Column("sources", Text, nullable=False),          # {path in the project: text}, as JSON
    Column("published_by", String(64), nullable=False),
    Column("published_at", DateTime(timezone=True), nullable=False),
    Column("note", Text, nullable=False, default=""),
)
ACTIVATIONS = Table(
    "bundle_activations", METADATA,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("number", Integer, ForeignKey("bundle_versions.number"), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("activated_by", String(64), nullable=False),
    Column("activated_at", DateTime(timezone=True), nullable=False),
)


class VersionError(Exception):
    """A version that cannot be found or run; the message says which and why."""


@dataclass(frozen=True)
class Version:
    """A published version as history lists it (without the bundle and sources)."""
    number: int
    bundle_hash: str
    published_by: str
    published_at: dt.datetime
    note: str


@dataclass(frozen=True)
class Activation:
    number: int
    kind: str
    by: str
    at: dt.datetime


def create_tables(engine: Engine) -> None:
    METADATA.create_all(engine, tables=[VERSIONS, ACTIVATIONS])


# ------------------------------------------------------------------ writing

def record(connection: Connection, bundle: ir.Bundle, sources: dict[str, str], *, by: str, at: dt.datetime,
           note: str = "") -> int:
    """Keep `bundle` and its sources as the next numbered version; its number."""
    number = (connection.execute(select(func.max(VERSIONS.c.number))).scalar() or 0) + 1
    connection.execute(insert(VERSIONS).values(
        number=number, bundle_hash=bundle.hash, bundle=bundle.model_dump_json(),
        sources=json.dumps(sources, ensure_ascii=False, sort_keys=True), published_by=by, published_at=at,
        note=note))
    return number


def activate(connection: Connection, number: int, *, kind: str, by: str, at: dt.datetime) -> None:
    """Make version `number` the live one."""
    if kind not in KINDS:
        raise ValueError(f"{kind!r} is not a kind of activation; the kinds are: {', '.join(KINDS)}")
    if connection.execute(select(VERSIONS.c.number).where(VERSIONS.c.number == number)).first() is None:
        raise VersionError(f"there is no version {number}")
    connection.execute(insert(ACTIVATIONS).values(number=number, kind=kind, activated_by=by, activated_at=at))


def publish(engine: Engine, bundle: ir.Bundle, sources: dict[str, str], *, by: str, at: dt.datetime,
            note: str = "", kind: str = "publish") -> int:
    """Record and activate in one transaction; the new version's number."""
    with engine.begin() as connection:
        return publish_in(connection, bundle, sources, by=by, at=at, note=note, kind=kind)


def publish_in(connection: Connection, bundle: ir.Bundle, sources: dict[str, str], *, by: str, at: dt.datetime,
               note: str = "", kind: str = "publish") -> int:
    """Record and activate in the caller's transaction; the new version's number."""
    number = record(connection, bundle, sources, by=by, at=at, note=note)
    activate(connection, number, kind=kind, by=by, at=at)
    return number


# ------------------------------------------------------------------ reading

def live(engine: Engine) -> Version | None:
    """The version activated last, None before the first."""
    with engine.connect() as connection:
        number = connection.execute(select(ACTIVATIONS.c.number).order_by(ACTIVATIONS.c.id.desc()).limit(1)).scalar()
    return version(engine, number) if number is not None else None


def previous(engine: Engine) -> Version | None:
    """The version that was live before the live one (what a rollback returns to), None if none was."""
    log = activations(engine)
    if not log:
        return None
    current = log[0].number
    earlier = next((a.number for a in log if a.number != current), None)
    return version(engine, earlier) if earlier is not None else None


def version(engine: Engine, number: int) -> Version | None:
    with engine.connect() as connection:
        row = connection.execute(select(*_SUMMARY).where(VERSIONS.c.number == number)).first()
    return _version(row) if row else None


def history(engine: Engine) -> list[Version]:
    """Every version, newest first."""
    with engine.connect() as connection:
        rows = connection.execute(select(*_SUMMARY).order_by(VERSIONS.c.number.desc())).all()
    return [_version(row) for row in rows]


def activations(engine: Engine) -> list[Activation]:
    """What went live when, newest first."""
    with engine.connect() as connection:
        rows = connection.execute(select(ACTIVATIONS).order_by(ACTIVATIONS.c.id.desc())).all()
    return [Activation(r.number, r.kind, r.activated_by, coerce(r.activated_at, "datetime")) for r in rows]


def sources(engine: Engine, number: int) -> dict[str, str]:
    """The source files version `number` was compiled from, {path in the project: text}."""
    with engine.connect() as connection:
        text = connection.execute(select(VERSIONS.c.sources).where(VERSIONS.c.number == number)).scalar()
    if text is None:
        raise VersionError(f"there is no version {number}")
    return json.loads(text)


def bundle(engine: Engine, number: int) -> ir.Bundle:
    """The bundle of version `number`, ready to run: as stored, or compiled again from its sources
    when it was made by a compiler whose bundle format differs from this one's."""
    with engine.connect() as connection:
        row = connection.execute(select(VERSIONS.c.bundle, VERSIONS.c.sources)
                                 .where(VERSIONS.c.number == number)).first()
    if row is None:
        raise VersionError(f"there is no version {number}")
    stored = json.loads(row.bundle)
    if stored.get("format") == ir.FORMAT_VERSION:
        try:
            return sealed.from_json(row.bundle)
        except ValueError as error:
            raise VersionError(f"version {number} is damaged in the database: {error}") from None
    return recompile(json.loads(row.sources), stored.get("environment"), number)


def recompile(files: dict[str, str], environment: str | None, number: int) -> ir.Bundle:
    """Compile stored sources again (in a scratch folder laid out as the project was)."""
    from compiler import compile_project

    with tempfile.TemporaryDirectory(prefix="flowdesk-version-") as scratch:
        root = Path(scratch)
        for path, text in files.items():
            target = root / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        folders = [root / name for name in ("flows", "schemas") if (root / name).is_dir()]
        result = compile_project(folders, environment=environment)
    if result.bundle is None or result.errors:
        raise VersionError(f"version {number} was made by an older compiler and does not compile with this one "
                           f"({len(result.errors)} errors); publish the project again")
    return result.bundle


_SUMMARY = (VERSIONS.c.number, VERSIONS.c.bundle_hash, VERSIONS.c.published_by, VERSIONS.c.published_at,
            VERSIONS.c.note)


def _version(row) -> Version:
    return Version(row.number, row.bundle_hash, row.published_by, coerce(row.published_at, "datetime"), row.note)
