"""Cut the bundled offline sample (src/hybrid_core/sample/bars.parquet, package data) from ../shared/data.

Run from the repository root: ``python scripts/make_sample.py``. The sample holds real
daily bars of 40 S&P 500 equities plus BTC/USD and ETH/USD, 2020-01-02 .. 2021-04-21, in the
same long format as the shared files (raw OHLC + adj_close), well under 2 MB.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
OUT = ROOT / "src" / "hybrid_core" / "sample" / "bars.parquet"
START, END = "2020-01-02", "2021-04-21"
EQUITIES = [
    "AAPL", "ABBV", "ADBE", "AMD", "AMZN", "BA", "BAC", "C", "CARR", "CAT", "CSCO", "CVX", "DIS",
    "F", "GE", "GM", "GOOGL", "HAL", "INTC", "JNJ", "JPM", "KO", "MCD", "MRK", "MSFT", "FB",
    "NFLX", "NVDA", "OTIS", "OXY", "PFE", "PG", "SLB", "T", "TSLA", "UNH", "V", "WFC", "WMT", "XOM",
]
CRYPTO = ["BTC/USD", "ETH/USD"]


def main() -> None:
    eq = pd.read_parquet(SHARED / "sp500_daily.parquet",
                         filters=[("date", ">=", pd.Timestamp(START)), ("date", "<=", pd.Timestamp(END))])
    known = set(eq["symbol"].unique())
    symbols = [s for s in EQUITIES if s in known]
    eq = eq[eq["symbol"].isin(symbols)]
    cr = pd.read_parquet(SHARED / "crypto_daily.parquet",
                         filters=[("date", ">=", pd.Timestamp(START)), ("date", "<=", pd.Timestamp(END))])
    cr = cr[cr["symbol"].isin(CRYPTO)]
    cols = ["symbol", "date", "open", "high", "low", "close", "adj_close", "volume"]
    out = pd.concat([eq[cols], cr[cols]], ignore_index=True).sort_values(["symbol", "date"])
    out["symbol"] = out["symbol"].astype(str)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    out.to_parquet(OUT, index=False, compression="zstd")
    (OUT.parent / "universe_equities.txt").write_text("\n".join(symbols) + "\n")
    print(f"{OUT}: {len(out)} rows, {out['symbol'].nunique()} symbols, {OUT.stat().st_size / 1e3:.0f} kB")


if __name__ == "__main__":
    main()
