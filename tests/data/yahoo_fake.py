"""A recorded-shape stand-in for Yahoo's v8 chart API, served to the real yfinance parser.

``FakeYahoo(bars).install(monkeypatch)`` replaces ``yfinance.data.YfData.get`` and
``cache_get``: each chart request is answered with Yahoo v8 chart JSON built from the raw
bars (``symbol, date, open, high, low, close, adj_close, volume``, hybrid symbols) that fall in
``[period1, period2)``; an unknown ticker gets Yahoo's "Not Found" error body. Every request is
recorded in ``requests`` as ``(ticker, params)``.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pandas as pd

from hybrid_core.data.symbols import from_yahoo

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "bars_small.parquet"
VALID_RANGES = ["1d", "5d", "1mo", "3mo", "6mo", "1y", "2y", "5y", "10y", "ytd", "max"]


class FakeResponse:
    """The parts of a curl_cffi response that yfinance reads."""

    def __init__(self, payload: dict, status_code: int = 200) -> None:
        self.status_code = status_code
        self.text = json.dumps(payload)

    def json(self) -> dict:
        return json.loads(self.text)

    def raise_for_status(self) -> None:
        """Yahoo's error bodies are JSON that yfinance parses itself."""


def _series(values: pd.Series) -> list:
    return [None if pd.isna(v) else float(v) for v in values]


class FakeYahoo:
    """Serves chart JSON for the bars it holds; ``bars`` may be replaced between calls."""

    def __init__(self, bars: pd.DataFrame | None = None, hang_s: float = 0.0) -> None:
        self._by_symbol: dict[str, pd.DataFrame] = {}
        self.bars = bars if bars is not None else pd.read_parquet(FIXTURE)
        self.requests: list[tuple[str, dict]] = []
        self.hang_s = hang_s
        self.release = threading.Event()
        """Set it to end a hang early (so no abandoned thread outlives the test's patches)."""
        self._lock = threading.Lock()

    @property
    def bars(self) -> pd.DataFrame:
        """The raw bars served (replace them to simulate a change at the source)."""
        return self._bars

    @bars.setter
    def bars(self, value: pd.DataFrame) -> None:
        self._bars = value
        self._by_symbol = {str(s): rows for s, rows in value.groupby("symbol", sort=False)}

    @property
    def history_requests(self) -> list[tuple[str, dict]]:
        """Chart requests for a date range (not the 1-day timezone probes)."""
        return [r for r in self.requests if "period1" in r[1]]

    def install(self, monkeypatch) -> FakeYahoo:  # type: ignore[no-untyped-def]
        import yfinance.cache
        import yfinance.data

        fake = self

        def get(self, url, params=None, timeout=30):  # type: ignore[no-untyped-def]
            return fake.answer(url, params or {})

        def no_network(self, url, *args, **kwargs):  # type: ignore[no-untyped-def]
            raise AssertionError(f"test tried to reach the network: {url}")

        monkeypatch.setattr(yfinance.data.YfData, "get", get)
        monkeypatch.setattr(yfinance.data.YfData, "cache_get", get)
        monkeypatch.setattr(yfinance.data.YfData, "_make_request", no_network)
        # yfinance's own time-zone cache is a SQLite file its download threads share; under CI load
        # a thread's write timed out ("database is locked") and that symbol's download failed. It
        # is yfinance's memo of each ticker's zone, not hybrid's: the fake answers the zone instead.
        monkeypatch.setattr(yfinance.cache._TzCacheManager, "_tz_cache", yfinance.cache._TzCacheDummy())
        return self

    def answer(self, url: str, params: dict) -> FakeResponse:
        ticker = url.rstrip("/").rsplit("/", 1)[-1]
        with self._lock:
            self.requests.append((ticker, dict(params)))
        if self.hang_s:
            self.release.wait(self.hang_s)
        if "/v8/finance/chart/" not in url:
            return FakeResponse({"finance": {"result": None, "error": {"code": "Not Found"}}}, 404)
        symbol = from_yahoo(ticker)
        rows = self._by_symbol.get(symbol)
        if rows is None or rows.empty:
            return FakeResponse({"chart": {"result": None, "error": {
                "code": "Not Found", "description": "No data found, symbol may be delisted"}}}, 404)
        crypto = "/" in symbol
        tz = "UTC" if crypto else "America/New_York"
        stamps = pd.DatetimeIndex(rows["date"])
        stamps = (stamps.tz_localize("UTC") if crypto
                  else (stamps + pd.Timedelta(hours=9, minutes=30)).tz_localize(tz).tz_convert("UTC"))
        epoch = (stamps.as_unit("s").asi8).astype("int64")
        if "period1" in params:
            keep = (epoch >= int(params["period1"])) & (epoch < int(params["period2"]))
        else:  # range=1d: the last bar only
            keep = epoch == epoch.max()
        rows, epoch = rows[keep], epoch[keep]
        meta = {"currency": "USD", "symbol": ticker, "exchangeName": "CCC" if crypto else "NMS",
                "instrumentType": "CRYPTOCURRENCY" if crypto else "EQUITY",
                "gmtoffset": 0 if crypto else -14400, "timezone": "UTC" if crypto else "EDT",
                "exchangeTimezoneName": tz, "dataGranularity": "1d", "range": "",
                "validRanges": VALID_RANGES}
        result: dict = {"meta": meta}
        if len(rows):
            result["timestamp"] = [int(t) for t in epoch]
            result["indicators"] = {
                "quote": [{"open": _series(rows["open"]), "high": _series(rows["high"]),
                           "low": _series(rows["low"]), "close": _series(rows["close"]),
                           "volume": _series(rows["volume"])}],
                "adjclose": [{"adjclose": _series(rows["adj_close"])}]}
        else:
            result["indicators"] = {"quote": [{}], "adjclose": [{}]}
        return FakeResponse({"chart": {"result": [result], "error": None}})
