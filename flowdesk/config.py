"""Where things are: the project folder, the database, the environment.

Every setting comes from, in order: the command line, an environment variable, the default.

    FLOWDESK_DB    database URL (default: SQLite file .flowdesk/flowdesk.db in the project)
    FLOWDESK_ENV   environment from flowdesk.yaml (default: its default_environment)
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from compiler.sources import find_root


@dataclass(frozen=True)
class Config:
    project: Path
    database_url: str
    environment: str | None


def load_config(paths: list[str] | None = None, db: str | None = None, env: str | None = None) -> Config:
    project = find_root([Path(p) for p in (paths or ["."])])
    database_url = db or os.environ.get("FLOWDESK_DB") or default_database(project)
    return Config(project=project, database_url=database_url, environment=env or os.environ.get("FLOWDESK_ENV"))


def default_database(project: Path) -> str:
    folder = project / ".flowdesk"
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / 'flowdesk.db'}"
