"""The studio's users: the project's agents, with passwords kept as argon2 hashes.

Who exists and which roles they have comes from the bundle (flows/agents.flow); the database only
keeps each agent's password hash, so removing an agent from the project removes their log-in.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Boolean, Column, DateTime, MetaData, String, Table, Text, select
from sqlalchemy.engine import Engine

from compiler import ir
from runtime.times import utcnow

MIN_PASSWORD_LENGTH = 8
DEMO_PASSWORD_LENGTH = 12
USERS_TABLE = "crm_users"


@dataclass(frozen=True)
class User:
    name: str                 # the agent's name, e.g. "zhang_wei"; also the log-in
    title: str | None
    roles: tuple[str, ...]

    @property
    def shown(self) -> str:
        """How people see the user: "李娜" or the name when the agent has no title."""
        return self.title or self.name

    def has_role(self, *roles: str) -> bool:
        return any(role in self.roles for role in roles)


# Flows and imports acting without a person; bypasses roles.
SYSTEM = User("system", "flowdesk", ())


class AccountError(ValueError):
    """A password or log-in name the studio cannot accept; the message says why."""


def users_from_bundle(bundle: ir.Bundle) -> dict[str, User]:
    """Every agent of the project is a user, with the roles the project gives them."""
    return {name: User(name, agent.title, tuple(agent.roles)) for name, agent in bundle.agents.items()}


def users_table(metadata: MetaData) -> Table:
    """The `crm_users` table in `metadata` (made once per MetaData)."""
    if USERS_TABLE in metadata.tables:
        return metadata.tables[USERS_TABLE]
    return Table(
        USERS_TABLE, metadata,
        Column("name", String(64), primary_key=True),
        Column("password_hash", Text, nullable=False),
        Column("must_change", Boolean, nullable=False, default=False),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("updated_at", DateTime(timezone=True), nullable=False),
    )


METADATA = MetaData()
USERS = users_table(METADATA)


def create_tables(engine: Engine) -> None:
    METADATA.create_all(engine, tables=[USERS])


class Accounts:
    """Log-in for the project's agents.  `hasher` defaults to argon2id with argon2-cffi's
    recommended parameters; hashes made with other parameters are renewed at the next log-in."""

    def __init__(self, engine: Engine, bundle: ir.Bundle, *, hasher: PasswordHasher | None = None, now=utcnow):
        self.engine = engine
        self.users = users_from_bundle(bundle)
        self.hasher = hasher or PasswordHasher()
        self.now = now
        # Verified against when the name is unknown, so that a wrong name takes as long as a
        # wrong password and does not tell an attacker which names exist.
        self._dummy_hash = self.hasher.hash(secrets.token_urlsafe(16))

    def user(self, name: str) -> User:
        try:
            return self.users[name]
        except KeyError:
            raise AccountError(f"there is no agent named {name!r} in the project (agents are declared "
                               f"in the flows, e.g. flows/agents.flow)") from None

    def set_password(self, name: str, password: str, *, must_change: bool = False) -> None:
        """Sets (or replaces) an agent's password."""
        self.user(name)
        check_password(password)
        hashed = self.hasher.hash(password)
        now = self.now()
        with self.engine.begin() as conn:
            done = conn.execute(USERS.update().where(USERS.c.name == name).values(
                password_hash=hashed, must_change=must_change, updated_at=now)).rowcount
            if not done:
                conn.execute(USERS.insert().values(name=name, password_hash=hashed, must_change=must_change,
                                                   created_at=now, updated_at=now))

    def has_password(self, name: str) -> bool:
        return self._row(name) is not None

    def must_change(self, name: str) -> bool:
        row = self._row(name)
        return bool(row and row.must_change)

    def authenticate(self, name: str, password: str) -> User | None:
        """The user when the name and password match, otherwise None (the same for either mistake)."""
        user = self.users.get(name)
        row = self._row(name) if user else None
        stored = row.password_hash if row else self._dummy_hash
        try:
            self.hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return None
        if row is None:
            return None
        if self.hasher.check_needs_rehash(stored):
            with self.engine.begin() as conn:
                conn.execute(USERS.update().where(USERS.c.name == name).values(
                    password_hash=self.hasher.hash(password), updated_at=self.now()))
        return user

    def ensure_demo_passwords(self, bundle: ir.Bundle, secret: bytes) -> dict[str, str]:
        """Gives every agent without a password their demo password (see `demo_passwords`) and
        returns the demo passwords of the agents who have not set their own since."""
        passwords = demo_passwords(bundle, secret)
        shown = {}
        for name, password in passwords.items():
            row = self._row(name)
            if row is None:
                self.set_password(name, password, must_change=True)
                shown[name] = password
            elif row.must_change and _matches(self.hasher, row.password_hash, password):
                shown[name] = password
        return shown

    def _row(self, name: str):
        with self.engine.connect() as conn:
            return conn.execute(select(USERS).where(USERS.c.name == name)).first()


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters; "
                           f"this one has {len(password)}")


def _matches(hasher: PasswordHasher, stored: str, password: str) -> bool:
    try:
        return hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def demo_passwords(bundle: ir.Bundle, secret: bytes) -> dict[str, str]:
    """One password per agent for `make run`, derived from the install's secret.

    Why not fixed passwords: a demo studio is often reachable from a network, and a password
    printed in a README works on every install.  Derived ones are random per install yet stay the
    same across restarts, so the list printed on start is always the one that works (until the
    agent chooses their own: demo passwords are marked must-change)."""
    out = {}
    for name in sorted(bundle.agents):
        digest = hmac.new(secret, name.encode(), hashlib.sha256).digest()
        out[name] = base64.b32encode(digest).decode().lower()[:DEMO_PASSWORD_LENGTH]
    return out


def install_secret(path: Path) -> bytes:
    """The install's secret in `path`, made (32 random bytes, readable by the owner only) on first use."""
    path = Path(path)
    if path.exists():
        return path.read_bytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_bytes(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(secret)
    return secret
