"""The sample bundled with hybrid, as package data: real daily bars, no shared data or network.

- ``bars.parquet``: 40 S&P 500 equities plus BTC/USD and ETH/USD, 2020-01-02..2021-04-21, in the
  long format of the shared files (``symbol, date, open, high, low, close, adj_close, volume``;
  raw OHLC, adjusted on reading). Cut from ``../shared/data`` by ``scripts/make_sample.py``.
- ``universe_equities.txt``: the 40 equities, one a line.

The files are read through :mod:`importlib.resources`, so they are found wherever hybrid-core is
installed (a wheel in a virtual environment, or an editable source checkout). Plugin tests use
them through :func:`hybrid_core.testing.sample_panel`; profiles through the ``sample`` data source.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from ..errors import DataError

BARS = "bars.parquet"
EQUITY_UNIVERSE = "universe_equities.txt"


def sample_file(name: str) -> Path:
    """The path of one file of the sample (``bars.parquet``, ``universe_equities.txt``)."""
    path = Path(str(files(__name__).joinpath(name)))
    if not path.is_file():
        raise DataError(f"the sample file {name} is missing from the installed hybrid-core at {path.parent}; "
                        f"reinstall hybrid-core from a wheel or a source checkout")
    return path


def bars_path() -> Path:
    """The sample's bar file (Parquet, long format)."""
    return sample_file(BARS)


def equity_universe() -> list[str]:
    """The sample's 40 equities."""
    return [line.strip() for line in sample_file(EQUITY_UNIVERSE).read_text().splitlines() if line.strip()]
