"""Business hours: open or closed at a moment, holidays, special open days, time zones with and
without daylight saving, and business-time arithmetic."""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compiler import ir
from runtime.hours import add_business_time, business_time_between, is_open, open_intervals

SHANGHAI = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")
HOUR = 3_600_000


def ranges(*pairs: str) -> list[ir.TimeRange]:
    return [ir.TimeRange(start=p.split("-")[0], end=p.split("-")[1]) for p in pairs]


def office(**overrides) -> ir.Hours:
    """Weekdays 08:00-20:00, Saturday 09:00-12:00 and 13:00-17:00, closed on Sunday."""
    weekly = {day: ranges("08:00-20:00") for day in ("mon", "tue", "wed", "thu", "fri")}
    weekly.update(sat=ranges("09:00-12:00", "13:00-17:00"), sun=[])
    fields = dict(name="office", timezone="Asia/Shanghai", weekly=weekly)
    fields.update(overrides)
    return ir.Hours(**fields)


def national_day(**overrides) -> ir.Hours:
    """The office, closed for the October holiday, with Sunday 2026-10-11 a working day."""
    return office(closed=[ir.DateSpan(first="2026-10-01", last="2026-10-07", note="国庆节")],
                  open=[ir.DateSpan(first="2026-10-11", last="2026-10-11", note="调休", ranges=ranges("09:00-17:00"))],
                  **overrides)


def sh(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=SHANGHAI)


def berlin(*args, fold=0) -> dt.datetime:
    return dt.datetime(*args, tzinfo=BERLIN, fold=fold)


# ------------------------------------------------------------------ open or closed

@pytest.mark.parametrize("moment, expected", [
    (sh(2026, 11, 23, 7, 59, 59), False),   # Monday, just before opening
    (sh(2026, 11, 23, 8, 0), True),
    (sh(2026, 11, 23, 19, 59, 59), True),
    (sh(2026, 11, 23, 20, 0), False),        # the end of a range is closed
    (sh(2026, 11, 28, 12, 30), False),      # Saturday lunch break
    (sh(2026, 11, 28, 13, 0), True),
    (sh(2026, 11, 29, 10, 0), False),       # Sunday
])
def test_weekly_ranges(moment, expected):
    assert is_open(office(), moment) is expected


def test_the_hours_zone_decides_not_the_zone_of_the_moment():
    # 00:30 UTC on Monday is 08:30 in Shanghai; 23:30 UTC on Monday is 07:30 on Tuesday there.
    assert is_open(office(), dt.datetime(2026, 11, 23, 0, 30, tzinfo=dt.timezone.utc))
    assert not is_open(office(), dt.datetime(2026, 11, 23, 23, 30, tzinfo=dt.timezone.utc))
    assert is_open(office(), dt.datetime(2026, 11, 23, 1, 30, tzinfo=BERLIN))  # 08:30 in Shanghai


def test_a_day_open_until_midnight():
    hours = office(weekly={"mon": ranges("20:00-24:00")})
    assert is_open(hours, sh(2026, 11, 23, 23, 59, 59))
    assert not is_open(hours, sh(2026, 11, 24, 0, 0))


def test_closed_on_holidays():
    hours = national_day()
    assert is_open(hours, sh(2026, 9, 30, 10, 0))
    assert not is_open(hours, sh(2026, 10, 1, 10, 0))   # a Thursday inside the holiday
    assert not is_open(hours, sh(2026, 10, 7, 19, 0))   # the last day of the span is closed too
    assert is_open(hours, sh(2026, 10, 8, 10, 0))


def test_special_open_day_has_its_own_ranges():
    hours = national_day()
    assert is_open(hours, sh(2026, 10, 11, 9, 0))       # a Sunday that is a working day
    assert not is_open(hours, sh(2026, 10, 11, 17, 0))  # with its own closing time
    assert not is_open(hours, sh(2026, 10, 18, 10, 0))  # the next Sunday is closed as usual


