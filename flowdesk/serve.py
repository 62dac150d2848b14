"""The project on Asterisk: `flowdesk serve` answers real calls over ARI with the project's flows,
`flowdesk asterisk-config` writes what Asterisk needs from the bundle (agents' phones, dialplan).

    flowdesk serve --ari http://127.0.0.1:8088/ari --user flowdesk --password secret flows schemas
    FLOWDESK_AGENT_PASSWORD_8001=... flowdesk asterisk-config flows schemas -o /etc/asterisk

Every setting comes from, in order: the command line, an environment variable, a YAML file given
with --config (same names as the options, with underscores), the default.  Calls are logged in the
project's database (--db / FLOWDESK_DB), recordings are fetched over ARI into --recordings.
"""
from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import logging
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

EXIT_OK, EXIT_ERRORS, EXIT_USAGE = 0, 1, 2

# option -> (environment variable, default)
SETTINGS = {
    "ari": ("FLOWDESK_ARI_URL", "http://127.0.0.1:8088/ari"),
    "user": ("FLOWDESK_ARI_USER", "flowdesk"),
    "password": ("FLOWDESK_ARI_PASSWORD", None),
    "app": ("FLOWDESK_ARI_APP", "flowdesk"),
    "agent_dial": ("FLOWDESK_AGENT_DIAL", "PJSIP/{extension}"),
    "outbound_dial": ("FLOWDESK_OUTBOUND_DIAL", "Local/{number}@flowdesk-transfer"),
    "media_dir": ("FLOWDESK_MEDIA_DIR", None),
    "media_dir_in_asterisk": ("FLOWDESK_MEDIA_DIR_IN_ASTERISK", None),
    "recordings": ("FLOWDESK_RECORDINGS", None),
    "records": ("FLOWDESK_RECORDS", None),
    "agents": ("FLOWDESK_AGENTS", "ready"),
}


class ServeError(Exception):
    """A setting the user must fix; printed without a traceback, exit 2."""


@dataclass(frozen=True)
class ServeSettings:
    ari: str
    user: str
    password: str
    app: str
    agent_dial: str
    outbound_dial: str
    media_dir: Path
    media_dir_in_asterisk: str
    recordings: Path
    records: Path | None
    agents: str


def read_settings(args, project: Path) -> ServeSettings:
    from_file = _config_file(args.config)
    values = {}
    for name, (variable, default) in SETTINGS.items():
        value = getattr(args, name, None) or os.environ.get(variable) or from_file.get(name) or default
        values[name] = value
    if not values["password"]:
        raise ServeError("no ARI password: give --password, FLOWDESK_ARI_PASSWORD or `password:` in --config")
    if values["agents"] not in ("ready", "none"):
        raise ServeError(f"--agents must be `ready` or `none`, not {values['agents']!r}")
    media_dir = Path(values["media_dir"] or project / ".flowdesk" / "media").absolute()
    return ServeSettings(
        ari=values["ari"].rstrip("/"), user=values["user"], password=values["password"], app=values["app"],
        agent_dial=values["agent_dial"], outbound_dial=values["outbound_dial"], media_dir=media_dir,
        media_dir_in_asterisk=values["media_dir_in_asterisk"] or str(media_dir),
        recordings=Path(values["recordings"] or project / ".flowdesk" / "recordings").absolute(),
        records=Path(values["records"]) if values["records"] else None, agents=values["agents"])


def _config_file(path: str | None) -> dict:
    if not path:
        return {}
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except OSError as error:
        raise ServeError(f"cannot read --config {path}: {error.strerror}") from None
    except yaml.YAMLError as error:
        raise ServeError(f"--config {path} is not valid YAML: {error}") from None
    if not isinstance(data, dict):
        raise ServeError(f"--config {path} must be a mapping of settings (ari: ..., user: ...)")
    unknown = sorted(set(data) - set(SETTINGS))
    if unknown:
        raise ServeError(f"--config {path}: unknown setting {unknown[0]!r}; known: {', '.join(SETTINGS)}")
    return {k: str(v) for k, v in data.items() if v is not None}


