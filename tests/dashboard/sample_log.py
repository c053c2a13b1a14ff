"""A realistic small trade log with hand-worked expected numbers (not produced by the code).

Filled trades (FIFO per symbol):

  AAPL  buy 10 @ 100, buy 10 @ 110, sell 15 @ 120  -> 10*(120-100) + 5*(120-110) = +250
        sell 5 @ 105 against the 5 left @ 110       -> 5*(105-110)                 =  -25
  MSFT  buy 5 @ 400, sell 5 @ 380                   -> 5*(380-400)                 = -100
  BTC/USD buy 0.5 @ 40000, sell 0.2 @ 45000         -> 0.2*(45000-40000)           = +1000
        0.3 left @ 40000, last log price 42000      -> unrealised 0.3*2000         = +600
  ETH/USD buy 2.5 @ 3000, sell 2.5 @ 2900           -> 2.5*(2900-3000)             = -250

Realised 875 over 5 round trips, 2 wins (win rate 0.4), 10 fills, 4 symbols,
volume 1000+2000+20000+1100+1800+1900+9000+7500+7250+525 = 52075.
"""

from __future__ import annotations

import csv
from pathlib import Path

COLUMNS = ["timestamp", "symbol", "side", "qty", "price", "order_id", "status", "client_order_id",
           "strategy", "reason", "signal"]

EXPECTED = {
    "realised_pnl": 875.0,
    "unrealised_pnl": 600.0,
    "win_rate": 0.4,
    "trades": 10,
    "round_trips": 5,
    "wins": 2,
    "symbols": ["AAPL", "BTC/USD", "ETH/USD", "MSFT"],
    "volume": 52075.0,
    "by_symbol": {  # pnl, round trips, wins, fills, volume
        "AAPL": (225.0, 2, 1, 4, 4425.0),
        "BTC/USD": (1000.0, 1, 1, 2, 29000.0),
        "ETH/USD": (-250.0, 1, 0, 2, 14750.0),
        "MSFT": (-100.0, 1, 0, 2, 3900.0),
    },
    "by_strategy": {
        "crypto_adx": (750.0, 2, 1, 4, 43750.0),
        "equity_reversal": (125.0, 3, 1, 6, 8325.0),
    },
    "cumulative": [250.0, 150.0, 1150.0, 900.0, 875.0],
}

ER, CA = "equity_reversal", "crypto_adx"
# (day, hh:mm, symbol, side, qty, price, strategy, reason)
_FILLS = [
    ("2026-01-05", "21:10", "AAPL", "buy", "10", "100", ER, "signal"),
    ("2026-01-05", "21:10", "MSFT", "buy", "5", "400", ER, "signal"),
    ("2026-01-06", "00:05", "BTC/USD", "buy", "0.5", "40000", CA, "signal"),
    ("2026-01-07", "21:10", "AAPL", "buy", "10", "110", ER, "signal"),
    ("2026-01-08", "21:10", "AAPL", "sell", "15", "120", ER, "rebalance"),
    ("2026-01-09", "21:10", "MSFT", "sell", "5", "380", ER, "stop_loss"),
    ("2026-01-10", "00:05", "BTC/USD", "sell", "0.2", "45000", CA, "signal"),
    ("2026-01-11", "00:05", "ETH/USD", "buy", "2.5", "3000", CA, "signal"),
    ("2026-01-12", "00:05", "ETH/USD", "sell", "2.5", "2900", CA, "time_stop"),
    ("2026-01-13", "21:10", "AAPL", "sell", "5", "105", ER, "rebalance"),
]


def sample_rows() -> list[dict[str, str]]:
    """Every order event: a submitted row then a filled row per trade, plus non-filled events."""
    rows: list[dict[str, str]] = []
    for i, (day, hhmm, symbol, side, qty, price, strategy, reason) in enumerate(_FILLS, start=1):
        coid = f"{strategy[:2]}-{day.replace('-', '')}-{symbol.replace('/', '')}-{side}"
        base = {"symbol": symbol, "side": side, "qty": qty, "price": price, "client_order_id": coid,
                "strategy": strategy, "reason": reason, "signal": '{"z":-1.8,"rsi":22.5}'}
        rows.append({**base, "timestamp": f"{day}T{hhmm}:00Z", "order_id": "", "status": "submitted"})
        rows.append({**base, "timestamp": f"{day}T{hhmm}:30Z", "order_id": f"ord-{i:03d}",
                     "status": "filled"})
    extra = [
        ("2026-01-06T21:10:00Z", "MSFT", "buy", "3", "395", "canceled", ER),
        ("2026-01-07T21:10:00Z", "NVDA", "buy", "100", "900", "refused", ER),
        ("2026-01-08T21:10:00Z", "TSLA", "sell", "4", "250", "rejected", ER),
        ("2026-01-13T21:10:00Z", "AMD", "buy", "20", "150", "dry_run", ER),
        ("2026-01-14T00:05:00Z", "BTC/USD", "sell", "0.3", "42000", "canceled", CA),
    ]
    for ts, symbol, side, qty, price, status, strategy in extra:
        rows.append({"timestamp": ts, "symbol": symbol, "side": side, "qty": qty, "price": price,
                     "order_id": "", "status": status, "client_order_id": f"x-{ts[:10]}-{symbol}",
                     "strategy": strategy, "reason": "signal", "signal": "{}"})
    return sorted(rows, key=lambda r: r["timestamp"])


def write_log(path: Path, rows: list[dict[str, str]] | None = None, extra_lines: str = "") -> Path:
    """Write ``rows`` (default: the sample) as a trade log CSV, then any raw ``extra_lines``."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(sample_rows() if rows is None else rows)
        handle.write(extra_lines)
    return path


if __name__ == "__main__":  # python tests/dashboard/sample_log.py out.csv
    import sys

    print(write_log(Path(sys.argv[1] if len(sys.argv) > 1 else "sample_trades.csv")))
