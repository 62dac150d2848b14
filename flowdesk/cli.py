"""The `flowdesk` command line: the one place that wires the language, compiler and runtime.

Exit codes: 0 when all is well, 1 when the input has errors, 2 when the command is used wrongly.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from dsl.diagnostics import Diagnostic, render, summary

EXIT_OK, EXIT_ERRORS, EXIT_USAGE = 0, 1, 2


def _print_diagnostics(diagnostics: list[Diagnostic], text_of) -> None:
    for d in diagnostics:
        print(render(d, text_of(d.file)), file=sys.stderr)
        print(file=sys.stderr)


def _failed(diagnostics: list[Diagnostic], strict: bool) -> bool:
    return any(d.is_error or strict for d in diagnostics)


def write_atomically(path: Path, text: str) -> None:
    """Write the whole file or nothing: a reader never sees half a bundle."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # the permissions a plainly written file would have
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# ------------------------------------------------------------------ commands

def cmd_check(args) -> int:
    from compiler import compile_project

    result = compile_project(args.paths, environment=args.env)
    _print_diagnostics(result.diagnostics, result.sources.text_of)
    files = len(result.sources.files)
    print(f"{files} file{'s' if files != 1 else ''} checked: {summary(result.diagnostics)}",
          file=sys.stderr if result.diagnostics else sys.stdout)
    return EXIT_ERRORS if _failed(result.diagnostics, args.strict) else EXIT_OK


def cmd_compile(args) -> int:
    from compiler import compile_project
    from compiler.bundle import to_json

    result = compile_project(args.paths, environment=args.env)
    _print_diagnostics(result.diagnostics, result.sources.text_of)
    if result.bundle is None or _failed(result.diagnostics, args.strict):
        print(f"not compiled: {summary(result.diagnostics)}", file=sys.stderr)
        return EXIT_ERRORS
    text = to_json(result.bundle)
    if args.output in (None, "-"):
        sys.stdout.write(text)
    else:
        write_atomically(Path(args.output), text)
        print(f"wrote {args.output} ({result.bundle.hash})", file=sys.stderr)
    return EXIT_OK


def cmd_fmt(args) -> int:
    from compiler.sources import expand
    from dsl.formatter import format_source

    files, missing = expand([Path(p) for p in args.paths])
    for name in missing:
        print(f"{name}: no such file or folder", file=sys.stderr)
    status = EXIT_USAGE if missing else EXIT_OK
    for path in files:
        text = path.read_text(encoding="utf-8")
        formatted, diagnostics = format_source(text, str(path))
        if formatted is None:
            _print_diagnostics(diagnostics, lambda _: text)
            status = max(status, EXIT_ERRORS)
        elif formatted != text:
            if args.check:
                print(f"would reformat {path}", file=sys.stderr)
                status = max(status, EXIT_ERRORS)
            else:
                write_atomically(path, formatted)
                print(f"reformatted {path}", file=sys.stderr)
    return status


def cmd_graph(args) -> int:
    from compiler import compile_project
    from compiler.graph import to_dot, to_svg

    result = compile_project([args.file], environment=args.env)
    errors = [d for d in result.diagnostics if d.is_error]
    _print_diagnostics(errors, result.sources.text_of)
    if result.bundle is None:
        return EXIT_ERRORS
    flow = result.bundle.flows.get(args.flow)
    if flow is None:
        from dsl.diagnostics import did_you_mean

        hint = did_you_mean(args.flow, result.bundle.flows) or f"the flows are: {', '.join(result.bundle.flows)}"
        print(f"error: no flow named '{args.flow}' ({hint})", file=sys.stderr)
        return EXIT_ERRORS
    dot = to_dot(flow)
    if args.output is None or args.output == "-":
        sys.stdout.write(dot)
        return EXIT_OK
    out = Path(args.output)
    if out.suffix == ".svg":
        svg = to_svg(dot)
        if svg is None:
            print("error: writing SVG needs Graphviz's `dot` (Debian package graphviz); write a .dot file instead",
                  file=sys.stderr)
            return EXIT_ERRORS
        write_atomically(out, svg)
    else:
        write_atomically(out, dot)
    print(f"wrote {out}", file=sys.stderr)
    return EXIT_OK


