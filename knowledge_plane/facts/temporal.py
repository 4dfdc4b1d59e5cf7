"""Validity intervals: inclusive calendar-day bounds, ``None`` meaning open (since ever / until further notice).

A fact valid ``[2024-01-01, 2024-05-31]`` and one valid from ``2024-06-01`` touch but do not
overlap; an override closes the old fact on the day before the new one starts for that reason.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

Day = dt.date | None


class DateError(ValueError):
    """A date given by a caller is not an ISO calendar date."""


def parse_date(value: Any, what: str = "date") -> Day:
    """ISO date (or date/datetime) → date; None and "" stay None; anything else is a DateError."""
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    text = str(value).strip()
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        pass
    try:  # a timestamp where a day is expected: its calendar day
        return dt.datetime.fromisoformat(text).date()
    except ValueError:
        raise DateError(f"invalid {what} {value!r}: expected YYYY-MM-DD") from None


def iso(day: Day) -> str | None:
    return day.isoformat() if day else None


def valid_at(valid_from: Day, valid_until: Day, on: dt.date) -> bool:
    """Whether an interval holds on a day (both bounds inclusive)."""
    return (valid_from is None or valid_from <= on) and (valid_until is None or on <= valid_until)


def overlaps(a_from: Day, a_until: Day, b_from: Day, b_until: Day) -> bool:
    """Whether two intervals share at least one day."""
    return (a_until is None or b_from is None or b_from <= a_until) and \
           (b_until is None or a_from is None or a_from <= b_until)


def starts_before(a_from: Day, b_from: Day) -> bool:
    """Strict order of start days, an open start being the earliest."""
    if a_from == b_from:
        return False
    return a_from is None or (b_from is not None and a_from < b_from)


def day_before(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=1)
