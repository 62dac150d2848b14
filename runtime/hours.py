"""Business hours: is an `ir.Hours` open at a given moment, and business-time arithmetic.

All inputs are timezone-aware datetimes; the hours' own IANA zone decides the local date and
time of day, so daylight saving is handled by zoneinfo.  A day's opening hours are, in order:

1. a special open day (`open DATE 09:00-17:00`) covering the date: its ranges;
2. a closed span (`closed DATE..DATE`, holiday files) covering the date: closed all day;
3. otherwise the weekly ranges of that weekday.

A special open day wins over a closed span, because it is the more specific statement (a working
Saturday inside a holiday week).  Ranges are half-open: `08:00-20:00` is open at 08:00:00 and
closed at 20:00:00; `24:00` is the end of the day.  Local times that a clock change skips count
from the first instant that exists after them (zoneinfo's `fold=0`).

`business_time_between` and `add_business_time` count only open time; the ticket SLA clock uses
them with the workflow's `hours`.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from compiler import ir
from runtime.memo import once_per_object

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
UTC = dt.timezone.utc
_ONE_DAY = dt.timedelta(days=1)
# add_business_time gives up after this many days without reaching the total (hours that are
# closed for years on end are a mistake in the declaration, not a deadline).
_SEARCH_DAYS = 3 * 366

Ranges = tuple[tuple[int, int], ...]  # (start, end) in minutes after local midnight


@dataclass(frozen=True, slots=True)
class Calendar:
    """An `ir.Hours` prepared for fast questions: minutes instead of clock texts, dates as ordinals."""
    name: str
    zone: ZoneInfo
    weekly: tuple[Ranges, ...]          # index 0 is Monday
    closed: frozenset[int]              # date ordinals closed all day
    special: dict[int, Ranges]          # date ordinal -> ranges of a special open day
    last_special: int                   # the latest special open day (0 if none)

    def ranges_on(self, day: dt.date) -> Ranges:
        ordinal = day.toordinal()
        special = self.special.get(ordinal)
        if special is not None:
            return special
        if ordinal in self.closed:
            return ()
        return self.weekly[day.weekday()]

    def never_open_after(self, day: dt.date) -> bool:
        return not any(self.weekly) and day.toordinal() > self.last_special


@once_per_object
def calendar(hours: ir.Hours) -> Calendar:
    """The prepared form of `hours`, made once per Hours object (the cache forgets dropped objects)."""
    return _prepare(hours)


def _prepare(hours: ir.Hours) -> Calendar:
    weekly = tuple(_merge(hours.weekly.get(day, [])) for day in DAYS)
    closed = frozenset(ordinal for span in hours.closed for ordinal in _ordinals(span))
    special = {ordinal: _merge(span.ranges) for span in hours.open for ordinal in _ordinals(span)}
    return Calendar(name=hours.name, zone=ZoneInfo(hours.timezone), weekly=weekly, closed=closed,
                    special=special, last_special=max(special, default=0))


def _ordinals(span: ir.DateSpan) -> range:
    first = dt.date.fromisoformat(span.first).toordinal()
    last = dt.date.fromisoformat(span.last).toordinal()
    return range(first, last + 1)


def _minutes(clock: str) -> int:
    hours, minutes = clock.split(":")
    return int(hours) * 60 + int(minutes)


def _merge(ranges: list[ir.TimeRange]) -> Ranges:
    """Sorted ranges with overlaps joined, so no minute is counted twice."""
    merged: list[list[int]] = []
    for start, end in sorted((_minutes(r.start), _minutes(r.end)) for r in ranges):
        if end <= start:
            continue
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return tuple((start, end) for start, end in merged)


def _require_aware(at: dt.datetime, what: str) -> None:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"{what} must carry a time zone (got {at.isoformat()})")


# ------------------------------------------------------------------ questions

def is_open(hours: ir.Hours, at: dt.datetime) -> bool:
    _require_aware(at, "the time asked about")
    cal = calendar(hours)
    local = at.astimezone(cal.zone)
    second = local.hour * 3600 + local.minute * 60 + local.second
    return any(start * 60 <= second < end * 60 for start, end in cal.ranges_on(local.date()))


def open_intervals(hours: ir.Hours, day: dt.date) -> list[tuple[dt.datetime, dt.datetime]]:
    """The open periods of one local date as (start, end) instants in UTC."""
    return _intervals(calendar(hours), day)


def _intervals(cal: Calendar, day: dt.date) -> list[tuple[dt.datetime, dt.datetime]]:
    return [(_instant(cal.zone, day, start), _instant(cal.zone, day, end)) for start, end in cal.ranges_on(day)]


def _instant(zone: ZoneInfo, day: dt.date, minutes: int) -> dt.datetime:
    if minutes >= 24 * 60:
        day, minutes = day + _ONE_DAY, minutes - 24 * 60
    local = dt.datetime(day.year, day.month, day.day, minutes // 60, minutes % 60, tzinfo=zone)
    return local.astimezone(UTC)


def business_time_between(hours: ir.Hours, start: dt.datetime, end: dt.datetime) -> int:
    """Milliseconds of open time in [start, end); 0 when end is not after start."""
    _require_aware(start, "start")
    _require_aware(end, "end")
    # Aware datetimes sharing a tzinfo subtract by wall clock; UTC keeps the arithmetic exact.
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    if end <= start:
        return 0
    cal = calendar(hours)
    day, last = start.astimezone(cal.zone).date(), end.astimezone(cal.zone).date()
    total = dt.timedelta(0)
    while day <= last:
        for opens, closes in _intervals(cal, day):
            low, high = max(opens, start), min(closes, end)
            if high > low:
                total += high - low
        day += _ONE_DAY
    return total // dt.timedelta(milliseconds=1)


def add_business_time(hours: ir.Hours, start: dt.datetime, ms: int) -> dt.datetime:
    """The earliest instant by which `ms` of open time have passed since `start`, in the hours'
    zone.  Adding 0 gives `start` itself; a total used up exactly at closing time gives the
    closing time, not the next opening."""
    _require_aware(start, "start")
    if ms < 0:
        raise ValueError(f"cannot add a negative business time ({ms} ms)")
    cal = calendar(hours)
    if ms == 0:
        return start.astimezone(cal.zone)
    remaining = dt.timedelta(milliseconds=ms)
    start = start.astimezone(UTC)
    day = start.astimezone(cal.zone).date()
    for _ in range(_SEARCH_DAYS):
        if cal.never_open_after(day):
            break
        for opens, closes in _intervals(cal, day):
            low = max(opens, start)
            if closes <= low:
                continue
            if low + remaining <= closes:
                return (low + remaining).astimezone(cal.zone)
            remaining -= closes - low
        day += _ONE_DAY
    raise ValueError(f"hours '{cal.name}' are not open long enough after {start.isoformat()} "
                     f"to count {ms} ms of business time")
