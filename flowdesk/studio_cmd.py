"""`flowdesk studio`: the studio for a project (CRM, agent desktop, supervisor's SLA list), served by uvicorn.

    flowdesk studio --project . --demo        # demo passwords printed, demo records in an empty CRM
    flowdesk studio --project . --demo --telephony auto --at "2026-11-23 10:00" --tz Asia/Shanghai

With no --db the studio uses the project's database (`.flowdesk/flowdesk.db`, or FLOWDESK_DB),
the one calls are logged to, created and migrated on start.

Telephony: `simulated` (default; callers are placed from the desktop), `asterisk` (calls over ARI,
with the settings `flowdesk serve` reads: --ari, --ari-user, --ari-password, --ari-app or
FLOWDESK_ARI_URL, FLOWDESK_ARI_USER, FLOWDESK_ARI_PASSWORD, FLOWDESK_ARI_APP), or `auto`:
Asterisk when its ARI answers with the password, else simulated; the start says which and why.
"""
from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

import yaml

EXIT_OK, EXIT_ERRORS, EXIT_USAGE = 0, 1, 2
DEMO_RECORDS = Path(__file__).resolve().parent.parent / "demo" / "crm.yaml"
DEMO_DAYS = 10
DEMO_ZONE = ZoneInfo("Asia/Shanghai")
DEMO_REVIEWS_PER_AGENT = 6
DEMO_SEED = 1


class DemoError(Exception):
    """The demo records cannot be loaded; the message says which record and why."""


TELEPHONY = ("simulated", "asterisk", "auto")
ARI_PROBE_TIMEOUT_S = 3.0
TRY_IT = ("try it: log in as li_na, open {url}desktop, press 就绪 (ready), then place a simulated call "
          "(caller 13800138003 is 李强, a demo customer; key 0 asks for a person)")


class TelephonyChoice(NamedTuple):
    ari: Any            # flowdesk.serve.ServeSettings for Asterisk, None for the simulated telephony
    said: str           # which, and why, for the start-up lines


