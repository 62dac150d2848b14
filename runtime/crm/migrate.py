"""Deploying a bundle's entities to the database: the first deploy creates the CRM's tables, later
ones change them to match the new schema (compiler.schema_diff says what changes).

Each deploy is one transaction (SQLite and PostgreSQL both roll DDL back): a refused or failing
migration leaves the database exactly as it was.  The changes are made with Alembic's operations
(`batch_alter_table`, which on SQLite copies a table into its new shape) and the result matches
what `runtime.crm.tables.crm_metadata` would create on an empty database.

Besides the entities' tables a deploy makes the store's own (the audit log, notices, SLA events,
log-ins) and the lists' search indexes with their triggers (runtime.crm.search), refilling an
entity's search index when the migration changed its table, so a migrated database is complete.

The deployed schema and its history are in `crm_schema_versions`: version, applied_at, the
bundle's hash, the entities and their workflows as JSON, and the changes in plain words.
Values that an allowed lossy change removes are first copied, with their record ids, into
`crm_backup_<version>_<table>`.
"""
from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable

from alembic.migration import MigrationContext
from alembic.operations import Operations
from sqlalchemy import (Column, DateTime, Integer, MetaData, String, Table, Text, func, insert, inspect, select,
                        update)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.schema import sort_tables

from compiler import ir
from compiler import schema_diff as sd
from runtime.crm import notifications, search, users
from runtime.crm.audit import audit_table
from runtime.crm.tables import crm_metadata, link_table_name, table_name
from runtime.times import utcnow
from runtime.values import coerce

versions_table = Table(
    "crm_schema_versions", MetaData(),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("applied_at", DateTime(timezone=True), nullable=False),
    Column("bundle_hash", String(80), nullable=False),
    Column("entities", Text, nullable=False),
    Column("workflows", Text, nullable=False),
    Column("changes", Text, nullable=False),
)

# Any number will do, as long as everyone migrating the CRM takes the same PostgreSQL lock.
LOCK_KEY = 0x666C6F776465736B


class MigrationRefused(Exception):
    """The migration was not applied; `messages` say why and what to do."""

    def __init__(self, messages: list[str]):
        self.messages = messages
        super().__init__("\n".join(messages))


@dataclass
class MigrationReport:
    version: int                 # the deployed version afterwards
    changes: list[str]           # what was done (or would be, on a dry run), in plain words
    backups: list[str] = field(default_factory=list)
    first: bool = False          # the first deploy: every table was created
    applied: bool = False        # False when nothing needed to change, and on a dry run
    dry_run: bool = False


@dataclass
class Version:
    version: int
    applied_at: dt.datetime
    bundle_hash: str
    entities: dict[str, ir.Entity]
    workflows: dict[str, ir.Workflow]
    changes: list[str]


def migrate(engine: Engine, bundle: ir.Bundle, *, allow_loss: bool = False, dry_run: bool = False,
            now: Callable[[], dt.datetime] = utcnow,
            then: Callable[[Connection], object] | None = None) -> MigrationReport:
    """Bring the CRM's tables to the bundle's entities; raises MigrationRefused, changing nothing,
    when the change could lose data (unless allowed) or the data does not fit the new rules.
    `then(connection)` runs in the same transaction after the migration (recording the version
    that uses these tables, say), so both happen or neither."""
    with _transaction(engine, commit=not dry_run) as connection:
        report = _migrate(connection, bundle, allow_loss, dry_run, now)
        if then is not None:
            then(connection)
        return report


def _migrate(connection: Connection, bundle: ir.Bundle, allow_loss: bool, dry_run: bool,
             now: Callable[[], dt.datetime]) -> MigrationReport:
    latest = _latest(connection)
    version = latest.version + 1 if latest else 1
    entities, workflows = _deployable(bundle)
    plan = sd.diff(latest.entities if latest else None, entities,
                   deployed_workflows=latest.workflows if latest else None, workflows=workflows)
    refusals = plan.refusals(version, allow_loss)
    if refusals:
        raise MigrationRefused(refusals)
    work = _Migration(connection, bundle, plan, version)
    changes = work.create_all() if latest is None else work.apply()
    changes += work.store_tables() + work.search()
    unchanged = latest is not None and _as_json(latest.entities) == _as_json(entities) \
        and _as_json(latest.workflows) == _as_json(workflows)
    if not changes and unchanged:
        return MigrationReport(version=latest.version, changes=[], dry_run=dry_run)
    changes = changes or ["labels and other details that need no change to the tables"]
    connection.execute(insert(versions_table).values(
        version=version, applied_at=now(), bundle_hash=bundle.hash, entities=_as_json(entities),
        workflows=_as_json(workflows), changes="\n".join(changes)))
    return MigrationReport(version=version, changes=changes, backups=work.backups, first=latest is None,
                           applied=not dry_run, dry_run=dry_run)