def cmd_test(args) -> int:
    from compiler import compile_project
    from compiler.sources import find_root
    from flowdesk import flowtests
    from runtime.flowtest import find_test_files

    paths = [Path(p) for p in args.paths]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        print(f"error: no such file or folder: {', '.join(missing)}", file=sys.stderr)
        return EXIT_USAGE
    if args.from_call is None and (args.output or args.force):
        print("error: -o and --force go with --from-call", file=sys.stderr)
        return EXIT_USAGE
    sources = sorted({p if p.is_dir() else p.parent for p in paths})
    result = compile_project(sources, environment=args.env)
    if result.bundle is None:
        _print_diagnostics(result.errors, result.sources.text_of)
        print("the flows do not compile; fix them before testing", file=sys.stderr)
        return EXIT_ERRORS
    if args.from_call is not None:
        from flowdesk.config import load_config

        database_url = load_config(args.paths, db=args.db).database_url
        return flowtests.from_call(result.bundle, args.from_call, database_url, args.output, args.force)
    files = find_test_files(paths)
    if not files:
        print("error: no *.test.yaml files found", file=sys.stderr)
        return EXIT_ERRORS
    return flowtests.run(result, files, args.coverage, find_root(paths))


def cmd_report(args) -> int:
    from flowdesk import report
    from flowdesk.config import load_config

    config = load_config(args.paths or None, db=args.db)
    targets: dict[str, float] = {}
    if args.paths:
        from compiler import compile_project

        result = compile_project(args.paths, environment=args.env)
        if result.bundle is None:
            _print_diagnostics(result.errors, result.sources.text_of)
            return EXIT_ERRORS
        targets = {q.name: q.service_level.within_ms / 1000 for q in result.bundle.queues.values()}
    return report.run(args, config.database_url, targets)


def cmd_call(args) -> int:
    import datetime as dt

    from compiler import compile_project
    from runtime import simulator as sim

    try:
        at = sim.parse_moment(args.at, args.tz, dt.datetime.now)
    except sim.SimulatorError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    result = compile_project(args.paths, environment=args.env)
    if result.bundle is None or result.errors:
        _print_diagnostics(result.errors, result.sources.text_of)
        print(f"not compiled: {summary(result.diagnostics)}", file=sys.stderr)
        return EXIT_ERRORS
    agents = [a.strip() for a in args.agents.split(",") if a.strip()] if args.agents is not None else None
    try:
        records = sim.read_records(Path(args.crm), result.bundle) if args.crm else None
        call = sim.Simulator(result.bundle, flow=args.flow, dialed=args.number, caller=args.caller, at=at,
                             agents=agents, records=records, plain_text=not sys.stdout.isatty())
    except sim.SimulatorError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_ERRORS
    scripted = not sys.stdin.isatty()  # a piped script: the same lines, echoed into the transcript
    lines = sys.stdin if scripted else _typed_lines()
    status = sim.play(call, lines, print, lambda text: print(f"error: {text}", file=sys.stderr), scripted=scripted)
    _write_event_log(call.rows + call.center.take_rows(), args.paths, args.db)
    return status


def _write_event_log(rows: list, paths: list[str], db: str | None) -> None:
    """Simulated calls are logged like real ones (marked as tests), so reports can be tried on them."""
    from flowdesk.config import load_config
    from runtime.storage import EventLog

    url = load_config(paths, db=db).database_url
    try:
        EventLog(url).write(rows)
    except Exception as error:  # the call itself went fine; say why its log could not be kept
        print(f"warning: the call's event log was not written to {url}: {error}", file=sys.stderr)


def _typed_lines():
    print("type keys (1, 13800138000#), wait 10s, answer, agent-hangup, hangup, help or quit")
    while True:
        try:
            yield input("caller> ")
        except EOFError:
            return


def cmd_whatif(args) -> int:
    from compiler import compile_project
    from runtime import whatif

    result = compile_project(args.paths, environment=args.env)
    if result.bundle is None:
        _print_diagnostics(result.errors, result.sources.text_of)
        return EXIT_ERRORS
    if args.queue not in result.bundle.queues:
        known = ", ".join(sorted(result.bundle.queues)) or "none"
        print(f"error: no queue named '{args.queue}' (the queues are: {known})", file=sys.stderr)
        return EXIT_ERRORS
    try:
        figures = whatif.simulate(result.bundle, args.queue, args.calls_per_hour, args.agents, args.aht,
                                  args.patience, args.hours, args.seed, wrapup_ms=args.wrapup, ring_ms=args.ring)
    except whatif.WhatIfError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    sys.stdout.write(whatif.as_table(figures))
    return EXIT_OK


# ------------------------------------------------------------------ wiring

def env_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--env", help="environment from flowdesk.yaml (default: its default_environment)")


