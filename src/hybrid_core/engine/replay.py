"""Replay: the real live cycle driven over history with a simulated clock.

``hybrid replay`` runs :class:`~hybrid_core.live.cycle.TradingCycle` once per session
(NYSE sessions and, for crypto, every UTC day) over a historical window. The window is loaded
once (warm-up bars before the start included, exactly those a backtest of the window loads);
the cycle at the close of a session sees only bars up to that session, and of those the
lookback window a live cycle would load then (``data.lookback_days``, raised to cover every
strategy's ``lookback()``: :meth:`~hybrid_core.live.cycle.TradingCycle.window_start`), so a
replay decides as a live run would. The profile's broker (the paper simulator, or any broker
that can fill from history) executes at the next open. Because the
state database remembers the last completed session, a replay that is killed and started
again resumes where it stopped; deterministic order ids make sure nothing is sent twice. A
replay refuses to resume into a state database made for another profile or window.

:func:`replay_round_trips` builds the round trips with the account's ledger from the state
database's fills and the last cycle's marks, and :func:`compare_trades` finds the first
decision where a replay and a backtest differ.
"""

from __future__ import annotations

import functools
import math
import sys
from collections.abc import Sequence
from typing import Any

import attrs
import pandas as pd
from loguru import logger

from ..account.decisions import decision_at
from ..account.ledger import Ledger, RoundTrip, round_trips_frame
from ..contracts import Panel
from ..data.loading import policy_for
from ..errors import HybridError
from ..live.runner import RunSession
from ..ops.state import StateStore
from .backtest import Window, load_window


@attrs.define
class ReplayResult:
    """What a replay did: sessions run (and skipped because already done), and the round trips."""

    sessions: list[pd.Timestamp]
    skipped: int
    trades: pd.DataFrame
    """The round-trip table (open positions as ``end_of_data``, marked at the last cycle's closes)."""
    panel: Panel
    start: pd.Timestamp


def replay_window(session: RunSession, start: pd.Timestamp, end: pd.Timestamp, warmup: int) -> Window:
    """Bars of the profile's universe for [start, end] and ``warmup`` sessions before (as a backtest),
    through the quality gate under the profile's policy (``refuse`` by default, as a backtest)."""
    return load_window(session.components.data_source, session.components.strategies, start, end, warmup,
                       quality=policy_for(session.profile.data.quality, live=False))


def claim_folder(state: StateStore, profile: str, start: pd.Timestamp, end: pd.Timestamp, warmup: int) -> None:
    """Tie the state database to this replay, or refuse (one line naming both) if it holds another run."""
    mine = {"profile": profile, "start": str(start.date()), "end": str(end.date()), "warmup": warmup}
    theirs = state.get_meta("replay")
    if theirs is None and state.cycle_count() == 0:
        state.set_meta({"replay": mine})
        return
    if theirs == mine:
        return
    def show(run: Any) -> str:
        if not isinstance(run, dict):
            return "a run without a replay window (a live or paper run, or an older replay)"
        return f"profile {run.get('profile')!r} {run.get('start')}..{run.get('end')} warm-up {run.get('warmup')}"
    raise HybridError(f"{state.path} holds the replay of {show(theirs)}, not of {show(mine)}; "
                      f"pass --out with a new folder (or delete that one) to replay this window")


def replay(session: RunSession, start: pd.Timestamp, end: pd.Timestamp, *, warmup: int = 0,
           progress: bool | None = None, stop: Any = None, window: Window | None = None) -> ReplayResult:
    """Run one live cycle per session of [start, end]; resume after the last completed session.

    ``window``: the bars already loaded through the quality gate (:func:`replay_window` or
    ``load_window`` with the same ``warmup``), else they are loaded here."""
    claim_folder(session.state, session.profile.name, start, end, warmup)
    window = window if window is not None else replay_window(session, start, end, warmup)
    panel = window.panel
    if window.note:
        logger.warning(window.note)
    sessions = [d for d in panel.dates if start <= d <= end]
    done = session.state.last_completed_as_of()
    skipped = 0
    if done is not None:
        before = len(sessions)
        sessions = [d for d in sessions if d > pd.Timestamp(done)]
        skipped = before - len(sessions)
    session.preflight()
    iterator: Any = sessions
    if progress is None:
        progress = sys.stderr.isatty()
    if progress:
        from tqdm import tqdm

        iterator = tqdm(sessions, desc="replay", unit="session", file=sys.stderr)
    # the cycle's symbols, chosen once: each cycle's cut of it is then a view of these columns, not
    # a copy of every field it reads (the paper sync reads opens and lows) over its whole window
    bars = panel.select(session.cycle.symbols)
    ran = []
    for day in iterator:
        if stop is not None and stop.is_set:
            break
        with session.cycle_writes():  # one commit a session (a killed replay redoes the session)
            session.cycle.run(day, bars.until(day))
        ran.append(day)
        logger.info("Replayed session {day} ({done} of {total})", day=str(day.date()),
                    done=skipped + len(ran), total=skipped + len(sessions))
    session.cycle.write_heartbeat()  # the last session's (a replay's is written once a second)
    trades = replay_round_trips(session.state)
    return ReplayResult(sessions=ran, skipped=skipped, trades=trades, panel=panel, start=window.start)


