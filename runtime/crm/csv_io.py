"""An entity's records as CSV, out and in.

Export writes the list's columns (or every field), headed by field names or by their labels.
Import reads either kind of header, checks every row like a form, and applies the file in one
transaction: when any row is wrong nothing is written, and the report says which row (as a
spreadsheet numbers it, the header being row 1) and which field, in plain words.  A row whose key
(the id, or a unique field such as the phone number) matches a record changes that record; any
other row is a new record.
"""
from __future__ import annotations

import csv
import io
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select

from compiler import ir
from runtime.crm.listing import ListQuery, view_for
from runtime.crm.records import Conflict, Forbidden, NotFound, RecordStore
from runtime.crm.users import User
from runtime.crm.validation import Invalid, from_form, label
from runtime.values import plain

EXPORT_PAGE = 500


class ImportReport(BaseModel):
    created: int = 0
    updated: int = 0
    errors: dict[int, dict[str, str]] = {}   # row number -> field -> message

    @property
    def applied(self) -> bool:
        return not self.errors


# ------------------------------------------------------------------ export

def export_csv(store: RecordStore, user: User, entity: str, *, all_fields: bool = False, labels: bool = False) -> str:
    """The records the user may read, oldest first, as CSV text."""
    definition = store.entity(entity)
    view = view_for(store.bundle, entity, None)
    fields = {f.name: f for f in definition.fields}
    columns = ["id", *[f.name for f in definition.fields]] if all_fields else list(dict.fromkeys(["id", *view.columns]))
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([_header(fields.get(c), c) if labels else c for c in columns])
    query = ListQuery(list=view.name if view.name in store.bundle.lists else None, sort="id", descending=False,
                      limit=EXPORT_PAGE)
    while True:
        page = store.list(user, entity, query)
        ids = [row["id"] for row in page.rows]
        for record in _records(store, entity, ids):
            writer.writerow([_cell(record.get(c)) for c in columns])
        if page.next is None:
            return out.getvalue()
        query = query.model_copy(update={"after": page.next})


def _records(store: RecordStore, entity: str, ids: list[int]) -> list[dict]:
    with store.engine.connect() as connection:
        return [store.row(connection, entity, i) for i in ids]


def _header(field: ir.EntityField | None, name: str) -> str:
    return label(field) if field else name


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(plain(value))


# ------------------------------------------------------------------ import

def import_csv(store: RecordStore, user: User, entity: str, text: str, *, key: str = "id") -> ImportReport:
    """Applies every row of `text`, or none of them; `key` is `id` or a unique field."""
    definition = store.entity(entity)
    fields = {f.name: f for f in definition.fields}
    if key != "id" and not (key in fields and fields[key].unique):
        unique = ", ".join(["id", *[f.name for f in definition.fields if f.unique]])
        raise Invalid({"key": f"rows can be matched by {unique}, not by '{key}'"})
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    header = next(reader, None)
    if not header or not any(cell.strip() for cell in header):
        return ImportReport(errors={1: {"file": "the file is empty; the first row must name the columns"}})
    names, problems = _columns(definition, header)
    if problems:
        return ImportReport(errors={1: problems})
    report = ImportReport()
    with store.transaction() as connection:
        for number, cells in enumerate(reader, start=2):
            if not any(cell.strip() for cell in cells):
                continue
            if len(cells) > len(names):
                report.errors[number] = {"row": f"this row has {len(cells)} cells; the header names {len(names)} columns"}
                continue
            row = dict(zip(names, cells))
            try:
                existing = _existing(store, connection, entity, key, row)
                data = from_form(definition, row)
                if existing is None:
                    store.create_in(connection, user, entity, data)
                    report.created += 1
                else:
                    data.pop(key, None) if key != "id" else None
                    store.update_in(connection, user, entity, existing, data)
                    report.updated += 1
            except Invalid as error:
                report.errors[number] = error.errors
            except (Forbidden, NotFound, Conflict) as error:
                report.errors[number] = {"row": str(error)}
        if report.errors:
            connection.rollback()  # nothing of a file with a bad row is kept
            report.created = report.updated = 0
    return report


def _columns(entity: ir.Entity, header: list[str]) -> tuple[list[str], dict[str, str]]:
    """The field of each column, by name or by label; columns that are no field are refused."""
    by_label = {label(f): f.name for f in entity.fields}
    names, problems, seen = [], {}, set()
    for cell in header:
        title = cell.strip()
        name = title if title == "id" or any(f.name == title for f in entity.fields) else by_label.get(title)
        if name is None:
            problems[title or "(empty)"] = f"{entity.name} has no field '{title}'"
        elif name in seen:
            problems[title] = f"the column for {name} is given twice"
        seen.add(name)
        names.append(name or title)
    return names, problems


def _existing(store: RecordStore, connection, entity: str, key: str, row: dict) -> int | None:
    """The id of the record this row changes, or None for a new record."""
    wanted = (row.get(key) or "").strip()
    if not wanted:
        return None
    if key == "id":
        if store.row(connection, entity, wanted) is None:
            raise Invalid({"id": f"there is no {entity} {wanted} to change; leave id empty for a new record"})
        return int(wanted)
    value = store.validator.validate(entity, {key: wanted}, creating=False)[key]
    table = store.table(entity)
    return connection.execute(select(table.c.id).where(table.c[key] == value)).scalar()