def cmd_studio(args) -> int:
    from flowdesk.serve import ServeError, start_clock
    from studio.app import StudioError, create_app

    project = Path(args.project)
    if not (project / "flows").is_dir() and not (project / "schemas").is_dir():
        print(f"flowdesk studio: {project} has no flows/ or schemas/ folder; give the project with --project DIR",
              file=sys.stderr)
        return EXIT_USAGE
    try:
        clock = start_clock(args.at, args.tz)
        telephony = choose_telephony(args, project)
    except ServeError as error:
        print(f"flowdesk studio: {error}", file=sys.stderr)
        return EXIT_USAGE
    try:
        app = create_app(project, db_url=args.db, environment=args.env, clock=clock, ari=telephony.ari)
    except StudioError as error:
        print(f"flowdesk studio: {error}", file=sys.stderr)
        return EXIT_ERRORS
    if args.demo:
        try:
            prepare_demo(app.state.studio, zone=ZoneInfo(args.tz))
        except DemoError as error:
            print(f"flowdesk studio: {error}", file=sys.stderr)
            return EXIT_ERRORS
    import logging

    import uvicorn

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    url = f"http://{args.host}:{args.port}/"
    print(f"telephony: {telephony.said}", flush=True)
    if args.at:
        print(f"clock: started at {clock().astimezone(ZoneInfo(args.tz)):%Y-%m-%d %H:%M} {args.tz}, "
              f"running at the real pace", flush=True)
    print(f"studio: {url}", flush=True)
    if args.demo and telephony.ari is None:
        print(TRY_IT.format(url=url), flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return EXIT_OK


def choose_telephony(args, project: Path) -> TelephonyChoice:
    """The telephony `--telephony` asks for.  `asterisk` without a password, or with one ARI
    refuses, raises ServeError (a usage error); an Asterisk not answering yet is connected to when
    it does, as `flowdesk serve` does.  `auto` falls back to the simulated telephony and says why."""
    from flowdesk.serve import SETTINGS, ServeError, read_settings

    mode = args.telephony
    if mode == "simulated":
        return TelephonyChoice(None, "simulated (callers are placed from the agent desktop)")
    variable = SETTINGS["password"][0]
    if not (args.password or os.environ.get(variable)):   # said in this command's words, not serve's
        if mode == "asterisk":
            raise ServeError(f"no ARI password: give --ari-password or {variable}")
        return TelephonyChoice(None, f"simulated (no ARI password: give --ari-password or {variable} for Asterisk)")
    try:
        settings = read_settings(args, project)
    except ServeError as error:
        if mode == "asterisk":
            raise
        return TelephonyChoice(None, f"simulated ({error})")
    refused, problem = asyncio.run(ari_problem(settings))
    where = f"Asterisk at {settings.ari}, ARI application {settings.app!r}"
    if problem is None:
        return TelephonyChoice(settings, where)
    if mode == "auto":
        return TelephonyChoice(None, f"simulated ({problem})")
    if refused:
        raise ServeError(f"{problem}; check --ari-user and --ari-password")
    return TelephonyChoice(settings, f"{where} ({problem}; connecting when it answers)")


async def ari_problem(settings) -> tuple[bool, str | None]:
    """(whether ARI refused the user, what is wrong) after one `GET /asterisk/info`; (False, None)
    when Asterisk answered.  Only a REST request: the Stasis application is not taken."""
    from runtime.ari.client import AriClient, AriError, AriUnavailable

    client = AriClient(settings.ari, settings.user, settings.password, settings.app,
                       timeout=ARI_PROBE_TIMEOUT_S, retries=0)
    await client.open()
    try:
        await client.info()
    except AriUnavailable as error:
        return False, f"no Asterisk answers ARI at {settings.ari}: {error}"
    except AriError as error:
        return True, f"the ARI at {settings.ari} refused user {settings.user!r}: {error}"
    finally:
        await client.close()
    return False, None


def prepare_demo(studio, records: Path = DEMO_RECORDS, out=print, zone: ZoneInfo = DEMO_ZONE) -> None:
    """Demo passwords for every agent (printed), demo records when the CRM is empty and, when no
    call was ever logged, the calls of the last DEMO_DAYS working days (runtime.history), so the
    reports, staffing and QA have something to show."""
    from studio import auth

    passwords = studio.accounts.ensure_demo_passwords(studio.bundle, auth.studio_secret(studio.project))
    if passwords:
        out("demo log-ins (user / password):")
        for name, password in passwords.items():
            title = studio.accounts.users[name].title
            out(f"  {name:<12} {password}   {title or ''}")
    added = seed(studio.store, records)
    if added:
        out(f"demo records added: {', '.join(f'{n} {e}' for e, n in added.items())}")
    calls = seed_history(studio, _read(records), zone)
    if calls:
        out(f"demo call history added: {calls} calls over the last {DEMO_DAYS} working days")
        reviewed = seed_reviews(studio)
        if reviewed:
            out(f"demo QA reviews added: {reviewed} calls scored")


def seed_history(studio, records: dict[str, list[dict]], zone: ZoneInfo, days: int = DEMO_DAYS) -> int:
    """The simulated calls of the `days` working days before today, when the event log holds no call
    but flow tests'; some callers are the demo customers.  Returns how many calls were added."""
    from sqlmodel import Session, select

    from runtime import history
    from runtime.storage import Call

    with Session(studio.engine) as session:
        # Flow tests log their calls too (`flowdesk test`, as `make run` runs it): only real calls count.
        if session.exec(select(Call.id).where(Call.test.is_(False)).limit(1)).first() is not None:
            return 0
        callers = [str(row["phone"]) for rows in records.values() for row in rows
                   if isinstance(row, dict) and row.get("phone")]
        today = studio.clock().astimezone(zone).date()
        rows = history.past_days(studio.bundle, before=today, days=days, zone=zone, callers=callers)
        session.add_all(rows)
        session.commit()
    return sum(isinstance(row, Call) for row in rows)


def seed(store, path: Path) -> dict[str, int]:
    """Adds the records of `path` ({Entity: [records]}) when none of those entities has a record
    yet; all of them or none.  Returns how many of each were added."""
    from runtime.crm.listing import ListQuery
    from runtime.crm.users import SYSTEM
    from runtime.crm.validation import Invalid

    data = _read(path)
    unknown = [e for e in data if e not in store.bundle.entities]
    if unknown:
        raise DemoError(f"{path}: there is no entity {unknown[0]!r} in the project")
    if any(store.list(SYSTEM, entity, ListQuery(limit=1)).rows for entity in data):
        return {}
    added = {}
    with store.transaction() as connection:
        for entity, rows in data.items():
            for n, row in enumerate(rows, 1):
                try:
                    store.create_in(connection, SYSTEM, entity, _resolved(store, connection, entity, row))
                except Invalid as invalid:
                    raise DemoError(f"{path}: {entity} #{n}: {invalid}") from None
            added[entity] = len(rows)
    return added


def seed_reviews(studio, per_agent: int = DEMO_REVIEWS_PER_AGENT) -> int:
    """Reviews of a random sample of the history's answered calls on the project's first evaluation
    form, by its first QA reviewer, each agent scoring around a level of their own (see
    runtime.history.demo_review).  Returns how many calls were scored."""
    import datetime as dt
    import random

    from runtime import history, qa

    evaluation = next(iter(studio.bundle.evaluations.values()), None)
    reviewer = next((a.name for a in studio.bundle.agents.values() if "qa" in a.roles), None)
    if evaluation is None or reviewer is None:
        return 0
    rng = random.Random(DEMO_SEED)
    with studio.engine.begin() as connection:
        calls = qa.answered_calls(connection, qa.CallFilter(since=dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc),
                                                            until=studio.clock()))
        picked = qa.sample_per_agent(calls, per_agent, DEMO_SEED) if calls else []
        level = {agent: rng.uniform(0.7, 0.95) for agent in sorted({c.agent for c in picked})}
        for call in picked:
            call_type, points, note = history.demo_review(evaluation, rng, level[call.agent])
            qa.save_review(connection, evaluation, call.call_id, call.agent, call.started_at, reviewer,
                           qa.score(evaluation, call_type, points), note, call.started_at + dt.timedelta(days=1))
    return len(picked)


