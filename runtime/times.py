"""Moments as they are stored: timezone-aware and in UTC.  SQLite hands back naive datetimes; they
were written in UTC, so they are read as UTC."""
from __future__ import annotations

import datetime as dt

UTC = dt.timezone.utc


def utcnow() -> dt.datetime:
    return dt.datetime.now(UTC)


def as_utc(moment: dt.datetime | None) -> dt.datetime | None:
    """`moment` in UTC; a naive one (from SQLite) is taken to be UTC already."""
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
