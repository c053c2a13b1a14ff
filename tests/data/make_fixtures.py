"""Cut the small bar fixture of the data tests from ../shared/data (run once; output committed).

    .venv/bin/python tests/data/make_fixtures.py

Keeps raw OHLC, adj_close and volume of a few equities (AAPL split 4:1 on 2020-08-31, BRK.B
for the BRK-B spelling) and of BTC/USD, ETH/USD (with the source's real gap days in October
2020), 2020-06-01..2020-11-30.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
SHARED = HERE.parents[2] / "shared" / "data"
EQUITIES = ["AAPL", "MSFT", "BRK.B", "JPM", "XOM"]
START, END = "2020-06-01", "2020-11-30"
COLUMNS = ["symbol", "date", "open", "high", "low", "close", "adj_close", "volume"]


def main() -> None:
    """Write tests/data/fixtures/bars_small.parquet."""
    eq = pd.read_parquet(SHARED / "sp500_daily.parquet", columns=COLUMNS,
                         filters=[("symbol", "in", EQUITIES), ("date", ">=", pd.Timestamp(START)),
                                  ("date", "<=", pd.Timestamp(END))])
    cr = pd.read_parquet(SHARED / "crypto_daily.parquet", columns=COLUMNS,
                         filters=[("date", ">=", pd.Timestamp(START)), ("date", "<=", pd.Timestamp(END))])
    out = pd.concat([eq, cr], ignore_index=True).sort_values(["symbol", "date"], ignore_index=True)
    out["symbol"] = out["symbol"].astype(str)
    out.to_parquet(HERE / "fixtures" / "bars_small.parquet", index=False, compression="zstd")
    print(f"{len(out)} rows, {out['symbol'].nunique()} symbols")


if __name__ == "__main__":
    main()