def history(engine: Engine) -> list[Version]:
    """Every deployed version, oldest first (empty before the first deploy)."""
    if not inspect(engine).has_table(versions_table.name):
        return []
    with engine.connect() as connection:
        rows = connection.execute(select(versions_table).order_by(versions_table.c.version)).all()
    return [_version(row) for row in rows]


def _deployable(bundle: ir.Bundle) -> tuple[dict[str, ir.Entity], dict[str, ir.Workflow]]:
    """The entities, and the workflows that give entities their `state`."""
    used = {e.workflow for e in bundle.entities.values() if e.workflow}
    return dict(bundle.entities), {name: w for name, w in bundle.workflows.items() if name in used}


def _as_json(models: dict[str, Any]) -> str:
    return json.dumps({k: v.model_dump(mode="json") for k, v in models.items()}, sort_keys=True,
                      ensure_ascii=False)


def _latest(connection: Connection) -> Version | None:
    row = connection.execute(select(versions_table).order_by(versions_table.c.version.desc()).limit(1)).first()
    return _version(row) if row else None


def _version(row) -> Version:
    entities = {k: ir.Entity.model_validate(v) for k, v in json.loads(row.entities).items()}
    workflows = {k: ir.Workflow.model_validate(v) for k, v in json.loads(row.workflows).items()}
    return Version(row.version, coerce(row.applied_at, "datetime"), row.bundle_hash, entities, workflows,
                   row.changes.splitlines())


@contextmanager
def _transaction(engine: Engine, commit: bool):
    """One transaction for the whole migration, held by one migrating process at a time.

    SQLite: foreign keys are switched off meanwhile (the setting cannot change inside a
    transaction), because copying a table into its new shape drops the old one, which with foreign
    keys on would empty the references to it; they are checked before the commit instead."""
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            foreign_keys = connection.exec_driver_sql("PRAGMA foreign_keys").scalar()
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            connection.commit()
            # pysqlite begins transactions only before data changes; DDL must be inside one too.
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            connection.execute(select(func.pg_advisory_xact_lock(LOCK_KEY)))
        try:
            versions_table.create(connection, checkfirst=True)
            yield connection
            if sqlite:
                _check_foreign_keys(connection)
            connection.commit() if commit else connection.rollback()
        except BaseException:
            connection.rollback()
            raise
        finally:
            if sqlite and foreign_keys:
                connection.exec_driver_sql("PRAGMA foreign_keys=ON")
                connection.commit()


def _check_foreign_keys(connection: Connection) -> None:
    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
    if broken:
        tables = sorted({row[0] for row in broken})
        raise RuntimeError(f"the migration would leave records pointing at records that do not exist "
                           f"(in {', '.join(tables)}); nothing was changed")


# ------------------------------------------------------------------ applying a plan

