"""Trading calendars: NYSE sessions from exchange_calendars, 24/7 UTC days for crypto.

One cached XNYS calendar per process (building it costs about a second).
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

CAL_START = "1990-01-01"


@lru_cache(maxsize=1)
def _xnys():  # type: ignore[no-untyped-def]
    import exchange_calendars as xcals

    end = (pd.Timestamp.today().normalize() + pd.DateOffset(years=1)).strftime("%Y-%m-%d")
    return xcals.get_calendar("XNYS", start=CAL_START, end=end)


@lru_cache(maxsize=1)
def _all_sessions() -> pd.DatetimeIndex:
    """Every XNYS session from 1990 to a year ahead, cached on disk per exchange_calendars version.

    Importing exchange_calendars and building the calendar costs about a second, which a
    once-a-day cycle or a health probe should not pay every time."""
    cache = _cache_file()
    if cache is not None and cache.exists():
        try:
            return pd.DatetimeIndex(np.load(cache, allow_pickle=False))
        except (OSError, ValueError):
            pass
    sessions = _xnys().sessions
    if sessions.tz is not None:
        sessions = sessions.tz_localize(None)
    sessions = pd.DatetimeIndex(sessions)
    if cache is not None:
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache.with_suffix(f".{os.getpid()}.tmp.npy")
            np.save(tmp, sessions.to_numpy(dtype="datetime64[ns]"), allow_pickle=False)
            os.replace(tmp, cache)
        except OSError:
            pass
    return sessions


def _cache_file() -> Path | None:
    try:
        from importlib.metadata import version

        xcals_version = version("exchange_calendars")
    except Exception:
        return None
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "hybrid"
    today = pd.Timestamp.today()
    return base / f"xnys-sessions-{xcals_version}-{CAL_START}-{today:%Y-%m}.npy"


def nyse_sessions(start: pd.Timestamp | str | None = None,
                  end: pd.Timestamp | str | None = None) -> pd.DatetimeIndex:
    """NYSE sessions in [start, end], tz-naive normalised dates."""
    sessions = _all_sessions()
    lo = 0 if start is None else sessions.searchsorted(pd.Timestamp(start), side="left")
    hi = len(sessions) if end is None else sessions.searchsorted(pd.Timestamp(end), side="right")
    return sessions[lo:hi]


def is_nyse_session(day: pd.Timestamp | str) -> bool:
    """True if ``day`` is an NYSE session."""
    day = pd.Timestamp(day).normalize()
    return bool(len(nyse_sessions(day, day)))


def last_sessions_of_weeks(sessions: pd.DatetimeIndex) -> pd.DatetimeIndex:
    """The last session of each ISO week among ``sessions`` (Thursday when Friday is a holiday).

    ISO weeks run from Monday to Sunday, so a session is its week's last when the next one falls
    in a later week (week numbers from day numbers: no calendar table, a few microseconds)."""
    if len(sessions) == 0:
        return pd.DatetimeIndex([])
    days = np.unique(np.asarray(sessions, dtype="datetime64[ns]"))
    week = (days.astype("datetime64[D]").astype(np.int64) + 3) // 7  # 1970-01-01 is a Thursday
    return pd.DatetimeIndex(days[np.append(week[1:] != week[:-1], True)])


def nyse_week_end_sessions(start: pd.Timestamp | str, end: pd.Timestamp | str) -> pd.DatetimeIndex:
    """Last NYSE session of each ISO week touching [start, end], from the full calendar.

    Uses the calendar beyond ``end`` so that a week cut by ``end`` still ends on its true
    last session (no dependence on where the data stops).
    """
    start_ts = pd.Timestamp(start) - pd.Timedelta(days=7)
    end_ts = pd.Timestamp(end) + pd.Timedelta(days=7)
    weekly = last_sessions_of_weeks(nyse_sessions(start_ts, end_ts))
    return weekly[(weekly >= pd.Timestamp(start)) & (weekly <= pd.Timestamp(end))]


def crypto_days(start: pd.Timestamp | str, end: pd.Timestamp | str) -> pd.DatetimeIndex:
    """Every UTC calendar day in [start, end] (crypto trades 24/7)."""
    return pd.date_range(pd.Timestamp(start).normalize(), pd.Timestamp(end).normalize(), freq="D")
