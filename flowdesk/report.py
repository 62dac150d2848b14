"""`flowdesk report`: queue and agent KPIs per interval from the event log, as a table or CSV."""
from __future__ import annotations

import csv
import datetime
import io
import sys
from zoneinfo import ZoneInfo

from runtime.kpis import agent_kpis, queue_kpis
from runtime.storage import EventLog

QUEUE_COLUMNS = ["queue", "interval", "offered", "answered", "abandoned", "short_abandoned", "overflowed",
                 "answer_rate", "service_level", "asa_s", "aht_s", "longest_wait_s"]
AGENT_COLUMNS = ["agent", "interval", "calls", "ready_s", "not_ready_s", "ringing_s", "on_call_s", "wrap_up_s",
                 "occupancy"]


def parse_time(text: str, tz: ZoneInfo) -> datetime.datetime:
    """`2026-11-23`, `2026-11-23 08:00` or ISO 8601; without a zone, on the wall clock of `tz`."""
    try:
        value = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"'{text}' is not a time such as 2026-11-23 or \"2026-11-23 08:00\"") from None
    return value if value.tzinfo else value.replace(tzinfo=tz)


def _number(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.3f}" if value < 10 else f"{value:.1f}"
    return str(value)


def queue_rows(log: EventLog, since, until, queue, interval, tz, targets) -> list[dict]:
    rows = []
    for k in queue_kpis(log.queue_visits(since, until, queue), interval, tz, targets):
        rows.append({"queue": k.queue, "interval": k.start.strftime("%Y-%m-%d %H:%M"), "offered": k.offered,
                     "answered": k.answered, "abandoned": k.abandoned, "short_abandoned": k.short_abandoned,
                     "overflowed": k.overflowed, "answer_rate": k.answer_rate, "service_level": k.service_level,
                     "asa_s": k.asa_s, "aht_s": k.aht_s, "longest_wait_s": k.longest_wait_s})
    return rows


def agent_rows(log: EventLog, since, until, agent, interval, tz) -> list[dict]:
    rows = []
    for k in agent_kpis(log.agent_states(until, agent), since, until, interval, tz):
        row = {"agent": k.agent, "interval": k.start.strftime("%Y-%m-%d %H:%M"), "calls": k.calls,
               "occupancy": k.occupancy}
        for state in ("ready", "not_ready", "ringing", "on_call", "wrap_up"):
            row[f"{state}_s"] = k.seconds.get(state, 0.0)
        rows.append(row)
    return rows


def render_table(rows: list[dict], columns: list[str]) -> str:
    cells = [columns] + [[_number(r[c]) for c in columns] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    lines = ["  ".join(v.rjust(w) if i > 1 else v.ljust(w) for i, (v, w) in enumerate(zip(row, widths))).rstrip()
             for row in cells]
    return "\n".join(lines) + "\n"


def render_csv(rows: list[dict], columns: list[str]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({c: _number(r[c]) for c in columns})
    return out.getvalue()


def run(args, database_url: str, targets: dict[str, float]) -> int:
    tz = ZoneInfo(args.tz)
    try:
        since = parse_time(args.since, tz)
        until = parse_time(args.until, tz) if args.until else datetime.datetime.now(tz)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    log = EventLog(database_url)
    if args.agents:
        rows, columns = agent_rows(log, since, until, args.agent, args.interval, tz), AGENT_COLUMNS
    else:
        rows, columns = queue_rows(log, since, until, args.queue, args.interval, tz, targets), QUEUE_COLUMNS
    if args.csv:
        from flowdesk.cli import write_atomically
        from pathlib import Path

        write_atomically(Path(args.csv), render_csv(rows, columns))
        print(f"wrote {args.csv} ({len(rows)} rows)", file=sys.stderr)
    else:
        sys.stdout.write(render_table(rows, columns) if rows else "no calls in this period\n")
    return 0