class _Migration:
    def __init__(self, connection: Connection, bundle: ir.Bundle, plan: sd.SchemaPlan, version: int):
        self.connection = connection
        self.ops = Operations(MigrationContext.configure(connection))
        self.sqlite = connection.dialect.name == "sqlite"
        self.metadata = crm_metadata(bundle)
        self.bundle = bundle
        self.plan = plan
        self.version = version
        self.backups: list[str] = []
        self.done: list[str] = []
        self.remade: set[str] = set()  # indexes dropped to reshape their columns, made again after

    def create_all(self) -> list[str]:
        existing = set(inspect(self.connection).get_table_names())
        self.metadata.create_all(self.connection, checkfirst=True)
        return [f"create table {t.name}" for t in self.metadata.sorted_tables if t.name not in existing]

    def store_tables(self) -> list[str]:
        """The audit log, notices, SLA events and log-ins, when they are not there yet."""
        existing = self._existing()
        tables = [audit_table(MetaData()), notifications.NOTIFICATIONS, notifications.SLA_EVENTS, users.USERS]
        for t in tables:
            t.create(self.connection, checkfirst=True)
        return [f"create table {t.name}" for t in tables if t.name not in existing]

    def search(self) -> list[str]:
        """The lists' search indexes; those of tables this migration changed are filled again."""
        done = search.install(self.connection, self.bundle)
        made = {line.split()[3] for line in done if " search index " in line}
        for entity in self.bundle.entities:
            fields = search.text_fields(self.bundle, entity)
            name = search.grams_table_name(entity)
            if fields and name not in made and any(c.table == table_name(entity) for c in self.plan.changes):
                search.rebuild(self.connection, entity, fields)
        return done

    def apply(self) -> list[str]:
        search.drop_all_triggers(self.connection)  # PostgreSQL refuses to retype a column a trigger names
        self._back_up()
        self._reshape()
        self._add()
        self._fill()
        self._check()
        self._constrain()
        self._drop_tables()
        self._sync_indexes()
        return [c.describe() for c in self.plan.changes] + self.done

    # -- backups of what lossy changes remove (only reached when loss is allowed)

    def _back_up(self) -> None:
        columns: dict[str, list[str]] = defaultdict(list)
        for c in self.plan.lossy:
            if isinstance(c, sd.DropEntity):
                for name in self._tables_of(c.entity):
                    self._copy(name, None)
            elif isinstance(c, (sd.DropField, sd.ChangeType)):
                old = c.field if isinstance(c, sd.DropField) else c.old
                if old.type == "list":
                    self._copy(link_table_name(c.entity, old.name), None)
                else:
                    columns[c.table].append(old.name)
            elif isinstance(c, sd.RemoveChoices):
                columns[c.table].append(c.column)
        for table, names in columns.items():
            self._copy(table, ["id", *dict.fromkeys(names)])

    def _tables_of(self, entity: str) -> list[str]:
        """An entity's table and its link tables, as they are in the database."""
        own = table_name(entity)
        return [t for t in inspect(self.connection).get_table_names() if t == own or t.startswith(own + "__")]

    def _copy(self, table: str, columns: list[str] | None) -> None:
        """Copies the columns (all when None) of every row into this version's backup table."""
        source = Table(table, MetaData(), autoload_with=self.connection)
        chosen = [source.c[n] for n in columns] if columns else list(source.columns)
        name = sd.backup_table(self.version, table)
        backup = Table(name, MetaData(), *[Column(c.name, c.type, primary_key=c.primary_key, autoincrement=False)
                                           for c in chosen])
        backup.create(self.connection)
        self.connection.execute(insert(backup).from_select([c.name for c in chosen], select(*chosen)))
        self.backups.append(name)

    # -- the tables' shape

    def _reshape(self) -> None:
        """Renames, dropped fields and type changes, one batch per table."""
        for table, changes in self._by_table(sd.RenameField, sd.DropField, sd.ChangeType).items():
            plain = [c for c in changes if not _was_list(c)]
            drops, alters = _column_changes(plain, self.metadata.tables[table])
            if drops or alters:
                self._shorten(table, plain)
                self._drop_indexes_on(table, set(drops) | set(alters))
                with self._batch(table) as batch:
                    for name in drops:
                        batch.drop_column(name)
                    for name, how in alters.items():
                        batch.alter_column(name, **how)
            for c in changes:
                if _was_list(c):
                    self._reshape_links(c)

    def _drop_indexes_on(self, table: str, columns: set[str]) -> None:
        """Indexes on columns that go or change; SQLite's copy would make them again on the old
        names.  The list indexes are made again at the end."""
        for index in inspect(self.connection).get_indexes(table):
            if index["name"].startswith("ix_") and columns & set(index["column_names"]):
                self.ops.drop_index(index["name"], table_name=table)
                self.remade.add(index["name"])

    def _shorten(self, table: str, changes: list[sd.Change]) -> None:
        t = self._reflect(table)
        for c in changes:
            if isinstance(c, sd.ChangeType) and c.how == "shorten":
                limit = sd.longest(c.new)
                column = t.c[c.old.name]
                self.connection.execute(update(t).where(func.length(column) > limit).values({column: None}))

    def _reshape_links(self, c: sd.Change) -> None:
        if isinstance(c, sd.RenameField):
            self.ops.rename_table(link_table_name(c.entity, c.old), link_table_name(c.entity, c.new))
        else:  # dropped, or pointing at another entity: made again in _add
            old = c.field if isinstance(c, sd.DropField) else c.old
            self.ops.drop_table(link_table_name(c.entity, old.name))

    def _add(self) -> None:
        """New tables (entities and `list of` fields), then new columns, all empty at first."""
        new_tables = [self.metadata.tables[c.table] for c in self.plan.of(sd.AddEntity)]
        for c in self.plan.of(sd.AddField) + self.plan.of(sd.ChangeType):
            f = c.field if isinstance(c, sd.AddField) else c.new
            if f.type == "list" and (isinstance(c, sd.AddField) or c.how == "empty"):
                new_tables.append(self.metadata.tables[link_table_name(c.entity, f.name)])
        new_tables += [self.metadata.tables[link_table_name(c.entity, f.name)]
                       for c in self.plan.of(sd.AddEntity) for f in self.bundle.entities[c.entity].fields
                       if f.type == "list"]
        self.metadata.create_all(self.connection, tables=list(dict.fromkeys(new_tables)))
        for table, changes in self._by_table(sd.AddField, sd.ChangeType).items():
            added = [c for c in changes if not _becomes_list(c) and (isinstance(c, sd.AddField) or c.how == "empty")]
            if added:
                with self._batch(table) as batch:
                    for c in added:
                        column = self._column(table, _new_name(c))
                        batch.add_column(Column(*_column_args(column), nullable=True))

    # -- the data

    def _fill(self) -> None:
        for c in self.plan.changes:
            if isinstance(c, sd.AddField) and c.field.type != "list" and c.fill is not None:
                self._set(c.table, c.field.name, c.fill, None)
            elif isinstance(c, sd.RequireField) and c.fill is not None:
                self._set(c.table, c.field, c.fill, lambda column: column.is_(None))
            elif isinstance(c, sd.RemoveChoices):
                self._set(c.table, c.field, c.replacement, lambda column, c=c: column.in_(c.choices))

    def _set(self, table: str, name: str, value: Any, where) -> None:
        t = self._reflect(table)
        kind = self._field(t.name, name).type
        statement = update(t).values({name: coerce(value, kind if kind in ("number", "money", "bool", "date",
                                                                          "datetime") else "text")})
        self.connection.execute(statement if where is None else statement.where(where(t.c[name])))

    def _check(self) -> None:
        """The rules that depend on the data: every message at once, then nothing is applied."""
        problems = []
        for c in self.plan.of(sd.RequireField):
            problems += self._missing(c) if c.fill is None else []
        for c in self.plan.of(sd.AddUnique):
            problems += self._duplicates(c)
        if problems:
            raise MigrationRefused(problems)

    def _missing(self, c: sd.RequireField) -> list[str]:
        t = self._reflect(c.table)
        empty = self.connection.execute(select(func.count()).where(t.c[c.field].is_(None))).scalar()
        if not empty:
            return []
        return [f"field {c.field} of {c.entity} becomes required, but {empty} {c.entity} "
                f"record{'s have' if empty > 1 else ' has'} no {c.field}: give the field a default "
                f"(`default ...`) for them, or fill them in first"]

    def _duplicates(self, c: sd.AddUnique) -> list[str]:
        t = self._reflect(c.table)
        column = t.c[c.field]
        count = func.count().label("n")
        rows = self.connection.execute(select(column, count).where(column.is_not(None)).group_by(column)
                                       .having(func.count() > 1).order_by(count.desc(), column).limit(11)).all()
        if not rows:
            return []
        shown = ", ".join(f"{value} ({n} records)" for value, n in rows[:10]) + (", ..." if len(rows) > 10 else "")
        return [f"field {c.field} of {c.entity} becomes unique, but these values are on more than one "
                f"record: {shown}; change those records first, or drop `unique`"]

    # -- constraints and indexes, compared with what tables.py makes

    def _constrain(self) -> None:
        for table in [t.name for t in self.metadata.sorted_tables]:
            if table not in self._existing():
                continue
            required = [c.field.name for c in self.plan.of(sd.AddField)
                        if c.table == table and c.field.name == sd.STATE]
            wanted = {u.name: [c.name for c in u.columns] for u in self.metadata.tables[table].constraints
                      if u.__class__.__name__ == "UniqueConstraint"}
            have = {u["name"]: u["column_names"] for u in inspect(self.connection).get_unique_constraints(table)}
            add = [n for n in wanted if have.get(n) != wanted[n]]
            drop = [n for n in have if n and n.startswith("uq_") and (n not in wanted or n in add)]
            if not (required or add or drop):
                continue
            with self._batch(table) as batch:
                for name in required:
                    batch.alter_column(name, existing_type=self._column(table, name).type, nullable=False)
                for name in drop:
                    batch.drop_constraint(name, type_="unique")
                for name in add:
                    batch.create_unique_constraint(name, wanted[name])

    def _drop_tables(self) -> None:
        doomed = [name for c in self.plan.of(sd.DropEntity) for name in self._tables_of(c.entity)]
        if doomed:
            reflected = MetaData()
            reflected.reflect(self.connection, only=doomed)
            # reflecting also brings in the tables they refer to, which stay
            for table in reversed(sort_tables([reflected.tables[name] for name in doomed])):
                self.ops.drop_table(table.name)

    def _sync_indexes(self) -> None:
        """Indexes the lists need are made; those no list needs any more are dropped."""
        for table in self.metadata.sorted_tables:
            found = inspect(self.connection).get_indexes(table.name)
            have = {i["name"]: i["column_names"] for i in found if not i.get("duplicates_constraint")}
            wanted = {i.name: [c.name for c in i.columns] for i in table.indexes}
            for name, columns in have.items():
                if name.startswith("ix_") and wanted.get(name) != columns:
                    self.ops.drop_index(name, table_name=table.name)
                    if name not in wanted:
                        self.done.append(f"drop index {name}, which no list needs any more")
            for name, columns in wanted.items():
                if have.get(name) != columns:
                    self.ops.create_index(name, table.name, columns)
                    if name not in have and name not in self.remade and not self._new_table(table.name):
                        self.done.append(f"create index {name} on {table.name} ({', '.join(columns)})")

    def _new_table(self, table: str) -> bool:
        return any(c.table == table or table.startswith(c.table + "__") for c in self.plan.of(sd.AddEntity))

    # -- helpers

    @contextmanager
    def _batch(self, table: str):
        """Alembic's batch: plain ALTERs on PostgreSQL, a copy of the table in its new shape on SQLite."""
        with self.ops.batch_alter_table(table, recreate="always" if self.sqlite else "auto") as batch:
            yield batch

    def _by_table(self, *kinds) -> dict[str, list[sd.Change]]:
        grouped: dict[str, list[sd.Change]] = defaultdict(list)
        for c in self.plan.changes:
            if isinstance(c, kinds):
                grouped[c.table].append(c)
        return grouped

    def _existing(self) -> set[str]:
        return set(inspect(self.connection).get_table_names())

    def _reflect(self, table: str) -> Table:
        return Table(table, MetaData(), autoload_with=self.connection)

    def _column(self, table: str, name: str) -> Column:
        return self.metadata.tables[table].c[name]

    def _field(self, table: str, name: str) -> ir.EntityField:
        entity = next(e for e in self.bundle.entities.values() if table_name(e.name) == table)
        if name == sd.STATE:
            return ir.EntityField(name=name, type="enum")
        return next(f for f in entity.fields if f.name == name)


