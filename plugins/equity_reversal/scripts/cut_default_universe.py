"""Write the default universe (S&P 500 constituents, April 2021) from the shared data set.

Usage: python plugins/equity_reversal/scripts/cut_default_universe.py [path/to/sp500_constituents.csv]
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_SOURCE = HERE.parents[2].parent / "shared" / "data" / "sp500_constituents.csv"
TARGET = HERE.parent / "src" / "hybrid_equity_reversal" / "sp500_constituents.txt"


def main() -> None:
    """Read the constituents CSV (Symbol, Name, Sector) and write one symbol a line, sorted."""
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_SOURCE
    with source.open(newline="") as handle:
        symbols = sorted({row["Symbol"].strip() for row in csv.DictReader(handle) if row["Symbol"].strip()})
    header = f"# S&P 500 constituents, April 2021 ({len(symbols)} symbols), cut from {source.name}\n"
    TARGET.write_text(header + "\n".join(symbols) + "\n")
    print(f"wrote {len(symbols)} symbols to {TARGET}")


if __name__ == "__main__":
    main()