def _read(path: Path) -> dict[str, list[dict]]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as error:
        raise DemoError(f"cannot read the demo records {path}: {error}") from None
    if not isinstance(data, dict) or not all(isinstance(v, list) for v in data.values()):
        raise DemoError(f"{path} must map entity names to lists of records")
    return data


def _resolved(store, connection, entity: str, row: Any) -> dict:
    """The row with each reference written as `{field: value}` replaced by the id it finds."""
    if not isinstance(row, dict):
        raise DemoError(f"a {entity} record must be a mapping of fields to values, not {row!r}")
    out = dict(row)
    for field in store.bundle.entities[entity].fields:
        wanted = row.get(field.name)
        if field.type == "ref" and isinstance(wanted, dict):
            found = _find(store, connection, field.target, wanted)
            if found is None:
                raise DemoError(f"{entity} {row}: no {field.target} has {wanted}")
            out[field.name] = found
    return out


def _find(store, connection, entity: str, equals: dict) -> int | None:
    from sqlalchemy import select

    table = store.table(entity)
    unknown = [k for k in equals if k not in table.c]
    if unknown:
        raise DemoError(f"{entity} has no field {unknown[0]!r} to find a record by")
    query = select(table.c.id).where(*[table.c[k] == str(v) for k, v in equals.items()]).order_by(table.c.id)
    return connection.execute(query.limit(1)).scalar()


def add_parser(sub, env_option, db_option) -> None:
    p = sub.add_parser("studio", help="serve the CRM studio for a project (log-in, lists, forms, ticket workflows)")
    p.add_argument("--project", default=".", metavar="DIR", help="the project folder with flows/ and schemas/ "
                                                                 "(default: the current folder)")
    p.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--demo", action="store_true", help="give every agent a demo password (printed) and add "
                                                       "demo customers, managers and tickets to an empty CRM")
    p.add_argument("--at", help="run as if the clock had started at this moment, e.g. \"2026-11-23 10:00\" "
                                "(demos outside the hotline's hours); time then runs at its real pace")
    p.add_argument("--tz", default="Asia/Shanghai", help="time zone of --at (default Asia/Shanghai)")
    p.add_argument("--telephony", choices=TELEPHONY, default="simulated",
                   help="simulated (default): callers placed from the desktop; asterisk: calls over ARI; "
                        "auto: Asterisk when its ARI answers with the password, else simulated")
    p.add_argument("--ari", help="ARI base URL (default http://127.0.0.1:8088/ari; FLOWDESK_ARI_URL)")
    p.add_argument("--ari-user", dest="user", help="ARI user (default flowdesk; FLOWDESK_ARI_USER)")
    p.add_argument("--ari-password", dest="password", help="ARI password (FLOWDESK_ARI_PASSWORD)")
    p.add_argument("--ari-app", dest="app", help="the Stasis application calls are sent to "
                                                 "(default flowdesk; FLOWDESK_ARI_APP)")
    env_option(p)
    db_option(p)
    p.set_defaults(run=cmd_studio, config=None)   # flowdesk serve's --config: not offered here