def test_special_open_day_wins_over_a_closed_span():
    hours = office(closed=[ir.DateSpan(first="2026-10-01", last="2026-10-07")],
                   open=[ir.DateSpan(first="2026-10-03", last="2026-10-03", ranges=ranges("10:00-12:00"))])
    assert is_open(hours, sh(2026, 10, 3, 11, 0))
    assert not is_open(hours, sh(2026, 10, 3, 9, 0))
    assert not is_open(hours, sh(2026, 10, 2, 11, 0))


def test_overlapping_ranges_count_once():
    hours = office(weekly={"mon": ranges("08:00-12:00", "10:00-14:00")})
    assert is_open(hours, sh(2026, 11, 23, 13, 0))
    assert business_time_between(hours, sh(2026, 11, 23, 0, 0), sh(2026, 11, 24, 0, 0)) == 6 * HOUR


def test_a_moment_without_zone_is_refused_with_a_message():
    with pytest.raises(ValueError, match="time zone"):
        is_open(office(), dt.datetime(2026, 11, 23, 10, 0))


# ------------------------------------------------------------------ daylight saving (Europe/Berlin)

def berlin_office(**overrides) -> ir.Hours:
    weekly = {day: ranges("09:00-17:00") for day in ("mon", "tue", "wed", "thu", "fri")}
    return ir.Hours(name="berlin", timezone="Europe/Berlin", weekly=weekly, **overrides)


def test_the_same_utc_moment_is_open_in_summer_and_closed_in_winter():
    # 07:30 UTC is 09:30 summer time (CEST, +2) but 08:30 winter time (CET, +1).
    assert is_open(berlin_office(), dt.datetime(2026, 3, 30, 7, 30, tzinfo=dt.timezone.utc))
    assert not is_open(berlin_office(), dt.datetime(2026, 3, 27, 7, 30, tzinfo=dt.timezone.utc))


def test_clock_change_days_are_23_and_25_hours_long():
    always = ir.Hours(name="always", timezone="Europe/Berlin", weekly={d: ranges("00:00-24:00") for d in
                                                                       ("mon", "tue", "wed", "thu", "fri", "sat", "sun")})
    assert business_time_between(always, berlin(2026, 3, 29), berlin(2026, 3, 30)) == 23 * HOUR
    assert business_time_between(always, berlin(2026, 10, 25), berlin(2026, 10, 26)) == 25 * HOUR
    # Shanghai has no daylight saving: every day is 24 hours.
    every = always.model_copy(update={"timezone": "Asia/Shanghai"})
    assert business_time_between(every, sh(2026, 3, 29), sh(2026, 3, 30)) == 24 * HOUR


def test_opening_inside_the_skipped_hour_starts_when_the_clock_resumes():
    hours = ir.Hours(name="early", timezone="Europe/Berlin", weekly={"sun": ranges("02:30-04:00")})
    (opens, closes), = open_intervals(hours, dt.date(2026, 3, 29))
    assert opens == berlin(2026, 3, 29, 3, 30).astimezone(dt.timezone.utc)
    assert closes - opens == dt.timedelta(minutes=30)


def test_business_time_across_a_clock_change_weekend():
    # Friday 16:00 CET to Monday 10:00 CEST: one hour on Friday, one on Monday.
    assert business_time_between(berlin_office(), berlin(2026, 3, 27, 16), berlin(2026, 3, 30, 10)) == 2 * HOUR
    assert add_business_time(berlin_office(), berlin(2026, 3, 27, 16), 2 * HOUR) == berlin(2026, 3, 30, 10)


# ------------------------------------------------------------------ business time