def cmd_serve(args) -> int:
    from flowdesk.cli import _print_diagnostics
    from compiler import compile_project
    from flowdesk.config import load_config
    from dsl.diagnostics import summary

    config = load_config(args.paths, args.db, args.env)
    try:
        settings = read_settings(args, config.project)
    except ServeError as error:
        print(f"flowdesk serve: {error}", file=sys.stderr)
        return EXIT_USAGE
    result = compile_project(args.paths, environment=config.environment)
    _print_diagnostics(result.diagnostics, result.sources.text_of)
    if result.bundle is None or any(d.is_error for d in result.diagnostics):
        print(f"not served: {summary(result.diagnostics)}", file=sys.stderr)
        return EXIT_ERRORS
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        clock = start_clock(args.at, args.tz)
        return asyncio.run(serve(result.bundle, settings, config, clock))
    except ServeError as error:
        print(f"flowdesk serve: {error}", file=sys.stderr)
        return EXIT_USAGE


def start_clock(at: str | None, tz: str):
    """Now, or a clock that started at `at` and runs at real speed."""
    if not at:
        return lambda: dt.datetime.now(dt.timezone.utc)
    from runtime.simulator import SimulatorError, parse_moment
    try:
        start = parse_moment(at, tz, lambda zone: dt.datetime.now(zone))
    except (SimulatorError, ValueError) as error:
        raise ServeError(str(error)) from None
    began = time.monotonic()
    return lambda: start + dt.timedelta(seconds=time.monotonic() - began)


async def serve(bundle, settings: ServeSettings, config, clock) -> int:
    from runtime.ari.client import AriClient, AriError, AriUnavailable
    edge = build_edge(bundle, settings, config, AriClient(settings.ari, settings.user, settings.password, settings.app),
                      clock)
    await edge.client.open()
    try:
        info = await edge.client.info()
        where = f"Asterisk {info.get('system', {}).get('version', '')}".strip()
    except AriUnavailable:
        where = "Asterisk (not answering yet; connecting when it does)"
    except AriError as error:
        await edge.client.close()
        raise ServeError(f"ARI at {settings.ari} refused us: {error}; check --user and --password") from None
    spoken = await edge.media.prepare(bundle, edge.center.options)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    running = asyncio.create_task(edge.run())
    print(f"serving {len(bundle.flows)} flows ({bundle.hash[:12]}) on ARI application {settings.app!r} "
          f"at {settings.ari}, {where}; {spoken} prompts spoken; log: {config.database_url}", file=sys.stderr,
          flush=True)
    await stop.wait()
    await edge.close()
    running.cancel()
    print("stopped", file=sys.stderr, flush=True)
    return EXIT_OK


def build_edge(bundle, settings: ServeSettings, config, client, clock):
    """The call centre with its CRM, event log and media, on one ARI client."""
    from runtime.ari.adapter import AriEdge, EdgeSettings
    from runtime.ari.media import Media
    from runtime.callcenter import CallCenter, MemoryCrm
    from runtime.engine import EngineOptions
    from runtime.simulator import SimulatorError, read_records
    from runtime.storage import EventLog

    try:
        records = read_records(settings.records, bundle) if settings.records else {}
    except SimulatorError as error:
        raise ServeError(str(error)) from None
    now = clock()
    center = CallCenter(bundle, epoch=now, crm=MemoryCrm(bundle, records),
                        options=EngineOptions(secrets=os.environ.get))
    if settings.agents == "ready":
        for agent in bundle.agents:
            center.login(agent, now)
    media = Media(settings.media_dir, settings.media_dir_in_asterisk, project_dir=config.project)
    edge_settings = EdgeSettings(agent_dial=settings.agent_dial, outbound_dial=settings.outbound_dial,
                                 recordings_dir=settings.recordings)
    return AriEdge(client, center, media, edge_settings, event_log=EventLog(config.database_url), now=clock)


