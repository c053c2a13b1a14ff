"""signals() speed on the backtest's largest case: 504 equities x 21 years, BTC/ETH x 7 years."""

from __future__ import annotations

import time

import pandas as pd
import pytest
from hybrid_crypto_adx import CryptoAdxReversion
from hybrid_equity_reversal import EquityReversal

from hybrid_core.builtin.local_data import LocalBars
from hybrid_core.contracts import Panel
from hybrid_core.testing import shared_data_dir

DATA = shared_data_dir()
BUDGET_SECONDS = 0.3


def best_of(runs: int, call) -> float:  # type: ignore[no-untyped-def]
    """Fastest wall time of ``runs`` calls (the machine has 2 busy cores)."""
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        timings.append(time.perf_counter() - started)
    return min(timings)


@pytest.mark.slow
def test_signals_over_the_whole_history_fit_the_backtest_budget():
    files = [str(DATA / "sp500_daily.parquet"), str(DATA / "crypto_daily.parquet")]
    symbols = sorted(pd.read_parquet(files[0], columns=["symbol"])["symbol"].unique())
    panel = Panel.from_long(LocalBars(LocalBars.Params(path=files)).fetch(symbols + ["BTC/USD", "ETH/USD"],
                                                                          None, None))
    assert len(symbols) == 504 and len(panel.dates) > 6000
    equity, crypto = EquityReversal(universe=symbols), CryptoAdxReversion()
    equity.signals(panel)  # builds the cached NYSE calendar once, as any run does
    equity_seconds = best_of(3, lambda: equity.signals(panel))
    crypto_seconds = best_of(3, lambda: crypto.signals(panel))
    print(f"equity_reversal 504 x {len(panel.dates)}: {equity_seconds:.3f} s; "
          f"crypto_adx: {crypto_seconds:.3f} s")
    assert equity_seconds < BUDGET_SECONDS
    assert crypto_seconds < BUDGET_SECONDS / 10
