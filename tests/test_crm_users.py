"""Users are the project's agents; passwords are argon2 hashes in crm_users."""
from __future__ import annotations

import pytest
import sqlalchemy
from argon2 import PasswordHasher

from compiler import compile_project
from runtime.crm import users
from runtime.crm.users import SYSTEM, AccountError, Accounts, User


@pytest.fixture(scope="module")
def bundle():
    return compile_project(["flows", "schemas"]).bundle


def quick_hasher(time_cost=1):
    # Small parameters keep the tests fast; production uses argon2-cffi's defaults.
    return PasswordHasher(time_cost=time_cost, memory_cost=1024, parallelism=1)


@pytest.fixture
def engine(database_url):
    engine = sqlalchemy.create_engine(database_url.replace("postgresql://", "postgresql+psycopg://"))
    users.create_tables(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def accounts(engine, bundle):
    return Accounts(engine, bundle, hasher=quick_hasher())


def test_agents_are_the_users(bundle):
    people = users.users_from_bundle(bundle)
    assert people["zhang_wei"] == User("zhang_wei", "张伟", ("agent", "account_manager"))
    assert people["sun_li"].roles == ("qa",)
    assert people["zhou_qiang"].has_role("team_lead")
    assert not people["li_na"].has_role("team_lead", "supervisor")
    assert SYSTEM.roles == () and SYSTEM.name not in people


def test_log_in_with_the_password_set(accounts):
    accounts.set_password("li_na", "correct horse")
    assert accounts.authenticate("li_na", "correct horse") == User("li_na", "李娜", ("agent",))
    assert accounts.authenticate("li_na", "wrong horse!") is None
    assert accounts.authenticate("wang_fang", "correct horse") is None  # no password set
    assert accounts.authenticate("nobody", "correct horse") is None


def test_the_hash_is_argon2_not_the_password(accounts, engine):
    accounts.set_password("li_na", "correct horse")
    with engine.connect() as conn:
        stored = conn.execute(sqlalchemy.select(users.USERS.c.password_hash)).scalar_one()
    assert stored.startswith("$argon2id$") and "correct horse" not in stored


def test_changing_a_password_replaces_the_old_one(accounts):
    accounts.set_password("li_na", "first password", must_change=True)
    assert accounts.must_change("li_na")
    accounts.set_password("li_na", "second password")
    assert not accounts.must_change("li_na")
    assert accounts.authenticate("li_na", "first password") is None
    assert accounts.authenticate("li_na", "second password").name == "li_na"


def test_short_passwords_are_refused(accounts):
    with pytest.raises(AccountError, match="at least 8 characters; this one has 5"):
        accounts.set_password("li_na", "short")
    assert not accounts.has_password("li_na")


def test_only_the_projects_agents_get_passwords(accounts):
    with pytest.raises(AccountError, match="no agent named 'mallory'"):
        accounts.set_password("mallory", "long enough password")


def test_old_parameters_are_rehashed_at_log_in(engine, bundle):
    Accounts(engine, bundle, hasher=quick_hasher(time_cost=1)).set_password("li_na", "correct horse")
    stronger = Accounts(engine, bundle, hasher=quick_hasher(time_cost=2))
    assert stronger.authenticate("li_na", "correct horse").name == "li_na"
    with engine.connect() as conn:
        stored = conn.execute(sqlalchemy.select(users.USERS.c.password_hash)).scalar_one()
    assert "t=2" in stored
    assert stronger.authenticate("li_na", "correct horse").name == "li_na"


def test_demo_passwords_are_per_install_and_stable(bundle, tmp_path):
    secret = users.install_secret(tmp_path / "secret")
    assert users.install_secret(tmp_path / "secret") == secret
    assert (tmp_path / "secret").stat().st_mode & 0o077 == 0
    first = users.demo_passwords(bundle, secret)
    assert set(first) == set(bundle.agents)
    assert all(len(p) >= users.MIN_PASSWORD_LENGTH for p in first.values())
    assert len(set(first.values())) == len(first)
    assert users.demo_passwords(bundle, secret) == first
    assert users.demo_passwords(bundle, b"another install") != first


def test_demo_passwords_are_set_once_and_hidden_after_a_change(accounts, bundle):
    secret = b"install secret"
    shown = accounts.ensure_demo_passwords(bundle, secret)
    assert shown == users.demo_passwords(bundle, secret)
    assert accounts.authenticate("zhao_min", shown["zhao_min"]).name == "zhao_min"
    assert accounts.must_change("zhao_min")
    accounts.set_password("zhao_min", "my own password")
    again = accounts.ensure_demo_passwords(bundle, secret)
    assert "zhao_min" not in again and again["li_na"] == shown["li_na"]
    assert accounts.authenticate("zhao_min", "my own password").name == "zhao_min"
