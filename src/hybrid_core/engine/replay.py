"""Replay: the real live cycle driven over history with a simulated clock.

``hybrid replay`` runs :class:`~hybrid_core.engine.cycle.TradingCycle` once per session
(NYSE sessions and, for crypto, every UTC day) over a historical window. The cycle at the
close of a session sees only bars up to that session; the profile's broker (the paper
simulator, or any broker that can fill from history) executes at the next open. Because the
state database remembers the last completed session, a replay that is killed and started
again resumes where it stopped; deterministic order ids make sure nothing is sent twice.

:func:`replay_trades` turns the state database into round trips comparable with the
backtester's, and :func:`compare_trades` finds the first decision where the two differ.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from typing import Any

import attrs
import pandas as pd

from ..contracts import Panel
from ..ops.state import StateStore
from .backtest import TRADE_COLUMNS
from .backtest import load_window as load_backtest_window
from .runner import RunSession


@attrs.define
class ReplayResult:
    """What a replay did: sessions run (and skipped because already done), and the trades."""

    sessions: list[pd.Timestamp]
    skipped: int
    trades: pd.DataFrame
    panel: Panel


def load_window(session: RunSession, start: pd.Timestamp, end: pd.Timestamp) -> Panel:
    """Bars of the profile's universe from ``start`` to ``end`` (no warm-up before ``start``)."""
    return load_backtest_window(session.components.data_source, session.components.strategies, start, end)


def replay(session: RunSession, start: pd.Timestamp, end: pd.Timestamp, *,
           progress: bool | None = None, stop: Any = None) -> ReplayResult:
    """Run one live cycle per session of [start, end]; resume after the last completed session."""
    panel = load_window(session, start, end)
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
    ran = []
    for day in iterator:
        if stop is not None and stop.is_set:
            break
        session.cycle.run(day, panel_until(panel, day))
        ran.append(day)
    trades = replay_trades(session.state, panel, end)
    return ReplayResult(sessions=ran, skipped=skipped, trades=trades, panel=panel)


def panel_until(panel: Panel, day: pd.Timestamp) -> Panel:
    """The panel as the cycle at the close of ``day`` may see it."""
    cut = panel.close.index.searchsorted(day, side="right")
    return Panel(*(getattr(panel, name).iloc[:cut] for name in ("open", "high", "low", "close", "volume")))


def replay_trades(state: StateStore, panel: Panel, end: pd.Timestamp) -> pd.DataFrame:
    """Round trips from the state database's filled orders; open positions marked ``end_of_data``."""
    open_lots: dict[str, dict[str, Any]] = {}
    rows: list[dict[str, Any]] = []
    filled = [o for o in state.orders() if o.status == "filled"]
    filled.sort(key=lambda o: (str(o.filled_at), 0 if o.side == "sell" else 1))
    for order in filled:
        price = float(order.filled_avg_price or math.nan)
        when = pd.Timestamp(order.filled_at).tz_localize(None).normalize() if pd.Timestamp(
            order.filled_at).tzinfo else pd.Timestamp(order.filled_at).normalize()
        if order.side == "buy":
            open_lots[order.symbol] = {"symbol": order.symbol, "entry_date": when, "entry_price": price,
                                       "qty": float(order.filled_qty), "strategy": order.strategy or ""}
            continue
        lot = open_lots.pop(order.symbol, None)
        if lot is None:
            continue
        reason = "stop_loss" if order.order_type != "market" else (order.reason or "signal")
        rows.append({**lot, "exit_date": when, "exit_price": price, "exit_reason": reason})
    closes = panel.close.loc[:end]
    for sym, lot in open_lots.items():
        series = closes[sym].dropna() if sym in closes.columns else pd.Series(dtype="float64")
        last_date = series.index[-1] if len(series) else lot["entry_date"]
        last_close = float(series.iloc[-1]) if len(series) else lot["entry_price"]
        rows.append({**lot, "exit_date": last_date, "exit_price": last_close, "exit_reason": "end_of_data"})
    frame = pd.DataFrame(rows, columns=[c for c in TRADE_COLUMNS if c not in {"pnl", "return"}])
    frame["pnl"] = (frame["exit_price"] - frame["entry_price"]) * frame["qty"]
    frame["return"] = frame["pnl"] / (frame["entry_price"] * frame["qty"])
    frame = frame[TRADE_COLUMNS]
    return frame.sort_values(["entry_date", "symbol", "exit_date"], kind="stable", ignore_index=True)


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


def signal_numbers(strategies: Sequence[Any], panel: Panel, symbol: str, date: pd.Timestamp) -> dict[str, Any]:
    """The numbers behind the decision on ``symbol`` at ``date`` (the close before an entry)."""
    for strategy in strategies:
        if symbol not in strategy.universe:
            continue
        sub = panel.select(strategy.universe, end=date)
        if not len(sub.dates):
            continue
        row = strategy.signals(sub).row(sub.dates[-1])
        return {"strategy": strategy.name, "decision_date": str(sub.dates[-1].date()),
                **{k: v for k, v in row.info.get(symbol, {}).items()},
                "entry": symbol in row.entries, "exit": symbol in row.exits}
    return {}
