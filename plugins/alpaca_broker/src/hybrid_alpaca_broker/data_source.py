"""The ``alpaca`` data source: daily bars from Alpaca's market-data API via alpaca-py.

Equities come from ``StockHistoricalDataClient`` (``GET /v2/stocks/bars``, feed ``iex`` by
default, adjustment ``all`` so prices are already split- and dividend-adjusted), crypto from
``CryptoHistoricalDataClient`` (``GET /v1beta3/crypto/us/bars``, no keys needed). alpaca-py
follows ``next_page_token``. Bars become the canonical long frame; equity dates are the New
York session date, crypto dates the UTC day.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal

import attrs
import pandas as pd
from loguru import logger

from hybrid_core.contracts import BAR_COLUMNS, DataSource, is_crypto
from hybrid_core.errors import DataError

from .credentials import base_url, read_keys, url_mode

if TYPE_CHECKING:  # alpaca-py is imported on use: importing it costs about 0.5 s
    from alpaca.data.historical.crypto import CryptoHistoricalDataClient
    from alpaca.data.historical.stock import StockHistoricalDataClient
from .http import RetryBudget, close_sdk_client, describe_failure, harden_sdk_client

COLUMNS = ["symbol", "date", *BAR_COLUMNS]


@attrs.define
class AlpacaDataParams:
    """Parameters of the ``alpaca`` data source (profile ``data.params``)."""

    api_key_env: str = "ALPACA_API_KEY"
    secret_key_env: str = "ALPACA_SECRET_KEY"
    base_url: str | None = None
    """url_override for both data clients (a local server); None: ``$ALPACA_BASE_URL``, else
    data.alpaca.markets (also when that variable holds Alpaca's own trading URL)."""
    feed: Literal["iex", "sip"] = attrs.field(default="iex", validator=attrs.validators.in_(("iex", "sip")))
    adjustment: Literal["all", "split", "dividend", "raw"] = attrs.field(
        default="all", validator=attrs.validators.in_(("all", "split", "dividend", "raw")))
    missing: Literal["skip", "error"] = attrs.field(
        default="skip", validator=attrs.validators.in_(("skip", "error")))
    """What to do when some requested symbols return no bars: log and skip, or raise DataError."""
    drop_incomplete: bool = True
    """Drop bars still in progress: today's equity bar before 16:00 New York, today's UTC crypto bar."""
    default_start: str = "2016-01-01"
    timeout: float = 30.0
    retry_budget: float = 60.0
    """Seconds that failed requests and their retries may take in total, per fetch."""
    backoff: float = 1.0


class AlpacaDataSource(DataSource):
    """Daily bars for equities (iex feed, all-adjusted) and crypto from Alpaca's data API."""

    name = "alpaca"
    Params = AlpacaDataParams

    def __init__(self, params: AlpacaDataParams | None = None) -> None:
        super().__init__(params)
        self._budget = RetryBudget(self.params.retry_budget, self.params.backoff)
        url = base_url(self.params.base_url)
        self.url = None if url is None or url_mode(url) is not None else url
        """url_override of the data clients: a local or proxy server, None for Alpaca's data URL."""
        self.clock: Callable[[], pd.Timestamp] = lambda: pd.Timestamp.now("UTC")
        """Wall clock (UTC) used to tell finished bars from bars in progress."""
        self._stock: StockHistoricalDataClient | None = None
        self._crypto: CryptoHistoricalDataClient | None = None

    def _stock_client(self) -> StockHistoricalDataClient:
        if self._stock is None:
            try:
                key, secret = read_keys(self.params.api_key_env, self.params.secret_key_env)
            except Exception as exc:
                raise DataError(f"alpaca stock bars need keys: {exc}") from None
            from alpaca.data.historical.stock import StockHistoricalDataClient

            client = StockHistoricalDataClient(key, secret, url_override=self.url)
            self._stock = harden_sdk_client(client, self.params.timeout)
        return self._stock

    def _crypto_client(self) -> CryptoHistoricalDataClient:
        if self._crypto is None:
            key, secret = read_keys(self.params.api_key_env, self.params.secret_key_env, required=False)
            if not (key and secret):
                key = secret = None
            from alpaca.data.historical.crypto import CryptoHistoricalDataClient

            client = CryptoHistoricalDataClient(key, secret, url_override=self.url)
            self._crypto = harden_sdk_client(client, self.params.timeout)
        return self._crypto

    def close(self) -> None:
        """Close the HTTP sessions."""
        for client in (self._stock, self._crypto):
            if client is not None:
                close_sdk_client(client)

    def fetch(self, symbols: Sequence[str], start: pd.Timestamp | None,
              end: pd.Timestamp | None) -> pd.DataFrame:
        """Daily bars for ``symbols`` between ``start`` and ``end`` (inclusive) as the canonical frame."""
        symbols = list(dict.fromkeys(symbols))
        self._budget.renew()
        if not symbols:
            return pd.DataFrame(columns=COLUMNS)
        first = pd.Timestamp(start if start is not None else self.params.default_start).normalize()
        today = pd.Timestamp.now("UTC").tz_localize(None)
        last = (pd.Timestamp(end) if end is not None else today).normalize()
        window = (first.to_pydatetime(), (last + pd.Timedelta(days=1)).to_pydatetime())
        equities = [s for s in symbols if not is_crypto(s)]
        cryptos = [s for s in symbols if is_crypto(s)]
        parts = []
        if equities:
            parts.append(self._fetch_group(equities, window, crypto=False))
        if cryptos:
            parts.append(self._fetch_group(cryptos, window, crypto=True))
        bars = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=COLUMNS)
        bars = bars[(bars["date"] >= first) & (bars["date"] <= last)]
        if self.params.drop_incomplete:
            bars = self._drop_in_progress(bars)
        bars = bars.sort_values(["symbol", "date"]).drop_duplicates(["symbol", "date"], keep="last")
        bars = bars.reset_index(drop=True)
        self._check_missing(symbols, bars, first, last)
        return bars

    def _fetch_group(self, symbols: list[str], window: tuple[Any, Any], *, crypto: bool) -> pd.DataFrame:
        from alpaca.data.enums import Adjustment, DataFeed
        from alpaca.data.requests import CryptoBarsRequest, StockBarsRequest
        from alpaca.data.timeframe import TimeFrame

        if crypto:
            client: Any = self._crypto_client()
            req: Any = CryptoBarsRequest(symbol_or_symbols=symbols, timeframe=TimeFrame.Day,
                                         start=window[0], end=window[1])
            call, path = (lambda: client.get_crypto_bars(req)), "/v1beta3/crypto/us/bars"
        else:
            client = self._stock_client()
            req = StockBarsRequest(symbol_or_symbols=symbols, timeframe=TimeFrame.Day, start=window[0],
                                   end=window[1], adjustment=Adjustment(self.params.adjustment),
                                   feed=DataFeed(self.params.feed))
            call, path = (lambda: client.get_stock_bars(req)), "/v2/stocks/bars"
        try:
            barset = self._budget.call(f"GET {path}", call)
        except Exception as exc:
            raise DataError(f"alpaca bars for {', '.join(symbols)} failed: {describe_failure(exc)}") from exc
        return bars_to_long(barset.data, tz="UTC" if crypto else "America/New_York")

    def _drop_in_progress(self, bars: pd.DataFrame) -> pd.DataFrame:
        """Bars whose period has not ended yet (a live cycle must not decide on a partial bar)."""
        now = self.clock()
        now = now.tz_localize("UTC") if now.tzinfo is None else now.tz_convert("UTC")
        ny = now.tz_convert("America/New_York")
        equity_done = ny.normalize().tz_localize(None) - pd.Timedelta(days=0 if ny.hour >= 16 else 1)
        crypto_done = now.normalize().tz_localize(None) - pd.Timedelta(days=1)
        crypto = bars["symbol"].str.contains("/", regex=False)
        keep = (crypto & (bars["date"] <= crypto_done)) | (~crypto & (bars["date"] <= equity_done))
        if not keep.all():
            dropped = bars.loc[~keep, ["symbol", "date"]]
            logger.info("alpaca data: {n} bar(s) still in progress dropped ({symbols} on {dates})",
                        n=len(dropped), symbols=", ".join(sorted(set(dropped["symbol"])))[:120],
                        dates=", ".join(sorted({str(d.date()) for d in dropped["date"]})))
        return bars[keep].reset_index(drop=True)

    def _check_missing(self, symbols: list[str], bars: pd.DataFrame, first: pd.Timestamp,
                       last: pd.Timestamp) -> None:
        found = set(bars["symbol"].unique())
        missing = [s for s in symbols if s not in found]
        span = f"{first.date()}..{last.date()}"
        if len(missing) == len(symbols):
            raise DataError(f"alpaca returned no bars for {', '.join(missing)} in {span}; check the "
                            f"symbols (crypto as BTC/USD) and the dates")
        if missing:
            message = f"alpaca returned no bars for {', '.join(missing)} in {span}"
            if self.params.missing == "error":
                raise DataError(f"{message} (data.params.missing=error; use skip to go on without them)")
            logger.warning("{message}; skipped", message=message)


def bars_to_long(data: dict[str, list[Any]], *, tz: str) -> pd.DataFrame:
    """alpaca-py ``BarSet.data`` -> canonical long frame (dates in ``tz``, tz-naive, normalised)."""
    rows = [(sym, bar.timestamp, bar.open, bar.high, bar.low, bar.close, bar.volume)
            for sym, bars in data.items() for bar in bars]
    if not rows:
        return pd.DataFrame(columns=COLUMNS)
    frame = pd.DataFrame(rows, columns=["symbol", "timestamp", *BAR_COLUMNS])
    stamps = pd.to_datetime(frame.pop("timestamp"), utc=True)
    frame.insert(1, "date", stamps.dt.tz_convert(tz).dt.tz_localize(None).dt.normalize())
    frame[list(BAR_COLUMNS)] = frame[list(BAR_COLUMNS)].astype("float64")
    frame["symbol"] = frame["symbol"].astype(str)
    positive = (frame[["open", "high", "low", "close"]] > 0).all(axis=1)
    return frame[positive]
