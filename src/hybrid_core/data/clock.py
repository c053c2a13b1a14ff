"""When is a daily bar final, and which bar should exist by now.

``settled_through(symbol, now)`` is the last date whose daily bar is final at ``now``;
``expected_last_bar(symbol, now, lag)`` is the bar date a fresh data set must reach: the last
NYSE session (equities, :func:`hybrid_core.calendars.nyse_sessions`) or UTC day (crypto)
that is settled, ``lag`` sessions earlier if allowed. Naive timestamps are taken to be UTC.
"""

from __future__ import annotations

import pandas as pd

from ..calendars import nyse_sessions
from ..contracts import is_crypto

NY = "America/New_York"
ONE_DAY = pd.Timedelta(days=1)


def utc_now() -> pd.Timestamp:
    """The current time, tz-aware UTC."""
    return pd.Timestamp.now(tz="UTC")


def as_utc(now: pd.Timestamp | str) -> pd.Timestamp:
    """``now`` as tz-aware UTC (a naive timestamp is taken to be UTC)."""
    now = pd.Timestamp(now)
    return now.tz_localize("UTC") if now.tzinfo is None else now.tz_convert("UTC")


def settled_through(symbol: str, now: pd.Timestamp, settle_minutes: int = 30) -> pd.Timestamp:
    """The last calendar date whose daily bar is final at ``now``.

    Crypto: the previous UTC day (today's is still trading). Equities: today (New York) once
    ``settle_minutes`` have passed after the 16:00 close, else yesterday.
    """
    now_utc = as_utc(now)
    if is_crypto(symbol):
        return now_utc.tz_localize(None).normalize() - ONE_DAY
    ny = now_utc.tz_convert(NY)
    today = ny.tz_localize(None).normalize()
    closed = ny.hour * 60 + ny.minute >= 16 * 60 + settle_minutes
    return today if closed else today - ONE_DAY


def expected_last_bar(symbol: str, now: pd.Timestamp, lag: int = 0, settle_minutes: int = 30
                      ) -> pd.Timestamp:
    """The date of the newest bar ``symbol`` must have at ``now`` (``lag`` bars of slack)."""
    through = settled_through(symbol, now, settle_minutes)
    if is_crypto(symbol):
        return through - lag * ONE_DAY
    sessions = nyse_sessions(through - pd.Timedelta(days=14 + 2 * lag), through)
    return pd.Timestamp(sessions[-1 - lag])
