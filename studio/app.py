"""The studio as an ASGI application: `create_app(project)` opens (and migrates) the project's
database, runs the version live in it (the project's files, compiled, on a database that has no
version yet; see studio.publish for publishing and rolling back) and serves one product: the CRM
screens, the agent desktop with its telephony, the supervisor's SLA list and the notices, with the
SLA tick running beside them.

    uvicorn --factory 'studio.app:app_from_env'    # FLOWDESK_PROJECT=/path/to/project

The database is the one the call runtime logs to (`flowdesk.config`: --db, FLOWDESK_DB, or
`.flowdesk/flowdesk.db` in the project), so calls and CRM records live side by side.

While the server runs: the telephony (`app.state.telephony`, simulated, or Asterisk when
`app.state.ari` holds ARI settings; see `studio.desktop.start_telephony`) and an SLA tick every
`SLA_EVERY_S` seconds that sends the escalations and reminders due.  On shutdown the telephony
stops first, so the last event-log rows are written before the database closes.
"""
from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import inspect
import logging
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
from runtime.times import utcnow
from studio import auth

HERE = Path(__file__).parent
SLA_EVERY_S = 60.0
log = logging.getLogger("flowdesk.studio")


class StudioError(Exception):
    """The studio cannot start; the message says why and what to fix."""


def in_utc(clock: Callable[[], dt.datetime]) -> Callable[[], dt.datetime]:
    """`clock` read in UTC: SQLite keeps no zone, so every time the studio writes is UTC
    (`flowdesk studio --at` gives a clock in the --tz zone)."""
    return lambda: clock().astimezone(dt.timezone.utc)


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


def open_database(url: str, project: Path, environment: str | None, clock):
    """The engine, the bundle to run and the record store, with the CRM's tables made or migrated
    to the bundle's entities.  The bundle is the live version's (runtime.versions); on a database
    without versions it is the project's files, recorded as version 1 once the database took them."""
    from runtime import versions
    from runtime.storage import open_engine

    engine = open_engine(url)   # the event log's tables, and SQLite's WAL and foreign keys
    try:
        versions.create_tables(engine)
        live = versions.live(engine)
        bundle = live_bundle(engine, live, environment) if live else compile_bundle(project, environment)
        store = prepare_database(engine, bundle, clock)
        if live is None:
            from studio import release

            release.start_version(engine, project, bundle, at=clock())
    except BaseException:
        engine.dispose()
        raise
    return engine, bundle, store


def live_bundle(engine: Engine, live, environment: str | None) -> ir.Bundle:
    """The live version's bundle; saved files that were never published do not go live by a restart."""
    from runtime import versions

    try:
        bundle = versions.bundle(engine, live.number)
    except versions.VersionError as error:
        raise StudioError(f"the live version in {engine.url!r} cannot run: {error}") from None
    if environment is not None and environment != bundle.environment:
        raise StudioError(f"the live version {live.number} in {engine.url!r} was compiled for the environment "
                          f"{bundle.environment!r}, not {environment!r}; publish the project for {environment!r} "
                          f"(flowdesk publish --env {environment}) or use that environment's database")
    log.info("running version %s (published by %s)", live.number, live.published_by)
    return bundle


