"""The CRM's records: read, create, change, delete and move through their workflow, for a user.

Every write is one transaction together with its audit rows, so a record never changes without
the log saying who changed what.  Two people editing one record cannot overwrite each other
unknowingly: each change counts up the record's `version`, and a change made on an older version
is refused with the name of whoever changed it since (`Conflict`).

The store also serves the call runtime's `Crm` protocol (`lookup`, `create`, `update` without a
user), acting as the system user, so a flow's lookup of the caller reads the database.
"""
from __future__ import annotations

import datetime as dt
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Mapping

from sqlalchemy import Table, and_, delete, exists, false, insert, select, update
from sqlalchemy.engine import Connection, Engine

from compiler import ir
from runtime.crm import audit
from runtime.crm import listing
from runtime.crm import notifications, permissions, workflows
from runtime.crm.audit import AuditEntry, audit_table
from runtime.crm.listing import ListQuery, Page
from runtime.crm.tables import crm_metadata, link_table_name, table_name
from runtime.crm.users import SYSTEM, User
from runtime.crm.validation import Invalid, Validator, label, project_zone
from runtime.values import record_matches
from runtime.times import UTC, as_utc, utcnow

__all__ = ["RecordStore", "Invalid", "Conflict", "NotFound", "Forbidden", "TransitionRefused"]
Forbidden = permissions.Forbidden
TransitionRefused = workflows.TransitionRefused


class Conflict(Exception):
    """The record changed since the user read it; the message says who changed it and when."""


class NotFound(Exception):
    """There is no such record (or the entity does not exist)."""