def _was_list(c: sd.Change) -> bool:
    """Whether the change is to a link table (a `list of` field) as deployed."""
    if isinstance(c, sd.RenameField):
        return c.is_list
    return (c.field if isinstance(c, (sd.DropField, sd.AddField)) else c.old).type == "list"


def _becomes_list(c: sd.Change) -> bool:
    return (c.field if isinstance(c, sd.AddField) else c.new).type == "list"


def _new_name(c: sd.Change) -> str:
    if isinstance(c, sd.RenameField):
        return c.new
    return c.field.name if isinstance(c, (sd.DropField, sd.AddField)) else c.new.name


def _column_changes(changes: list[sd.Change], table: Table) -> tuple[list[str], dict[str, dict]]:
    """The columns to drop, and how to alter the others, by their deployed names."""
    drops, alters = [], defaultdict(dict)
    for c in changes:
        if isinstance(c, sd.RenameField):
            alters[c.old]["new_column_name"] = c.new
    for c in changes:
        if isinstance(c, sd.DropField):
            drops.append(c.field.name)
        elif isinstance(c, sd.ChangeType) and c.how == "empty":
            drops.append(c.old.name)  # made again, empty, with its new type
            alters.pop(c.old.name, None)
        elif isinstance(c, sd.ChangeType):
            alters[c.old.name]["type_"] = table.c[c.new.name].type
    return drops, dict(alters)


def _column_args(column: Column) -> list:
    """A fresh copy of a tables.py column's name, type and foreign key, for Alembic to add.  The
    foreign key is given the name PostgreSQL gives it when tables.py creates the table (SQLite's
    copy of the table needs a name to add it by)."""
    from sqlalchemy import ForeignKey

    args: list = [column.name, column.type]
    args += [ForeignKey(fk.target_fullname, ondelete=fk.ondelete, name=f"{column.table.name}_{column.name}_fkey")
             for fk in column.foreign_keys]
    return args