def prepare_database(engine: Engine, bundle: ir.Bundle, clock):
    """The CRM's tables migrated to the bundle's entities, the studio's own tables; the record store."""
    from runtime import qa
    from runtime.crm import notifications
    from runtime.crm.migrate import MigrationRefused, migrate
    from runtime.crm.records import RecordStore

    try:
        migrate(engine, bundle)
    except MigrationRefused as refused:
        raise StudioError(f"the database {engine.url!r} cannot take the project's schemas as they are now:\n"
                          f"{refused}") from None
    store = RecordStore(engine, bundle, now=clock)
    store.create_tables()       # the audit log and the search indexes beside the entities
    notifications.create_tables(engine)
    users.create_tables(engine)
    qa.create_tables(engine)
    return store


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
               clock=None, environment: str | None = None, ari=None, sla_every_s: float = SLA_EVERY_S) -> Starlette:
    """The studio for the project in `project` (its flows/ and schemas/).

    `extra_routes` are mounted next to the studio's own (behind the same log-in and CSRF checks);
    `on_startup` hooks get the app when the server starts, after the telephony; `clock() -> aware
    datetime` is "now"; `ari`: the ARI settings (`flowdesk.serve.ServeSettings`) for calls on
    Asterisk, None for the simulated telephony."""
    from studio import desktop, publish, qa, reports, screens, simulate, structured, supervisor, wallboard, workspace

    project = Path(project).resolve()
    clock = in_utc(clock) if clock else utcnow
    engine, bundle, store = open_database(database_url(project, db_url), project, environment, clock)
    studio = Studio(project=project, bundle=bundle, engine=engine, accounts=users.Accounts(engine, bundle, now=clock),
                    store=store, templates=templates(), clock=clock)
    studio.templates.env.globals["workplaces"] = lambda user: workplaces(studio.bundle, user)
    given = {id(route) for route in extra_routes}
    routes = [
        Route("/", home),
        *auth.routes,
        *extra_routes,
        *[route for route in desktop.routes if id(route) not in given],
        *supervisor.routes,
        *wallboard.routes,
        *reports.routes,
        *workspace.routes,
        *structured.routes,
        *simulate.routes,
        *publish.routes,
        *qa.routes,
        *screens.routes,
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    middleware = [
        Middleware(SessionMiddleware, secret_key=auth.studio_secret(project).hex(), session_cookie=auth.SESSION_COOKIE,
                   max_age=auth.SESSION_MAX_AGE, same_site="lax", https_only=False),
        Middleware(auth.Guard),
    ]
    hooks = [desktop.start_telephony, *[hook for hook in on_startup if hook is not desktop.start_telephony]]
    app = Starlette(routes=routes, middleware=middleware, lifespan=_lifespan(hooks, studio, sla_every_s))
    app.state.studio = studio
    app.state.ari = ari
    return app


def workplaces(bundle: ir.Bundle, user: users.User | None) -> list[tuple[str, str, str]]:
    """(address, title, key) of the pages the user works on beside the CRM's lists: the desktop for
    agents who take queue calls, the SLA list for team leads and supervisors, reports and staffing, the flow editor."""
    from studio import qa
    from studio.reports import REPORT_ROLES, STAFFING_ROLES
    from studio.supervisor import may_supervise
    from studio.workspace import may_edit

    if user is None:
        return []
    out = []
    agent = bundle.agents.get(user.name)
    if agent is not None and agent.queues:
        out.append(("/desktop", "坐席工作台", "desktop"))
    if may_supervise(user):
        out.append(("/supervisor", "SLA 监控", "supervisor"))
        out.append(("/wallboard", "实时看板", "wallboard"))
    if user.has_role(*REPORT_ROLES):
        out.append(("/reports", "历史报表", "reports"))
    if user.has_role(*STAFFING_ROLES):
        out.append(("/staffing", "排班测算", "staffing"))
    out += qa.workplaces(user)
    if may_edit(user):
        out.append(("/workspace", "流程编辑", "workspace"))
    return out


def _lifespan(on_startup, studio: Studio, sla_every_s: float):
    """Runs each `on_startup(app)` hook (awaited when it is a coroutine) and the SLA tick; at the end
    stops the telephony, so its last event-log rows are written, and closes the database."""
    @contextlib.asynccontextmanager
    async def lifespan(app):
        before = getattr(app.state, "telephony", None)
        for hook in on_startup:
            done = hook(app)
            if inspect.isawaitable(done):
                await done
        # Each server stops only the telephony its own start made (tests run one app in two).
        started = getattr(app.state, "telephony", None)
        started = started if started is not before else None
        await sla_tick_safely(studio)   # once at start, so what fell due while the studio was down goes out now
        ticking = asyncio.create_task(_sla_ticks(studio, sla_every_s))
        try:
            yield
        finally:
            ticking.cancel()
            await asyncio.gather(ticking, return_exceptions=True)
            try:
                if started is not None:
                    await started.stop()
            finally:
                studio.engine.dispose()
    return lifespan


def sla_tick(studio: Studio) -> list:
    """Sends the SLA escalations and reminders due now, in one transaction; returns what was sent."""
    from runtime.crm import notifications

    with studio.engine.begin() as connection:
        return notifications.run_sla(connection, studio.bundle, studio.clock(), studio.store.metadata)


async def sla_tick_safely(studio: Studio) -> None:
    """One tick off the event loop; a failure is logged and the next tick tries again."""
    try:
        sent = await asyncio.to_thread(sla_tick, studio)
    except Exception:
        log.exception("the SLA tick failed; the next tick tries again")
        return
    for notice in sent:
        log.info("SLA: %s to %s", notice.message, ", ".join(notice.agents) or "nobody")


async def _sla_ticks(studio: Studio, every_s: float) -> None:
    while True:
        await asyncio.sleep(every_s)
        await sla_tick_safely(studio)


def app_from_env() -> Starlette:
    """For `uvicorn --factory`: the project in FLOWDESK_PROJECT (default: the current folder)."""
    return create_app(Path(os.environ.get("FLOWDESK_PROJECT", ".")), db_url=os.environ.get("FLOWDESK_DB"))