class RecordStore:
    def __init__(self, engine: Engine, bundle: ir.Bundle, *, now: Callable[[], dt.datetime] = utcnow):
        # Times are stored in UTC whatever zone the clock gives (SQLite keeps no zone of its own).
        self.engine, self.bundle, self.now = engine, bundle, lambda: now().astimezone(UTC)
        self.metadata = crm_metadata(bundle)
        self.audit = audit_table(self.metadata)
        self.validator = Validator(bundle)
        self.zone = project_zone(bundle)

    def create_tables(self) -> None:
        """The entities' tables, the audit log, the notices and the search indexes (first start, tests)."""
        self.metadata.create_all(self.engine)
        notifications.create_tables(self.engine)
        listing.create_search_indexes(self.engine, self.bundle, self.metadata)

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One transaction for several writes (a CSV import): all of them or none."""
        with self.engine.begin() as connection:
            yield connection

    # ------------------------------------------------------------------ reading

    def entity(self, name: str) -> ir.Entity:
        found = self.bundle.entities.get(name)
        if found is None:
            raise NotFound(f"there is no entity '{name}'")
        return found

    def table(self, entity: str) -> Table:
        self.entity(entity)
        return self.metadata.tables[table_name(entity)]

    def get(self, user: User, entity: str, record_id: int) -> dict:
        with self.engine.connect() as connection:
            return self._readable(connection, user, entity, record_id, "read")

    def list(self, user: User, entity: str, query: ListQuery | None = None) -> Page:
        self._check_may(user, entity, "read")
        with self.engine.connect() as connection:
            return listing.page(connection, self, entity, query or ListQuery(), restrict=self._row_filter(user, entity, "read"))

    def history(self, user: User, entity: str, record_id: int) -> list[AuditEntry]:
        """A record's changes, oldest first; a deleted record's too, for whoever may read the entity."""
        with self.engine.connect() as connection:
            if self.row(connection, entity, record_id) is not None:
                self._readable(connection, user, entity, record_id, "read")
            else:
                self._check_may(user, entity, "read")
            entries = audit.history(connection, self.audit, entity, record_id) if str(record_id).isdigit() else []
            if not entries:
                raise NotFound(f"there is no {entity} {record_id}")
            return entries

    def row(self, connection: Connection, entity: str, record_id: Any) -> dict | None:
        """One record as Python values, or None."""
        try:
            record_id = int(record_id)
        except (TypeError, ValueError):
            return None
        table = self.table(entity)
        found = connection.execute(select(table).where(table.c.id == record_id)).first()
        if found is None:
            return None
        record = self.record(entity, found._mapping)
        for field in self._list_fields(entity):
            links = self.metadata.tables[link_table_name(entity, field.name)]
            ids = connection.execute(select(links.c.target_id).where(links.c.record_id == record_id)
                                     .order_by(links.c.target_id))
            record[field.name] = [i for (i,) in ids]
        return record

    def record(self, entity: str, mapping: Mapping[str, Any]) -> dict:
        """A table row as the record's Python values (times aware, in UTC)."""
        record = dict(mapping)
        for name, value in record.items():
            if isinstance(value, dt.datetime):
                record[name] = as_utc(value)
        return record

    # ------------------------------------------------------------------ writing

    def create(self, *args, **kwargs) -> dict:
        """`create(user, entity, data)`, or the runtime's `create(entity, fields)` as the system user."""
        if args and isinstance(args[0], str):
            return self.create(SYSTEM, *args, **kwargs)
        user, entity, data = args
        with self.transaction() as connection:
            return self.create_in(connection, user, entity, data)

    def update(self, *args, version: int | None = None) -> dict:
        """`update(user, entity, id, data, version=...)`, or the runtime's `update(entity, id, fields)`."""
        if args and isinstance(args[0], str):
            return self.update(SYSTEM, *args, version=version)
        user, entity, record_id, data = args
        with self.transaction() as connection:
            return self.update_in(connection, user, entity, record_id, data, version=version)

    def delete(self, user: User, entity: str, record_id: int) -> None:
        with self.transaction() as connection:
            current = self._readable(connection, user, entity, record_id, "delete")
            at = self.now()
            self._unlink_references(connection, entity, current["id"], at)
            for field in self._list_fields(entity):
                links = self.metadata.tables[link_table_name(entity, field.name)]
                connection.execute(delete(links).where(links.c.record_id == current["id"]))
            table = self.table(entity)
            connection.execute(delete(table).where(table.c.id == current["id"]))
            gone = {name: None for name in self._writable(entity) + (["state"] if "state" in current else [])}
            audit.write(connection, self.audit, at=at, user=user.name, entity=entity, record_id=current["id"],
                        action="delete", fields=audit.changes(current, gone))

    def transition(self, user: User, entity: str, record_id: int, name: str) -> dict:
        """Fires transition `name` (its source state, roles and guard are checked by the workflow),
        writes what it changes, logs it and notifies whom its actions name."""
        with self.transaction() as connection:
            current = self._readable(connection, user, entity, record_id, "update")
            at = self.now()
            fired = workflows.fire(self.bundle, entity, current, name, user, at,
                                   lambda other, other_id: self.row(connection, other, other_id))
            changes = dict(fired.changes)
            state = changes.pop("state", current.get("state"))
            values = self.validator.validate(entity, changes, creating=False, exists=self._exists(connection)) if changes else {}
            values["state"] = state
            saved = self._write(connection, user, entity, current, values, None, at, action="transition")
            if fired.notifications:
                self._notify(connection, entity, saved["id"], fired.notifications, at)
            return saved

    def _notify(self, connection: Connection, entity: str, record_id: int, messages, at: dt.datetime) -> None:
        for agent, message in messages:
            notifications.notify(connection, self.metadata, agent=agent, message=message, entity=entity,
                                 record_id=record_id, at=at)

    def create_in(self, connection: Connection, user: User, entity: str, data: Mapping[str, Any]) -> dict:
        """Creates a record inside the caller's transaction; raises Invalid or Forbidden."""
        definition = self.entity(entity)
        self._check_may(user, entity, "create")
        defaults = {f.name: f.default for f in definition.fields if f.default is not None and data.get(f.name) is None}
        values = self.validator.validate(entity, {**defaults, **data}, creating=True, exists=self._exists(connection))
        if definition.workflow:
            values["state"] = self._initial_state(definition.workflow)
        self._check_unique(connection, entity, values, None)
        at = self.now()
        links = {f.name: values.pop(f.name) for f in self._list_fields(entity)}
        columns = {**_db_values(values), "created_at": at, "updated_at": at, "version": 1}
        record_id = connection.execute(insert(self.table(entity)).values(**columns)).inserted_primary_key[0]
        self._set_links(connection, entity, record_id, links)
        record = self.row(connection, entity, record_id)
        if not self._row_allowed(connection, user, entity, "create", record):
            raise self._forbidden(user, entity, "create", None, "this record would be outside those they may create")
        audit.write(connection, self.audit, at=at, user=user.name, entity=entity, record_id=record_id, action="create",
                    fields=audit.changes({}, {k: v for k, v in record.items() if k in values or k in links}))
        return record

    def update_in(self, connection: Connection, user: User, entity: str, record_id: Any, data: Mapping[str, Any], *,
                  version: int | None = None) -> dict:
        """Changes the fields given, inside the caller's transaction; Invalid, Forbidden, Conflict or NotFound."""
        current = self._readable(connection, user, entity, record_id, "update")
        if version is not None and int(version) != current["version"]:
            raise Conflict(self._conflict_message(connection, entity, current))
        values = self.validator.validate(entity, data, creating=False, exists=self._exists(connection))
        self._check_unique(connection, entity, values, current["id"])
        return self._write(connection, user, entity, current, values, current["version"], self.now(), action="update")

    def _write(self, connection: Connection, user: User, entity: str, current: dict, values: dict,
               version: int | None, at: dt.datetime, *, action: str) -> dict:
        changed = audit.changes(current, values)
        if not changed:
            return current
        table = self.table(entity)
        links = {f.name: values.pop(f.name) for f in self._list_fields(entity) if f.name in values}
        columns = {**_db_values(values), "updated_at": at, "version": current["version"] + 1}
        done = connection.execute(update(table).where(table.c.id == current["id"], table.c.version == current["version"])
                                  .values(**columns))
        if done.rowcount != 1:  # changed by someone else between our read and this write
            raise Conflict(self._conflict_message(connection, entity, current))
        for name, ids in links.items():
            self._set_links(connection, entity, current["id"], {name: ids}, replace=True)
        record = self.row(connection, entity, current["id"])
        if not self._row_allowed(connection, user, entity, "update", record):
            raise self._forbidden(user, entity, "update", current["id"], "the change would put it outside those they may update")
        audit.write(connection, self.audit, at=at, user=user.name, entity=entity, record_id=current["id"],
                    action=action, fields=changed)
        return record

    # ------------------------------------------------------------------ the runtime's Crm protocol

    def lookup(self, entity: str, equals: Mapping[str, Any], where: ir.Expr | None, follow: tuple[str, ...] = ()) -> dict | None:
        """The first record (lowest id) whose fields equal `equals` (in SQL) and for which `where`
        holds (tested here on each candidate, with the references it reads followed)."""
        table = self.table(entity)
        conditions = []
        for name, value in equals.items():
            if name not in table.c:
                raise ValueError(f"{entity} has no field '{name}' to look up by")
            value = value.get("id") if isinstance(value, Mapping) else value
            conditions.append(table.c[name].is_(None) if value is None else table.c[name] == _db_value(value))
        query = select(table.c.id).where(*conditions).order_by(table.c.id)
        with self.engine.connect() as connection:
            for (record_id,) in connection.execution_options(yield_per=500).execute(query):
                record = self.followed(connection, entity, self.row(connection, entity, record_id), follow)
                if where is None or record_matches({}, where, record):
                    return record
        return None

    def followed(self, connection: Connection, entity: str, record: dict, follow: tuple[str, ...]) -> dict:
        """`record` with the reference fields named in `follow` (dotted for references of references)
        given as the records they point at."""
        fields = {f.name: f for f in self.entity(entity).fields}
        for path in sorted(follow, key=len):
            head, _, rest = path.partition(".")
            target = fields.get(head)
            if target is None or target.type != "ref" or isinstance(record.get(head), dict):
                continue
            referenced = self.row(connection, target.target, record.get(head)) if record.get(head) is not None else None
            if referenced is not None:
                record[head] = self.followed(connection, target.target, referenced, tuple(p for p in [rest] if p))
        return record

    # ------------------------------------------------------------------ rules

    def _check_may(self, user: User, entity: str, access: str) -> None:
        self.entity(entity)
        permissions.require(self.bundle, user, entity, access)

    def _forbidden(self, user: User, entity: str, access: str, record_id: int | None, why: str) -> Exception:
        refused = permissions.forbidden(self.bundle, user, entity, access, record_id)
        return permissions.Forbidden(f"{refused}: {why}")

    def _row_filter(self, user: User, entity: str, access: str):
        if user == SYSTEM:
            return None
        return permissions.row_filter(self.bundle, user, entity, access, self.table(entity), self.metadata)

    def _row_allowed(self, connection: Connection, user: User, entity: str, access: str, record: dict) -> bool:
        if user == SYSTEM:
            return True
        return permissions.row_allowed(self.bundle, user, entity, access, record,
                                       lambda other, other_id: self.row(connection, other, other_id))

    def _readable(self, connection: Connection, user: User, entity: str, record_id: Any, access: str) -> dict:
        """The record when `user` may `access` it; NotFound or Forbidden otherwise."""
        self._check_may(user, entity, access)
        record = self.row(connection, entity, record_id)
        if record is None:
            raise NotFound(f"there is no {entity} {record_id}")
        if not self._row_allowed(connection, user, entity, access, record):
            raise permissions.forbidden(self.bundle, user, entity, access, record["id"])
        return record

    def _exists(self, connection: Connection) -> Callable[[str, int], bool]:
        def check(entity: str, record_id: int) -> bool:
            table = self.table(entity)
            return connection.execute(select(exists().where(table.c.id == record_id))).scalar()
        return check

    def _check_unique(self, connection: Connection, entity: str, values: dict, record_id: int | None) -> None:
        table = self.table(entity)
        errors = {}
        for field in self.entity(entity).fields:
            value = values.get(field.name)
            if not field.unique or value is None:
                continue
            query = select(table.c.id).where(table.c[field.name] == value)
            if record_id is not None:
                query = query.where(table.c.id != record_id)
            other = connection.execute(query.limit(1)).scalar()
            if other is not None:
                errors[field.name] = f"another {entity} already has this {label(field)} (id {other})"
        if errors:
            raise Invalid(errors)

    def _conflict_message(self, connection: Connection, entity: str, current: dict) -> str:
        latest = self.row(connection, entity, current["id"])
        if latest is None:
            return f"{entity} {current['id']} was deleted in the meantime"
        last = audit.last_change(connection, self.audit, entity, current["id"])
        who = f" by {last.user} at {last.at.astimezone(self.zone):%Y-%m-%d %H:%M}" if last else ""
        return (f"{entity} {current['id']} was changed{who} after you opened it; reload it to see that change, "
                "then make yours again")

    def _initial_state(self, workflow: str) -> str:
        return next(s.name for s in self.bundle.workflows[workflow].states if s.initial)

    # ------------------------------------------------------------------ links and references

    def _list_fields(self, entity: str) -> list[ir.EntityField]:
        return [f for f in self.entity(entity).fields if f.type == "list"]

    def _writable(self, entity: str) -> list[str]:
        return [f.name for f in self.entity(entity).fields]

    def _set_links(self, connection: Connection, entity: str, record_id: int, links: dict[str, list[int]], *,
                   replace: bool = False) -> None:
        for name, ids in links.items():
            table = self.metadata.tables[link_table_name(entity, name)]
            if replace:
                connection.execute(delete(table).where(table.c.record_id == record_id))
            if ids:
                connection.execute(insert(table), [{"record_id": record_id, "target_id": i} for i in ids])

    def _unlink_references(self, connection: Connection, entity: str, record_id: int, at: dt.datetime) -> None:
        """References to a record being deleted become none, in the log too (the same on SQLite,
        whose foreign keys are not enforced, as on PostgreSQL)."""
        for other in self.bundle.entities.values():
            for field in other.fields:
                if field.target != entity:
                    continue
                if field.type == "list":
                    links = self.metadata.tables[link_table_name(other.name, field.name)]
                    connection.execute(delete(links).where(links.c.target_id == record_id))
                    continue
                table = self.table(other.name)
                ids = [i for (i,) in connection.execute(select(table.c.id).where(table.c[field.name] == record_id))]
                if not ids:
                    continue
                connection.execute(update(table).where(table.c.id.in_(ids))
                                   .values({field.name: None, "updated_at": at, "version": table.c.version + 1}))
                for i in ids:
                    audit.write(connection, self.audit, at=at, user=SYSTEM.name, entity=other.name, record_id=i,
                                action="update", fields={field.name: (str(record_id), None)})


def _db_value(value: Any) -> Any:
    """Times are written in UTC (SQLite keeps no zone)."""
    return value.astimezone(UTC) if isinstance(value, dt.datetime) else value


def _db_values(values: Mapping[str, Any]) -> dict:
    return {name: _db_value(value) for name, value in values.items()}