def cmd_asterisk_config(args) -> int:
    from compiler import compile_project
    from dsl.diagnostics import summary
    from flowdesk.cli import _print_diagnostics, write_atomically
    from runtime.ari.asterisk_config import AsteriskConfigError, render

    result = compile_project(args.paths, environment=args.env)
    _print_diagnostics(result.diagnostics, result.sources.text_of)
    if result.bundle is None or any(d.is_error for d in result.diagnostics):
        print(f"not written: {summary(result.diagnostics)}", file=sys.stderr)
        return EXIT_ERRORS
    try:
        files = render(result.bundle, app=args.app,
                       agent_password=lambda extension: os.environ.get(f"FLOWDESK_AGENT_PASSWORD_{extension}"))
    except AsteriskConfigError as error:
        for problem in error.problems:
            print(f"flowdesk asterisk-config: {problem}", file=sys.stderr)
        print("set each agent's SIP password as FLOWDESK_AGENT_PASSWORD_<EXTENSION> and run it again",
              file=sys.stderr)
        return EXIT_ERRORS
    for name, text in files.items():
        if args.output:
            write_atomically(Path(args.output) / name, text)
            print(f"wrote {Path(args.output) / name}", file=sys.stderr)
        else:
            sys.stdout.write(f";; ---- {name}\n{text}")
    return EXIT_OK


def add_parser(sub, env_option, db_option) -> None:
    p = sub.add_parser("asterisk-config", help="write Asterisk's files for the bundle: agents' phones, dialplan")
    p.add_argument("paths", nargs="+", metavar="PATH", help="the project's flow and schema files or folders")
    p.add_argument("-o", "--output", metavar="DIR", help="folder to write pjsip_flowdesk.conf and "
                                                         "extensions_flowdesk.conf into (default: print them)")
    p.add_argument("--app", default="flowdesk", help="the Stasis application the dialplan enters (default flowdesk)")
    env_option(p)
    p.set_defaults(run=cmd_asterisk_config)

    p = sub.add_parser("serve", help="answer real calls on Asterisk over ARI with the project's flows")
    p.add_argument("paths", nargs="*", default=["."], help="the project's flow and schema files or folders")
    p.add_argument("--ari", help="ARI base URL (default http://127.0.0.1:8088/ari; FLOWDESK_ARI_URL)")
    p.add_argument("--user", help="ARI user (default flowdesk; FLOWDESK_ARI_USER)")
    p.add_argument("--password", help="ARI password (FLOWDESK_ARI_PASSWORD)")
    p.add_argument("--app", help="the Stasis application name the dialplan sends calls to (default flowdesk)")
    p.add_argument("--agent-dial", dest="agent_dial", help="how agents' phones are dialled (default PJSIP/{extension})")
    p.add_argument("--outbound-dial", dest="outbound_dial", help="how callbacks dial a customer ({number})")
    p.add_argument("--media-dir", dest="media_dir", help="where spoken prompts are written (Asterisk must read it)")
    p.add_argument("--media-dir-in-asterisk", dest="media_dir_in_asterisk",
                   help="the media folder as Asterisk names it, when it differs (chroot, other host)")
    p.add_argument("--recordings", help="where call recordings are kept (default .flowdesk/recordings)")
    p.add_argument("--records", help="CRM records to start with (YAML), as for `flowdesk call`")
    p.add_argument("--agents", help="`ready`: every agent logged in and ready at start (default); `none`")
    p.add_argument("--config", help="a YAML file with any of these settings")
    p.add_argument("--at", help="run as if the clock had started at this moment, e.g. \"2026-11-23 10:00\" "
                                "(demos and tests outside business hours); time then runs at its real pace")
    p.add_argument("--tz", default="Asia/Shanghai", help="time zone of --at (default Asia/Shanghai)")
    p.add_argument("-v", "--verbose", action="store_true", help="log each call's faults and reconnections")
    env_option(p)
    db_option(p)
    p.set_defaults(run=cmd_serve)
