"""Exchange sessions and weekly rebalance days, from exchange_calendars (never from the data).

XNYS goes through :mod:`hybrid_core.calendars` (one cached calendar per process); any other
exchange_calendars name is built here once and cached.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd

from hybrid_core.calendars import CAL_START, last_sessions_of_weeks, nyse_sessions

NYSE = "XNYS"


def is_known_calendar(name: str) -> bool:
    """True if exchange_calendars knows the calendar ``name`` (e.g. ``XNYS``)."""
    if name == NYSE:  # the default: known without importing exchange_calendars (~0.3 s)
        return True
    import exchange_calendars as xcals

    return name in xcals.get_calendar_names()


@lru_cache(maxsize=4)
def _other_calendar_sessions(name: str) -> pd.DatetimeIndex:
    import exchange_calendars as xcals

    end = pd.Timestamp.today().normalize() + pd.DateOffset(years=1)
    calendar = xcals.get_calendar(name, start=CAL_START, end=end.strftime("%Y-%m-%d"))
    sessions = pd.DatetimeIndex(calendar.sessions)
    return sessions.tz_localize(None) if sessions.tz is not None else sessions


def _all_sessions(calendar: str) -> pd.DatetimeIndex:
    return nyse_sessions() if calendar == NYSE else _other_calendar_sessions(calendar)


def _between(dates: pd.DatetimeIndex, start: pd.Timestamp | None, end: pd.Timestamp | None) -> pd.DatetimeIndex:
    lo = 0 if start is None else dates.searchsorted(pd.Timestamp(start), side="left")
    hi = len(dates) if end is None else dates.searchsorted(pd.Timestamp(end), side="right")
    return dates[lo:hi]


def exchange_sessions(calendar: str, start: pd.Timestamp, end: pd.Timestamp) -> pd.DatetimeIndex:
    """Sessions of ``calendar`` in [start, end], tz-naive normalised dates."""
    return _between(_all_sessions(calendar), start, end)


@lru_cache(maxsize=4)
def _week_ends(calendar: str) -> pd.DatetimeIndex:
    """The last session of every ISO week of the whole calendar (a year ahead of today)."""
    return last_sessions_of_weeks(_all_sessions(calendar))


def week_end_sessions(calendar: str, start: pd.Timestamp, end: pd.Timestamp) -> pd.DatetimeIndex:
    """The last session of each ISO week touching [start, end] (Thursday when Friday is a holiday).

    Read from the whole calendar, so a week cut by ``end`` (data stopping mid-week, a live
    run on a Wednesday) still ends on its true last session; the weeks are found once per
    process, since the backtester, every live cycle of a replay and the no-lookahead check ask
    for ranges of them again and again.
    """
    return _between(_week_ends(calendar), start, end)


def next_week_end_session(calendar: str, after: pd.Timestamp) -> pd.Timestamp | None:
    """The first weekly rebalance session strictly after ``after`` (None past the calendar's end)."""
    after = pd.Timestamp(after)
    upcoming = week_end_sessions(calendar, after + pd.Timedelta(days=1), after + pd.Timedelta(days=21))
    return upcoming[0] if len(upcoming) else None


@lru_cache(maxsize=4)
def session_days(calendar: str) -> np.ndarray:
    """Every session of ``calendar`` as ``datetime64[ns]`` (read-only, made once per process)."""
    days = np.asarray(_all_sessions(calendar), dtype="datetime64[ns]").copy()
    days.setflags(write=False)
    return days


@lru_cache(maxsize=4)
def week_end_days(calendar: str) -> np.ndarray:
    """:func:`week_end_sessions` of the whole calendar as ``datetime64[ns]`` (read-only, made once)."""
    days = np.asarray(_week_ends(calendar), dtype="datetime64[ns]").copy()
    days.setflags(write=False)
    return days


def days_between(days: np.ndarray, start: np.datetime64, end: np.datetime64) -> np.ndarray:
    """The sorted ``days`` in [start, end] (a view)."""
    return days[np.searchsorted(days, start, side="left"):np.searchsorted(days, end, side="right")]

