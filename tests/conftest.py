"""Shared fixtures.  Storage tests run against SQLite and PostgreSQL alike.

PostgreSQL is the server on 127.0.0.1:5432 (database `test`, trust authentication), or the one
FLOWDESK_TEST_POSTGRES names.  Each test gets a schema of its own, dropped afterwards.
"""
from __future__ import annotations

import contextlib
import os
import uuid

import pytest

POSTGRES = os.environ.get("FLOWDESK_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture(autouse=True, scope="session")
def quick_password_hashes():
    """Studios made in the tests hash passwords with small argon2 parameters, as
    tests/test_crm_users.py does: hundreds of test studios each set a password for every agent,
    and argon2-cffi's defaults (about 0.2 s a hash here) would spend minutes of the suite on it.
    The hashes are still argon2id, verified for real; the product keeps the defaults."""
    from argon2 import PasswordHasher

    from runtime.crm import users

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(users, "PasswordHasher", lambda: PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
        yield


@contextlib.contextmanager
def postgres_schema(prefix: str = "t"):
    """A PostgreSQL schema of its own (others' tests share the database), dropped afterwards:
    the URL whose connections use it."""
    import sqlalchemy

    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = sqlalchemy.create_engine(POSTGRES.replace("postgresql://", "postgresql+psycopg://"))
    with admin.begin() as connection:
        connection.execute(sqlalchemy.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{POSTGRES}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.execute(sqlalchemy.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@contextlib.contextmanager
def database_engine(kind: str, folder, prefix: str = "t"):
    """An engine on a new SQLite file in `folder`, or on a new PostgreSQL schema; disposed afterwards."""
    import sqlalchemy

    with contextlib.ExitStack() as stack:
        if kind == "sqlite":
            url = f"sqlite:///{folder / 'crm.db'}"
        else:
            url = stack.enter_context(postgres_schema(prefix)).replace("postgresql://", "postgresql+psycopg://")
        engine = sqlalchemy.create_engine(url)
        try:
            yield engine
        finally:
            engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'flowdesk.db'}"
        return
    with postgres_schema() as url:
        yield url