def db_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", help="event log database URL (default: FLOWDESK_DB or .flowdesk/flowdesk.db in the project)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="flowdesk", description="Declarative call flows and CRM.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def compile_options(p):
        env_option(p)
        p.add_argument("--strict", action="store_true", help="treat warnings as errors")

    p = sub.add_parser("check", help="check flow and schema files; exit 1 on errors")
    p.add_argument("paths", nargs="+", metavar="PATH", help="files or folders (all .flow and .schema beneath)")
    compile_options(p)
    p.set_defaults(run=cmd_check)

    p = sub.add_parser("compile", help="compile to one bundle (JSON)")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("-o", "--output", help="bundle file to write (default: standard output)")
    compile_options(p)
    p.set_defaults(run=cmd_compile)

    p = sub.add_parser("fmt", help="rewrite files in the canonical layout, keeping comments")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--check", action="store_true", help="change nothing; exit 1 if a file would change")
    p.set_defaults(run=cmd_fmt)

    p = sub.add_parser("graph", help="draw a flow as Graphviz DOT or SVG")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--flow", required=True, help="the flow to draw")
    p.add_argument("-o", "--output", help="out.dot or out.svg (default: DOT on standard output)")
    env_option(p)
    p.set_defaults(run=cmd_graph)

    p = sub.add_parser("test", help="run flow test files (*.test.yaml): scripted calls and what must happen")
    p.add_argument("paths", nargs="+", metavar="PATH", help="test files, or folders with flows and their tests")
    p.add_argument("--coverage", action="store_true", help="report the steps and branches no test reached")
    p.add_argument("--from-call", metavar="CALL_ID",
                   help="write the test of a logged call (a test that makes it again) instead of running tests")
    p.add_argument("-o", "--output", metavar="FILE", help="with --from-call: the test file to write (default: print it)")
    p.add_argument("--force", action="store_true", help="with --from-call -o: replace an existing file")
    db_option(p)
    env_option(p)
    p.set_defaults(run=cmd_test)

    p = sub.add_parser("report", help="queue or agent KPIs per interval from the event log")
    p.add_argument("paths", nargs="*", metavar="PATH", help="the project (for each queue's service-level target)")
    p.add_argument("--since", required=True, help="start, e.g. 2026-11-23 or \"2026-11-23 08:00\"")
    p.add_argument("--until", help="end (default: now)")
    p.add_argument("--queue", help="only this queue")
    p.add_argument("--agents", action="store_true", help="agent state times and occupancy instead of queues")
    p.add_argument("--agent", help="only this agent (with --agents)")
    p.add_argument("--interval", choices=["15min", "hour", "day"], default="hour")
    p.add_argument("--tz", default="Asia/Shanghai", help="time zone of the intervals (default Asia/Shanghai)")
    p.add_argument("--csv", metavar="FILE", help="write CSV to FILE instead of printing a table")
    db_option(p)
    env_option(p)
    p.set_defaults(run=cmd_report)

    p = sub.add_parser("call", help="make a call through a flow in the terminal (keys, waits, agents)")
    p.add_argument("paths", nargs="+", metavar="PATH", help="files or folders, as for check")
    start = p.add_mutually_exclusive_group(required=True)
    start.add_argument("--flow", help="the flow the call starts in")
    start.add_argument("--number", help="the number dialled: the call starts in the flow it enters")
    p.add_argument("--from", dest="caller", required=True, metavar="NUMBER", help="the caller's number")
    p.add_argument("--at", help="simulated start, e.g. \"2026-11-23 21:30\" (default: now)")
    p.add_argument("--tz", default="Asia/Shanghai", help="time zone of --at and the times shown")
    p.add_argument("--crm", metavar="FILE", help="records in the CRM, YAML {Entity: [records]}")
    p.add_argument("--agents", help="agents logged in and ready, a,b (default: every agent)")
    env_option(p)
    db_option(p)
    p.set_defaults(run=cmd_call)

    from runtime.whatif import duration

    p = sub.add_parser("whatif", help="simulate one queue with M agents and given traffic, next to Erlang C")
    p.add_argument("paths", nargs="+", metavar="PATH", help="the project")
    p.add_argument("--queue", required=True, help="the queue to simulate")
    p.add_argument("--calls-per-hour", type=float, required=True)
    p.add_argument("--agents", type=int, required=True)
    p.add_argument("--aht", type=duration, required=True, help="mean talk time, e.g. 240s or 4m")
    p.add_argument("--patience", type=duration, default=None,
                   help="mean time a caller waits before hanging up, or none (default: none)")
    p.add_argument("--hours", type=float, default=8, help="hours measured, after a 1 h warm-up (default 8)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--wrapup", type=duration, default=None, help="after-call work (default: the queue's)")
    p.add_argument("--ring", type=duration, default=2000, help="time an agent takes to pick up (default 2s)")
    env_option(p)
    p.set_defaults(run=cmd_whatif)

    from flowdesk import migrate_cmd, publish_cmd, serve, studio_cmd
    serve.add_parser(sub, env_option, db_option)
    migrate_cmd.add_parser(sub, env_option, db_option)
    studio_cmd.add_parser(sub, env_option, db_option)
    publish_cmd.add_parser(sub, env_option, db_option)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