def state_ledger(state: StateStore) -> Ledger:
    """The ledger of the state database's filled orders, in fill order (sells first on a date)."""
    ledger = Ledger()
    filled = state.orders(status="filled")
    filled.sort(key=lambda o: (str(o.filled_at), 0 if o.side == "sell" else 1))
    for order in filled:
        when = _fill_day(str(order.filled_at))
        reason = order.reason or ("entry" if order.side == "buy" else "signal")
        if order.side == "sell" and order.order_type != "market":
            reason = "stop_loss"
        ledger.fill(order.symbol, order.side, float(order.filled_qty), float(order.filled_avg_price or math.nan),
                    when, strategy=order.strategy or "", reason=reason, commission=order.commission)
    return ledger


@functools.lru_cache(maxsize=4096)
def _fill_day(filled_at: str) -> pd.Timestamp:
    """The UTC day of a fill's time (remembered: a replay's fills share a few hundred days)."""
    stamp = pd.Timestamp(filled_at)
    return (stamp.tz_convert("UTC").tz_localize(None) if stamp.tzinfo else stamp).normalize()


def replay_round_trips(state: StateStore) -> pd.DataFrame:
    """Round trips from the state database's fills; open positions marked at the last cycle's closes."""
    ledger = state_ledger(state)
    _as_of, marks = state.latest_marks()
    lots = ledger.open_lots({s: c for s, (c, _d) in marks.items()},
                            {s: pd.Timestamp(d) for s, (_c, d) in marks.items()})
    trips: list[RoundTrip] = [*ledger.closed, *(lot.as_round_trip() for lot in lots)]
    return round_trips_frame(trips)


@attrs.define
class TradeDifference:
    """The first decision on which replay and backtest differ."""

    date: pd.Timestamp
    symbol: str
    replay: dict[str, Any] | None
    backtest: dict[str, Any] | None
    field: str

    def describe(self) -> str:
        """Several lines: what each side did, with the numbers."""
        def side(name: str, row: dict[str, Any] | None) -> str:
            if row is None:
                return f"  {name:<8}: no trade"
            return (f"  {name:<8}: bought {row['qty']:g} on {pd.Timestamp(row['entry_date']).date()} at "
                    f"{row['entry_price']:.10g}, exited ({row['exit_reason']}) on "
                    f"{pd.Timestamp(row['exit_date']).date()} at {row['exit_price']:.10g}")
        return "\n".join([f"first difference: {self.symbol} entered {self.date.date()} ({self.field})",
                          side("replay", self.replay), side("backtest", self.backtest)])


def compare_trades(replay: pd.DataFrame, backtest: pd.DataFrame, *, rel_tol: float = 1e-9
                   ) -> TradeDifference | None:
    """The earliest trade that differs (by entry date), or None when they match."""
    left = {(r["symbol"], pd.Timestamp(r["entry_date"])): r for r in replay.to_dict("records")}
    right = {(r["symbol"], pd.Timestamp(r["entry_date"])): r for r in backtest.to_dict("records")}
    diffs: list[TradeDifference] = []
    for key in sorted(set(left) | set(right), key=lambda k: (k[1], k[0])):
        a, b = left.get(key), right.get(key)
        if a is None or b is None:
            diffs.append(TradeDifference(key[1], key[0], a, b, "trade on one side only"))
            break
        field = _differing_field(a, b, rel_tol)
        if field:
            diffs.append(TradeDifference(key[1], key[0], a, b, field))
            break
    return diffs[0] if diffs else None


def _differing_field(a: dict[str, Any], b: dict[str, Any], rel_tol: float) -> str | None:
    for name in ("exit_reason",):
        if a[name] != b[name]:
            return name
    for name in ("exit_date",):
        if pd.Timestamp(a[name]) != pd.Timestamp(b[name]):
            return name
    for name in ("qty", "entry_price", "exit_price"):
        if not math.isclose(float(a[name]), float(b[name]), rel_tol=rel_tol, abs_tol=1e-12):
            return name
    return None


def signal_numbers(strategies: Sequence[Any], panel: Panel, symbol: str, date: pd.Timestamp,
                   start: pd.Timestamp | None = None) -> dict[str, Any]:
    """The numbers behind the decision on ``symbol`` at ``date`` (the close before an entry), from
    the bars in [start, date] (a replay's cycle: its lookback window)."""
    for strategy in strategies:
        if symbol not in strategy.universe:
            continue
        sub = panel.select(strategy.universe, end=date, start=start)
        if not len(sub.dates):
            continue
        row = decision_at(strategy.signals(sub), sub.dates[-1], strategy.name)
        return {"strategy": strategy.name, "decision_date": str(sub.dates[-1].date()),
                **{k: v for k, v in row.info.get(symbol, {}).items()},
                "entry": symbol in row.entries, "exit": symbol in row.exits}
    return {}
