"""The studio as an ASGI application: `create_app(project)` compiles the project, opens (and
migrates) its database and serves the CRM screens.

    uvicorn --factory 'studio.app:app_from_env'    # FLOWDESK_PROJECT=/path/to/project

The database is the one the call runtime logs to (`flowdesk.config`: --db, FLOWDESK_DB, or
`.flowdesk/flowdesk.db` in the project), so calls and CRM records live side by side.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import inspect
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from sqlalchemy.engine import Engine
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import RedirectResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from compiler import compile_project, ir
from runtime.crm import users
from studio import auth

HERE = Path(__file__).parent


class StudioError(Exception):
    """The studio cannot start; the message says why and what to fix."""


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


@dataclass
class Studio:
    """What every request needs, kept on `app.state.studio`."""
    project: Path
    bundle: ir.Bundle
    engine: Engine
    accounts: users.Accounts
    store: object
    templates: Jinja2Templates
    clock: Callable[[], dt.datetime]
    throttle: auth.Throttle = field(default_factory=auth.Throttle)


def compile_bundle(project: Path, environment: str | None = None) -> ir.Bundle:
    result = compile_project([project / "flows", project / "schemas"], environment=environment)
    if result.bundle is None or result.errors:
        from dsl.diagnostics import render

        shown = "\n\n".join(render(d, result.sources.text_of(d.file)) for d in result.errors[:10])
        raise StudioError(f"the project in {project} does not compile "
                          f"({len(result.errors)} error{'s' if len(result.errors) != 1 else ''}):\n\n{shown}")
    return result.bundle


def database_url(project: Path, db_url: str | None) -> str:
    from flowdesk.config import load_config

    return load_config([str(project)], db=db_url).database_url


def open_database(url: str, bundle: ir.Bundle, clock):
    """The engine and the record store, with the CRM's tables made or migrated to the bundle's entities."""
    from runtime.crm import notifications
    from runtime.crm.migrate import MigrationRefused, migrate
    from runtime.crm.records import RecordStore
    from runtime.storage import open_engine

    engine = open_engine(url)   # the event log's tables, and SQLite's WAL and foreign keys
    try:
        migrate(engine, bundle)
    except MigrationRefused as refused:
        engine.dispose()
        raise StudioError(f"the database {engine.url!r} cannot take the project's schemas as they are now:\n"
                          f"{refused}") from None
    store = RecordStore(engine, bundle, now=clock)
    store.create_tables()       # the audit log and the search indexes beside the entities
    notifications.create_tables(engine)
    users.create_tables(engine)
    return engine, store


def templates() -> Jinja2Templates:
    from studio import render, screens

    made = Jinja2Templates(directory=str(HERE / "templates"), context_processors=[screens.chrome])
    render.install_filters(made.env)
    return made


async def home(request: Request):
    from studio.screens import readable_entities

    user = auth.current_user(request)
    entities = readable_entities(request.app.state.studio.bundle, user)
    return RedirectResponse(f"/crm/{entities[0][0]}" if entities else "/crm", status_code=303)


def create_app(project: Path, *, db_url: str | None = None, extra_routes=(), on_startup=(),
               clock=None, environment: str | None = None) -> Starlette:
    """The studio for the project in `project` (its flows/ and schemas/).

    `extra_routes` are mounted next to the CRM's (behind the same log-in and CSRF checks);
    `on_startup` hooks get the app when the server starts; `clock() -> aware datetime` is "now"."""
    from studio import screens

    project = Path(project).resolve()
    bundle = compile_bundle(project, environment)
    clock = clock or utcnow
    engine, store = open_database(database_url(project, db_url), bundle, clock)
    studio = Studio(project=project, bundle=bundle, engine=engine, accounts=users.Accounts(engine, bundle, now=clock),
                    store=store, templates=templates(), clock=clock)
    routes = [
        Route("/", home),
        *auth.routes,
        *extra_routes,
        *screens.routes,
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    middleware = [
        Middleware(SessionMiddleware, secret_key=auth.studio_secret(project).hex(), session_cookie=auth.SESSION_COOKIE,
                   max_age=auth.SESSION_MAX_AGE, same_site="lax", https_only=False),
        Middleware(auth.Guard),
    ]
    app = Starlette(routes=routes, middleware=middleware, lifespan=_lifespan(on_startup, engine))
    app.state.studio = studio
    return app


def _lifespan(on_startup, engine: Engine):
    """Runs each `on_startup(app)` hook (awaited when it is a coroutine) and closes the database at the end."""
    @contextlib.asynccontextmanager
    async def lifespan(app):
        for hook in on_startup:
            done = hook(app)
            if inspect.isawaitable(done):
                await done
        try:
            yield
        finally:
            engine.dispose()
    return lifespan


def app_from_env() -> Starlette:
    """For `uvicorn --factory`: the project in FLOWDESK_PROJECT (default: the current folder)."""
    return create_app(Path(os.environ.get("FLOWDESK_PROJECT", ".")), db_url=os.environ.get("FLOWDESK_DB"))
