"""Stage 3 (telephony part): business hours, queues and agents to IR."""
from __future__ import annotations

import datetime
import zoneinfo
from pathlib import Path

import yaml

from compiler import ir
from compiler.expressions import Context
from compiler.symbols import SymbolTable, resolve
from dsl import ast
from dsl.diagnostics import did_you_mean

DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
STRATEGIES = ["longest_idle", "fewest_calls", "round_robin", "skills", "preferred"]
ANNOUNCEMENTS = ["position", "wait"]


# ------------------------------------------------------------------ hours

def lower_hours(ctx: Context, decl: ast.Hours, folder: Path) -> ir.Hours:
    timezone, weekly = None, {day: [] for day in DAYS}
    closed: list[ir.DateSpan] = []
    special: list[ir.DateSpan] = []
    for item in decl.items:
        if item.kind == "timezone":
            if timezone is not None:
                ctx.report.error(ctx.file, item.pos, "E207", "'timezone' is given twice", hint="keep one of them")
            timezone = _timezone(ctx, item)
        elif item.kind == "weekly":
            ranges = _ranges(ctx, item.ranges)
            for day in _days(item.days):
                weekly[day].extend(ranges)
        elif item.kind == "closed":
            closed.append(_span(ctx, item, []))
        elif item.kind == "open":
            special.append(_span(ctx, item, _ranges(ctx, item.ranges)))
        elif item.kind == "holidays":
            closed.extend(_holiday_file(ctx, item, folder))
    if timezone is None:
        ctx.report.error(ctx.file, decl.pos, "E801", f"hours '{decl.name}' needs a time zone",
                         hint='add e.g. `timezone "Asia/Shanghai"`')
        timezone = "UTC"
    for day in DAYS:
        weekly[day] = sorted(weekly[day], key=lambda r: r.start)
        _overlaps(ctx, decl, day, weekly[day])
    return ir.Hours(name=decl.name, title=decl.title, timezone=timezone, weekly=weekly,
                    closed=sorted(closed, key=lambda s: s.first), open=sorted(special, key=lambda s: s.first))


def _timezone(ctx: Context, item: ast.HoursItem) -> str:
    try:
        zoneinfo.ZoneInfo(item.text)
        return item.text
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        common = ["Asia/Shanghai", "Asia/Hong_Kong", "Asia/Taipei", "Asia/Singapore", "Europe/London", "UTC"]
        ctx.report.error(ctx.file, item.pos, "E801", f"unknown time zone '{item.text}'",
                         hint=did_you_mean(item.text, common) or "use an IANA name such as \"Asia/Shanghai\"")
        return "UTC"


def _days(days: list[ast.DayRange]) -> list[str]:
    out = []
    for d in days:
        first = DAYS.index(d.first)
        last = DAYS.index(d.last) if d.last else first
        span = range(first, last + 1) if last >= first else [*range(first, 7), *range(0, last + 1)]
        out.extend(DAYS[i] for i in span)
    return out


def _minutes(clock: str) -> int:
    hours, minutes = clock.split(":")
    return int(hours) * 60 + int(minutes)


def _ranges(ctx: Context, ranges: list[ast.TimeRange]) -> list[ir.TimeRange]:
    out = []
    for r in ranges:
        start, end = _minutes(r.start), _minutes(r.end)
        if start >= 24 * 60 or end > 24 * 60 or int(r.start[3:]) > 59 or int(r.end[3:]) > 59:
            ctx.report.error(ctx.file, r.pos, "E802", f"{r.start}-{r.end} is not a time of day",
                             hint="times go from 00:00 to 24:00")
        elif end <= start:
            ctx.report.error(ctx.file, r.pos, "E802", f"{r.start}-{r.end} ends before it starts",
                             hint="for hours past midnight, write two ranges on consecutive days")
        out.append(ir.TimeRange(start=r.start, end=r.end))
    return out


def _overlaps(ctx: Context, decl: ast.Hours, day: str, ranges: list[ir.TimeRange]) -> None:
    for a, b in zip(ranges, ranges[1:]):
        if _minutes(b.start) < _minutes(a.end):
            ctx.report.warning(ctx.file, decl.pos, "W803", f"on {day}, {a.start}-{a.end} and {b.start}-{b.end} overlap")


def _span(ctx: Context, item: ast.HoursItem, ranges: list[ir.TimeRange]) -> ir.DateSpan:
    first, last = item.first, item.last or item.first
    for value in (first, last):
        if not isinstance(value, datetime.date):
            ctx.report.error(ctx.file, item.pos, "E803", f"{value} is not a date on the calendar")
            return ir.DateSpan(first="1970-01-01", last="1970-01-01", note=item.note)
    if last < first:
        ctx.report.error(ctx.file, item.pos, "E803", f"{first}..{last} ends before it starts")
    return ir.DateSpan(first=first.isoformat(), last=last.isoformat(), note=item.note, ranges=ranges)