@pytest.mark.parametrize("start, end, expected_hours", [
    (sh(2026, 11, 23, 10), sh(2026, 11, 23, 12), 2),         # within a day
    (sh(2026, 11, 23, 19), sh(2026, 11, 24, 9), 2),          # across a night
    (sh(2026, 11, 27, 19), sh(2026, 11, 30, 9), 1 + 3 + 4 + 1),  # across a weekend with a Saturday break
    (sh(2026, 11, 29, 10), sh(2026, 11, 29, 18), 0),         # all on a Sunday
    (sh(2026, 11, 23, 12), sh(2026, 11, 23, 10), 0),         # end before start
])
def test_business_time_between(start, end, expected_hours):
    assert business_time_between(office(), start, end) == expected_hours * HOUR


def test_business_time_across_holidays_and_a_special_day():
    # Wed 30 Sep 19:00 -> Mon 12 Oct 09:00: 1h on 30 Sep, 8h on the working Sunday 11 Oct, 1h on 12 Oct;
    # plus Thu 8, Fri 9 (12h each) and Sat 10 Oct (7h) after the holiday.
    assert business_time_between(national_day(), sh(2026, 9, 30, 19), sh(2026, 10, 12, 9)) == (1 + 12 + 12 + 7 + 8 + 1) * HOUR


def test_business_time_counts_milliseconds_and_mixed_zones():
    start = sh(2026, 11, 23, 10, 0, 0, 250_000)
    end = dt.datetime(2026, 11, 23, 2, 0, 1, tzinfo=dt.timezone.utc)  # 10:00:01 in Shanghai
    assert business_time_between(office(), start, end) == 750


@pytest.mark.parametrize("start, ms, expected", [
    (sh(2026, 11, 23, 10), 2 * HOUR, sh(2026, 11, 23, 12)),
    (sh(2026, 11, 23, 19), 2 * HOUR, sh(2026, 11, 24, 9)),        # continues the next morning
    (sh(2026, 11, 23, 18), 2 * HOUR, sh(2026, 11, 23, 20)),       # used up exactly at closing time
    (sh(2026, 11, 27, 19, 30), HOUR, sh(2026, 11, 28, 9, 30)),    # Friday evening into Saturday
    (sh(2026, 11, 28, 11), 2 * HOUR, sh(2026, 11, 28, 14)),       # across the lunch break
    (sh(2026, 11, 29, 10), HOUR, sh(2026, 11, 30, 9)),            # from a closed Sunday
    (sh(2026, 11, 29, 10), 0, sh(2026, 11, 29, 10)),              # nothing to add
])
def test_add_business_time(start, ms, expected):
    result = add_business_time(office(), start, ms)
    assert result == expected
    assert result.tzinfo == SHANGHAI


def test_add_business_time_skips_holidays():
    assert add_business_time(national_day(), sh(2026, 9, 30, 19), 2 * HOUR) == sh(2026, 10, 8, 9)
    # the special open Sunday counts, but only within its own ranges
    assert add_business_time(national_day(), sh(2026, 10, 10, 16, 30), 2 * HOUR) == sh(2026, 10, 11, 10, 30)


def test_add_business_time_refuses_what_cannot_be_done():
    with pytest.raises(ValueError, match="negative"):
        add_business_time(office(), sh(2026, 11, 23, 10), -1)
    never = ir.Hours(name="never", timezone="Asia/Shanghai", weekly={})
    with pytest.raises(ValueError, match="'never' are not open"):
        add_business_time(never, sh(2026, 11, 23, 10), HOUR)


moments = st.datetimes(min_value=dt.datetime(2026, 1, 1), max_value=dt.datetime(2027, 12, 31))


@settings(max_examples=150, deadline=None)
@given(start=moments, ms=st.integers(min_value=1, max_value=40 * 24 * HOUR), zone=st.sampled_from(["Asia/Shanghai", "Europe/Berlin"]))
def test_adding_then_measuring_gives_back_the_same_time(start, ms, zone):
    hours = national_day(timezone=zone)
    start = start.replace(tzinfo=ZoneInfo(zone))
    due = add_business_time(hours, start, ms)
    assert business_time_between(hours, start, due) == ms
    # and it is the earliest such moment
    assert business_time_between(hours, start, due - dt.timedelta(milliseconds=1)) == ms - 1
