"""A paper run rehearsed against the local server: `hybrid run --once` session after session.

:class:`Rehearsal` moves the server's exchange to a session (:meth:`SimulatedExchange.advance`),
runs the real CLI in-process for that close, and reads back what a test or a benchmark
compares: the orders the broker holds, the audit log, the heartbeat after each cycle and the
positions left without a stop. Keys and ``ALPACA_BASE_URL`` come from the environment, as in
a real run.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from .exchange import OPEN_STATUSES
from .server import AlpacaTestServer

TERMINAL_STATES = frozenset({"filled", "canceled", "rejected", "expired"})
LIFECYCLE_DAYS = ("2021-03-25", "2021-03-26", "2021-03-27")
"""Sessions of :data:`LIFECYCLE_PROFILE` on the bundled sample bars: crypto_adx enters ETH/USD on
the first (crypto fills at once) and its 2-bar time stop exits it on the second, once its stop is
canceled; the third is for what had to wait."""
LIFECYCLE_PROFILE = """\
name: lifecycle
data: {{source: alpaca, params: {{timeout: 5}}, lookback_days: 90}}
strategies:
  - {{name: crypto_adx, allocation: 0.3, universe: [BTC/USD, ETH/USD], params: {{adx_max: 25}}}}
risk:
  - {{name: stop_loss, params: {{pct: 0.05}}}}
  - {{name: time_stop, params: {{bars: 2}}}}
broker:
  name: alpaca
  params: {{timeout: 2, backoff: {backoff}, retry_budget: {budget}, cancel_wait: 0.5}}
schedule: {{settle_seconds: {settle}}}
outputs: {{trade_log: {out}/trades.csv, health_file: {out}/hybrid.health, state_db: {out}/state/hybrid.sqlite}}
"""
"""A crypto profile that goes through an order's whole life in three sessions (format it with
``out``, ``budget``, ``settle`` and ``backoff``)."""


def hybrid(*args: str) -> int:
    """Run the real ``hybrid`` CLI in-process; returns its exit code."""
    from hybrid_core.cli import main

    try:
        main(list(args))
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


class Rehearsal:
    """One profile run session by session against one local server; ``out`` holds its outputs."""

    def __init__(self, server: AlpacaTestServer, profile: Path, out: Path) -> None:
        self.server = server
        self.exchange = server.exchange
        self.profile = profile
        self.out = out
        self.codes: list[int] = []
        self.health: list[dict[str, Any]] = []
        self.unprotected_after: list[list[str]] = []

    def cycle(self, day: str, before: Callable[[], None] | None = None, *args: str) -> int:
        """Session ``day`` happens at the server, ``before`` runs (a fault is queued), then the cycle
        at that close; returns the exit code and keeps the heartbeat and the unprotected positions."""
        self.exchange.advance(day)
        if before is not None:
            before()
        code = hybrid("run", str(self.profile), "--once", "--as-of", day, "--log-level", "WARNING", *args)
        self.codes.append(code)
        health = self.out / "hybrid.health"
        self.health.append(json.loads(health.read_text()) if health.exists() else {})
        self.unprotected_after.append(self.unprotected())
        return code

    def decisions(self) -> Counter[tuple[str, str, str, str]]:
        """What reached the broker: ``(symbol, side, type, qty)`` of every order, whatever its day."""
        return Counter((o["symbol"], o["side"], o["type"], o["qty"]) for o in self.exchange.orders)

    def events(self) -> pd.DataFrame:
        """The run's order-events audit log."""
        return pd.read_csv(self.out / "trades.csv")

    def unprotected(self) -> list[str]:
        """Positions above dust with no open sell order (a stop, or an exit on its way) at the broker."""
        found = []
        with self.exchange.lock:
            for key, pos in self.exchange.positions.items():
                asset = pos["asset"]
                if pos["qty"] < (asset.get("min_order_size") or 0):
                    continue  # dust: nothing can be sold
                if not any(o["symbol"] == asset["symbol"] and o["side"] == "sell" and o["status"] in OPEN_STATUSES
                           for o in self.exchange.orders):
                    found.append(f"{key} {pos['qty']:g}")
        return found


def lifecycle_rehearsal(root: Path, server: AlpacaTestServer, *, budget: float = 1.0, settle: float = 1.5,
                        backoff: float = 0.01) -> Rehearsal:
    """A rehearsal of :data:`LIFECYCLE_PROFILE` with its outputs in ``root/out``."""
    root.mkdir(parents=True, exist_ok=True)
    profile = root / "lifecycle.yaml"
    profile.write_text(LIFECYCLE_PROFILE.format(out=root / "out", budget=budget, settle=settle, backoff=backoff))
    return Rehearsal(server, profile, root / "out")


def doubled_terminal_states(events: pd.DataFrame) -> dict[str, list[str]]:
    """Orders of an audit log with more than one terminal state (there must be none)."""
    terminal = events[events.status.isin(TERMINAL_STATES)]
    return {str(cid): list(rows) for cid, rows in terminal.groupby("client_order_id").status if len(rows) > 1}