def _holiday_file(ctx: Context, item: ast.HoursItem, folder: Path) -> list[ir.DateSpan]:
    """A YAML list of {date, name} or {from, to, name} entries, relative to the declaring file."""
    path = folder / item.text
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError:
        ctx.report.error(ctx.file, item.pos, "E804", f"cannot read holiday list '{item.text}'",
                         hint="the path is relative to this file's folder")
        return []
    except yaml.YAMLError as error:
        ctx.report.error(ctx.file, item.pos, "E804", f"holiday list '{item.text}' is not valid YAML: {getattr(error, 'problem', error)}")
        return []
    spans = []
    for i, entry in enumerate(data if isinstance(data, list) else [None]):
        span = _holiday(entry)
        if span is None:
            ctx.report.error(ctx.file, item.pos, "E804", f"holiday list '{item.text}': entry {i + 1} is not "
                             "{date: YYYY-MM-DD, name: ...} or {from: ..., to: ..., name: ...}")
            continue
        spans.append(span)
    return spans


def _holiday(entry) -> ir.DateSpan | None:
    if not isinstance(entry, dict):
        return None
    first = entry.get("date", entry.get("from"))
    last = entry.get("date", entry.get("to", first))
    if not isinstance(first, datetime.date) or not isinstance(last, datetime.date) or last < first:
        return None
    return ir.DateSpan(first=first.isoformat(), last=last.isoformat(), note=entry.get("name"))


# ------------------------------------------------------------------ queues and agents

def lower_queue(ctx: Context, table: SymbolTable, decl: ast.Queue) -> ir.Queue:
    values: dict = {}
    seen: dict[str, ast.QueueItem] = {}
    for item in decl.items:
        key = item.key if item.key != "announce" else f"announce_{item.value}"
        if key in seen:
            ctx.report.error(ctx.file, item.pos, "E207", f"'{item.key}' is given twice", hint="keep one of them")
        seen[key] = item
        _queue_item(ctx, table, decl, item, values)
    if values.get("strategy") == "skills" and not values.get("skills"):
        ctx.report.error(ctx.file, decl.pos, "E702", f"queue '{decl.name}' routes by skills but names none",
                         hint="add e.g. `skills billing >= 2`")
    return ir.Queue(name=decl.name, title=decl.title, **{"strategy": "longest_idle", **values})


def _queue_item(ctx: Context, table: SymbolTable, decl: ast.Queue, item: ast.QueueItem, values: dict) -> None:
    key = item.key
    if key == "strategy":
        if item.value not in STRATEGIES:
            ctx.report.error(ctx.file, item.pos, "E701", f"unknown routing strategy '{item.value}'",
                             hint=did_you_mean(item.value, STRATEGIES) or f"the strategies are: {', '.join(STRATEGIES)}")
        else:
            values["strategy"] = item.value
    elif key == "skills":
        values["skills"] = [ir.SkillNeed(skill=s.skill, min_level=s.level or 1) for s in item.value]
        for s in item.value:
            if s.level is not None and not 1 <= s.level <= 5:
                ctx.report.error(ctx.file, s.pos, "E603", f"skill level {s.level} is outside 1..5")
    elif key in ("priority", "music"):
        values[key] = item.value
    elif key == "announce":
        if item.value not in ANNOUNCEMENTS:
            ctx.report.error(ctx.file, item.pos, "E701", f"cannot announce '{item.value}'", hint="announce position or wait")
        else:
            values[f"announce_{item.value}_ms"] = item.value2
    elif key == "max_wait":
        values["max_wait_ms"] = item.value
        overflow: ast.Overflow = item.value2
        if overflow.kind == "queue":
            symbol = resolve(table, ctx.report, "queue", overflow.target, ctx.file, overflow.pos)
            if symbol and symbol.name == decl.name:
                ctx.report.error(ctx.file, overflow.pos, "E703", "a queue cannot overflow into itself",
                                 hint="name another queue, voicemail or callback")
        values["overflow"] = ir.Overflow(kind=overflow.kind, target=overflow.target)
    elif key in ("ring_timeout", "wrapup"):
        values[f"{key}_ms"] = item.value
    elif key == "service_level":
        if not 0 < item.value <= 100:
            ctx.report.error(ctx.file, item.pos, "E603", f"a service level of {item.value}% is not possible")
        values["service_level"] = ir.ServiceLevel(percent=float(item.value), within_ms=item.value2)


def lower_agent(ctx: Context, table: SymbolTable, decl: ast.Agent) -> ir.Agent:
    values: dict = {}
    seen = set()
    for item in decl.items:
        if item.key in seen:
            ctx.report.error(ctx.file, item.pos, "E207", f"'{item.key}' is given twice", hint="keep one of them")
        seen.add(item.key)
        if item.key == "roles":
            for role in item.value:
                resolve(table, ctx.report, "role", role, ctx.file, item.pos)
            values["roles"] = item.value
        elif item.key == "queues":
            for queue in item.value:
                resolve(table, ctx.report, "queue", queue, ctx.file, item.pos)
            values["queues"] = item.value
        elif item.key == "skills":
            for s in item.value:
                if not 1 <= s.level <= 5:
                    ctx.report.error(ctx.file, s.pos, "E603", f"skill level {s.level} is outside 1..5")
            values["skills"] = {s.skill: s.level for s in item.value}
        else:
            values[item.key] = item.value
    return ir.Agent(name=decl.name, title=decl.title, **values)
