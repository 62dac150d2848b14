"""Shared fixtures.  Storage tests run against SQLite and PostgreSQL alike.

PostgreSQL is the server on 127.0.0.1:5432 (database `test`, trust authentication), or the one
FLOWDESK_TEST_POSTGRES names.  Each test gets a schema of its own, dropped afterwards.
"""
from __future__ import annotations

import os
import uuid

import pytest

POSTGRES = os.environ.get("FLOWDESK_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'flowdesk.db'}"
        return
    import sqlalchemy

    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sqlalchemy.create_engine(POSTGRES.replace("postgresql://", "postgresql+psycopg://"))
    with admin.begin() as connection:
        connection.execute(sqlalchemy.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{POSTGRES}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.execute(sqlalchemy.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
