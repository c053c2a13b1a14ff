"""In-memory Alpaca account for the local server: assets, orders, positions, cash, bars, clock.

It applies the Alpaca rules the plugin must respect, so breaking one fails like it would at
Alpaca: duplicate client_order_id (422), crypto tif/type/min size/increment (422), fractional
equity orders not ``day`` (422), selling more than is available, shares reserved by an open
stop included (403), buying beyond buying power (403: cash, or with a margin ``multiplier``
of 2-4 Alpaca's Reg T formula; open orders reserve none of it here). Market orders fill at
once for crypto and for equities while the clock is open, just after the POST is answered (the
answer says ``new``, as Alpaca's usually does); otherwise they wait for
:meth:`SimulatedExchange.advance` (the next bar's open). With ``fill_at_next_open`` (replaying
daily history, where a decision at the close of bar t meets the open of t+1 first) every market
order waits for the next bar, crypto included. Stops wait for a price move (:meth:`set_price`
or :meth:`advance`).
Every method returns ``(http_status, json_body)``.
"""

from __future__ import annotations

import re
import threading
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pandas as pd

EQUITY_TICKER = re.compile(r"[A-Z]{1,5}(\.[A-Z])?")
OPEN_STATUSES = frozenset({"new", "accepted", "pending_new", "partially_filled", "held"})
CRYPTO_ASSETS = {
    "BTC/USD": {"min_order_size": 0.0001, "min_trade_increment": 0.0001, "price_increment": 0.01},
    "ETH/USD": {"min_order_size": 0.001, "min_trade_increment": 0.001, "price_increment": 0.01},
}
Response = tuple[int, Any]


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


def _error(status: int, code: int, message: str) -> Response:
    return status, {"code": code, "message": message}


def _num(value: Any) -> float:
    return round(float(value), 9)


def _fmt(value: float | None) -> str | None:
    # ".9f": a bare "f" would print 6 decimals and move adjusted prices by up to 5e-7
    return None if value is None else format(round(value, 9), ".9f").rstrip("0").rstrip(".") or "0"


def _is_multiple(qty: float, step: float) -> bool:
    # decimal arithmetic: with Alpaca's 1e-9 crypto increments, qty / step in floats is ~1e10 and
    # its rounding error alone broke the old 1e-6 tolerance (17.3252 BTC was refused)
    return Decimal(repr(qty)) % Decimal(repr(step)) == 0


class SimulatedExchange:
    """The state behind the local Alpaca server (thread-safe; one lock for everything)."""

    def __init__(self, *, cash: float = 100_000.0, account_number: str = "PA1TESTACCT",
                 market_open: bool = True, crypto_fee_bps: float = 0.0, page_size: int = 10_000,
                 api_key: str | None = None, default_price: float = 100.0, multiplier: int = 1,
                 fill_at_next_open: bool = False) -> None:
        self.lock = threading.RLock()
        self.account_id = str(uuid.uuid4())
        self.account_number = account_number
        self.account_status = "ACTIVE"
        self.trading_blocked = False
        self.cash = cash
        self.market_open = market_open
        self.crypto_fee_bps = crypto_fee_bps
        self.page_size = page_size
        self.api_key = api_key
        self.default_price = default_price
        self.multiplier = multiplier
        """Alpaca's margin multiplier: 1 = cash account (buying power = cash), 2-4 = margin account."""
        self.fill_at_next_open = fill_at_next_open
        """Every market order (crypto too) waits for the next bar's open (:meth:`advance`)."""
        self.assets: dict[str, dict[str, Any]] = {}
        self.orders: list[dict[str, Any]] = []
        self.positions: dict[str, dict[str, Any]] = {}
        self.prices: dict[str, float] = {}
        self.bars: dict[str, pd.DataFrame] = {}
        self._bar_json: dict[str, tuple[pd.DatetimeIndex, list[dict[str, Any]]]] = {}
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.simulated_now: datetime | None = None
        """Set by :meth:`advance` (a rehearsal over past sessions): order and fill times follow it."""
        for symbol, rules in CRYPTO_ASSETS.items():
            self.add_asset(symbol, **rules)

    def now(self) -> datetime:
        """The exchange's time: the simulated one set by :meth:`advance`, else the wall clock (UTC)."""
        return self.simulated_now or datetime.now(UTC)

    # -- setup ---------------------------------------------------------------------------------
    def add_asset(self, symbol: str, **fields: Any) -> dict[str, Any]:
        """Add or update an asset (crypto when the symbol has a ``/``)."""
        crypto = "/" in symbol
        asset = self.assets.get(symbol) or {
            "id": str(uuid.uuid4()), "class": "crypto" if crypto else "us_equity",
            "exchange": "CRYPTO" if crypto else "NASDAQ", "symbol": symbol, "name": symbol,
            "status": "active", "tradable": True, "marginable": not crypto, "shortable": not crypto,
            "easy_to_borrow": not crypto, "fractionable": True, "min_order_size": None,
            "min_trade_increment": None, "price_increment": None, "attributes": [],
        }
        asset.update(fields)
        self.assets[symbol] = asset
        return asset

    def asset(self, symbol: str) -> dict[str, Any] | None:
        """The asset for ``symbol`` (``BTC/USD`` or ``BTCUSD``); unknown US tickers are created."""
        if symbol in self.assets:
            return self.assets[symbol]
        for asset in self.assets.values():
            if asset["symbol"].replace("/", "") == symbol:
                return asset
        if EQUITY_TICKER.fullmatch(symbol):
            return self.add_asset(symbol)
        return None

    def load_bars(self, long: pd.DataFrame) -> None:
        """Bars from a canonical long frame (``symbol, date, open, high, low, close, volume``)."""
        for symbol, frame in long.groupby("symbol"):
            frame = frame.sort_values("date").set_index(pd.to_datetime(frame["date"].sort_values()))
            frame = frame[["open", "high", "low", "close", "volume"]].astype(float)
            self.bars[str(symbol)] = frame
            self.prices.setdefault(str(symbol), float(frame["close"].iloc[-1]))
            zone = "UTC" if "/" in str(symbol) else "America/New_York"
            stamps = pd.DatetimeIndex(frame.index).tz_localize(zone).tz_convert("UTC")
            rows = zip(stamps, frame.to_numpy().tolist(), strict=True)
            payload = [{"t": _iso(t.to_pydatetime()), "o": o, "h": h, "l": lo, "c": c, "v": v, "n": 1,
                        "vw": c} for t, (o, h, lo, c, v) in rows]
            self._bar_json[str(symbol)] = (stamps, payload)

    def price(self, symbol: str) -> float:
        """The current price of ``symbol``: set explicitly, else the last bar close, else the default."""
        return self.prices.get(symbol, self.default_price)

    def set_price(self, symbol: str, price: float) -> None:
        """Move the price and trigger the stops it crosses."""
        with self.lock:
            self.prices[symbol] = price
            for order in self._open_orders(symbol):
                if order["type"] in ("stop", "stop_limit") and order["side"] == "sell" \
                        and price <= float(order["stop_price"]):
                    limit = order.get("limit_price")
                    if limit is None or price >= float(limit):
                        self._fill(order, price)

    def advance(self, date: Any) -> None:
        """A new session: queued market orders fill at its open, stops crossed by its low fill.

        The exchange's clock moves with it: fills are stamped at that session's open (9:30 New
        York), later orders at its close (16:00), so a rehearsal over past dates stays coherent.
        """
        day = pd.Timestamp(date).normalize()
        session = day.tz_localize("America/New_York")
        with self.lock:
            opening = session + pd.Timedelta(hours=9, minutes=30)
            self.simulated_now = opening.tz_convert("UTC").to_pydatetime()
            for symbol, frame in self.bars.items():
                if day not in frame.index:
                    continue
                bar = frame.loc[day]
                for order in self._open_orders(symbol):
                    if order["type"] == "market":
                        self._fill(order, float(bar["open"]))
                    elif order["side"] == "sell" and float(bar["low"]) <= float(order["stop_price"]):
                        fill = min(float(bar["open"]), float(order["stop_price"]))
                        limit = order.get("limit_price")
                        if limit is None or fill >= float(limit):
                            self._fill(order, fill)
                self.prices[symbol] = float(bar["close"])
            self.simulated_now = (session + pd.Timedelta(hours=16)).tz_convert("UTC").to_pydatetime()

    # -- account, clock, assets ----------------------------------------------------------------
    def account_json(self) -> Response:
        """``GET /v2/account``."""
        with self.lock:
            held = sum(p["qty"] * self.price(p["asset"]["symbol"]) for p in self.positions.values())
            equity = self.cash + held
            return 200, {
                "id": self.account_id, "account_number": self.account_number, "status": self.account_status,
                "crypto_status": "ACTIVE", "currency": "USD", "cash": _fmt(self.cash),
                "buying_power": _fmt(self.buying_power()), "multiplier": str(self.multiplier),
                "non_marginable_buying_power": _fmt(self.buying_power(marginable=False)),
                "equity": _fmt(equity), "portfolio_value": _fmt(equity),
                "trading_blocked": self.trading_blocked, "account_blocked": False,
                "transfers_blocked": False, "pattern_day_trader": False, "shorting_enabled": False,
            }

    def buying_power(self, marginable: bool = True) -> float:
        """Cash (``multiplier`` 1), else Alpaca's Reg T ``max(equity - initial_margin, 0) * multiplier``.

        Initial margin is 50% of equity positions and 100% of crypto (not marginable); buying
        non-marginable assets (crypto) uses the excess equity once, not times the multiplier.
        """
        if self.multiplier <= 1:
            return self.cash
        equity, margin = self.cash, 0.0
        for pos in self.positions.values():
            value = pos["qty"] * self.price(pos["asset"]["symbol"])
            equity += value
            margin += value if pos["asset"]["class"] == "crypto" else 0.5 * value
        excess = max(equity - margin, 0.0)
        return excess * self.multiplier if marginable else excess

    def clock_json(self) -> Response:
        """``GET /v2/clock``."""
        now = self.now()
        today_close = now.replace(hour=20, minute=0, second=0, microsecond=0)
        next_open = (now + timedelta(days=1)).replace(hour=14, minute=30, second=0, microsecond=0)
        next_close = today_close if now < today_close else today_close + timedelta(days=1)
        return 200, {"timestamp": _iso(now), "is_open": self.market_open, "next_open": _iso(next_open),
                     "next_close": _iso(next_close)}

    def asset_json(self, symbol: str) -> Response:
        """``GET /v2/assets/{symbol}``."""
        asset = self.asset(symbol)
        if asset is None:
            return _error(404, 40410000, f"asset not found for {symbol}")
        return 200, asset

    # -- positions -----------------------------------------------------------------------------
    def _reserved(self, symbol: str) -> float:
        return sum(float(o["qty"]) - float(o["filled_qty"]) for o in self._open_orders(symbol)
                   if o["side"] == "sell")

    def _position_json(self, pos: dict[str, Any]) -> dict[str, Any]:
        asset = pos["asset"]
        price = self.price(asset["symbol"])
        available = pos["qty"] - self._reserved(asset["symbol"])
        return {"asset_id": asset["id"], "symbol": asset["symbol"].replace("/", ""),
                "exchange": asset["exchange"], "asset_class": asset["class"],
                "avg_entry_price": _fmt(pos["avg"]), "qty": _fmt(pos["qty"]), "side": "long",
                "market_value": _fmt(pos["qty"] * price), "cost_basis": _fmt(pos["qty"] * pos["avg"]),
                "current_price": _fmt(price), "qty_available": _fmt(max(0.0, available))}

    def positions_json(self) -> Response:
        """``GET /v2/positions``."""
        with self.lock:
            return 200, [self._position_json(p) for p in self.positions.values()]

    def position_json(self, symbol: str) -> Response:
        """``GET /v2/positions/{symbol}`` (``BTCUSD`` form; ``BTC/USD`` never reaches here)."""
        with self.lock:
            pos = self.positions.get(symbol)
            if pos is None:
                return _error(404, 40410000, "position does not exist")
            return 200, self._position_json(pos)

    def close_position(self, symbol: str) -> Response:
        """``DELETE /v2/positions/{symbol}``: a market sell of the whole position."""
        with self.lock:
            pos = self.positions.get(symbol)
            if pos is None:
                return _error(404, 40410000, "position does not exist")
            tif = "gtc" if pos["asset"]["class"] == "crypto" else "day"
            return self.submit({"symbol": pos["asset"]["symbol"], "qty": pos["qty"], "side": "sell",
                                "type": "market", "time_in_force": tif,
                                "client_order_id": f"close-{uuid.uuid4().hex[:12]}"})

    # -- orders --------------------------------------------------------------------------------
    def _open_orders(self, symbol: str | None = None) -> list[dict[str, Any]]:
        return [o for o in self.orders if o["status"] in OPEN_STATUSES
                and (symbol is None or o["symbol"] == symbol)]

    def by_client_id(self, client_order_id: str) -> dict[str, Any] | None:
        """The order with this client id, or None."""
        return next((o for o in self.orders if o["client_order_id"] == client_order_id), None)

    def order_json_by_client_id(self, client_order_id: str) -> Response:
        """``GET /v2/orders:by_client_order_id``."""
        with self.lock:
            order = self.by_client_id(client_order_id)
            return (200, order) if order else _error(404, 40410000, "order not found")

    def order_json(self, order_id: str) -> Response:
        """``GET /v2/orders/{id}``."""
        with self.lock:
            order = next((o for o in self.orders if o["id"] == order_id), None)
            return (200, order) if order else _error(404, 40410000, "order not found")

    def list_orders(self, query: dict[str, str]) -> Response:
        """``GET /v2/orders`` with status, limit, after, until, direction, symbols."""
        status = query.get("status", "open")
        with self.lock:
            orders = list(self.orders)
        if status == "open":
            orders = [o for o in orders if o["status"] in OPEN_STATUSES]
        elif status == "closed":
            orders = [o for o in orders if o["status"] not in OPEN_STATUSES]
        if query.get("symbols"):
            wanted = set(query["symbols"].split(","))
            orders = [o for o in orders if o["symbol"] in wanted]
        for key, keep in (("after", lambda t, b: t > b), ("until", lambda t, b: t <= b)):
            if query.get(key):
                bound = pd.Timestamp(query[key])
                bound = bound.tz_localize("UTC") if bound.tzinfo is None else bound
                orders = [o for o in orders if keep(pd.Timestamp(o["submitted_at"]), bound)]
        if query.get("direction", "desc") == "desc":
            orders.reverse()
        return 200, orders[: int(query.get("limit", 50))]

    def cancel(self, order_id: str) -> Response:
        """``DELETE /v2/orders/{id}``: 204, or 422 when the order is no longer open."""
        with self.lock:
            order = next((o for o in self.orders if o["id"] == order_id), None)
            if order is None:
                return _error(404, 40410000, "order not found")
            if order["status"] not in OPEN_STATUSES:
                return _error(422, 42210000, f"order is not cancelable (status {order['status']})")
            stamp = _iso(self.now())
            order.update(status="canceled", canceled_at=stamp, updated_at=stamp)
            return 204, None

    def submit(self, payload: dict[str, Any]) -> Response:
        """``POST /v2/orders`` under Alpaca's rules."""
        with self.lock:
            problem = self._check(payload)
            if problem is not None:
                return problem
            order = self._new_order(payload)
            self.orders.append(order)
            answer = dict(order)  # like Alpaca, the POST answers before the fill happens
            crypto = order["asset_class"] == "crypto"
            if order["type"] == "market" and (crypto or self.market_open) and not self.fill_at_next_open:
                self._fill(order, self.price(order["symbol"]))
            return 200, answer

    def _check(self, p: dict[str, Any]) -> Response | None:
        cid = p.get("client_order_id") or ""
        if len(cid) > 48:
            return _error(422, 40010001, "client_order_id must be no more than 48 characters")
        if cid and self.by_client_id(cid) is not None:
            return _error(422, 40010001, "client_order_id must be unique")
        asset = self.asset(str(p.get("symbol", "")))
        if asset is None or not asset["tradable"]:
            return _error(422, 40010001, f"asset {p.get('symbol')} is not tradable")
        qty, kind, tif = _num(p.get("qty") or 0), p.get("type"), p.get("time_in_force")
        if qty <= 0:
            return _error(422, 40010001, "qty must be > 0")
        if kind in ("stop", "stop_limit") and p.get("stop_price") is None:
            return _error(422, 40010001, "stop_price is required")
        if asset["class"] == "crypto":
            if kind not in ("market", "limit", "stop_limit"):
                return _error(422, 40010001, f"invalid order type for crypto order: {kind}")
            if tif not in ("gtc", "ioc"):
                return _error(422, 40010001, f"invalid crypto time_in_force: {tif}")
            if asset["min_order_size"] and qty < asset["min_order_size"] - 1e-12:
                return _error(422, 40010001, f"qty must be >= {asset['min_order_size']}")
            if asset["min_trade_increment"] and not _is_multiple(qty, asset["min_trade_increment"]):
                return _error(422, 40010001, f"qty must be in increments of {asset['min_trade_increment']}")
        elif qty != int(qty):
            if not asset["fractionable"]:
                return _error(422, 40010001, f"asset {asset['symbol']} is not fractionable")
            if tif != "day":
                return _error(422, 40010001, "fractional orders must be DAY orders")
        return self._check_funds(p, asset, qty)

    def _check_funds(self, p: dict[str, Any], asset: dict[str, Any], qty: float) -> Response | None:
        symbol = asset["symbol"]
        if p.get("side") == "sell":
            pos = self.positions.get(symbol.replace("/", ""))
            available = (pos["qty"] if pos else 0.0) - self._reserved(symbol)
            if qty > available + 1e-9:
                crypto = asset["class"] == "crypto"
                what = f"balance for {symbol.split('/')[0]}" if crypto else "qty available"
                return _error(403, 40310000, f"insufficient {what} for order (requested: {_fmt(qty)}, "
                                             f"available: {_fmt(max(0.0, available))})")
        elif p.get("type") == "market" and \
                qty * self.price(symbol) > self.buying_power(asset["class"] != "crypto") + 1e-6:
            return _error(403, 40310000, "insufficient buying power")
        return None

    def _new_order(self, p: dict[str, Any]) -> dict[str, Any]:
        asset = self.asset(str(p["symbol"]))
        assert asset is not None
        stamp = _iso(self.now())
        crypto = asset["class"] == "crypto"
        queued = p.get("type") == "market" and (self.fill_at_next_open or (not crypto and not self.market_open))
        return {
            "id": str(uuid.uuid4()), "client_order_id": p.get("client_order_id") or str(uuid.uuid4()),
            "created_at": stamp, "updated_at": stamp, "submitted_at": stamp, "filled_at": None,
            "expired_at": None, "canceled_at": None, "failed_at": None, "replaced_at": None,
            "replaced_by": None, "replaces": None, "asset_id": asset["id"], "symbol": asset["symbol"],
            "asset_class": asset["class"], "notional": None, "qty": _fmt(_num(p["qty"])), "filled_qty": "0",
            "filled_avg_price": None, "order_class": "simple", "order_type": p["type"], "type": p["type"],
            "side": p["side"], "time_in_force": p["time_in_force"],
            "limit_price": _fmt(_num(p["limit_price"])) if p.get("limit_price") is not None else None,
            "stop_price": _fmt(_num(p["stop_price"])) if p.get("stop_price") is not None else None,
            "status": "accepted" if queued else "new", "extended_hours": False, "legs": None,
            "trail_percent": None, "trail_price": None, "hwm": None,
        }

    def _fill(self, order: dict[str, Any], price: float) -> None:
        asset = self.asset(order["symbol"])
        assert asset is not None
        key = asset["symbol"].replace("/", "")
        qty = _num(order["qty"])
        fee = self.crypto_fee_bps / 10_000 if asset["class"] == "crypto" else 0.0
        pos = self.positions.get(key)
        if order["side"] == "buy":
            self.cash -= qty * price
            received = _num(qty * (1 - fee))
            if pos is None:
                self.positions[key] = {"asset": asset, "qty": received, "avg": price}
            else:
                total = pos["qty"] + received
                pos["avg"] = (pos["avg"] * pos["qty"] + price * received) / total
                pos["qty"] = _num(total)
        else:
            self.cash += qty * price * (1 - fee)
            assert pos is not None
            pos["qty"] = _num(pos["qty"] - qty)
            if pos["qty"] <= 1e-12:
                del self.positions[key]
        stamp = _iso(self.now())
        order.update(status="filled", filled_qty=order["qty"], filled_avg_price=_fmt(price),
                     filled_at=stamp, updated_at=stamp)

    # -- market data ---------------------------------------------------------------------------
    def bars_json(self, query: dict[str, str], *, crypto: bool) -> Response:
        """``GET /v2/stocks/bars`` and ``GET /v1beta3/crypto/us/bars`` with next_page_token paging."""
        symbols = [s for s in query.get("symbols", "").split(",") if s]
        start = _utc(query.get("start")) or pd.Timestamp("1970-01-01", tz="UTC")
        end = _utc(query.get("end")) or pd.Timestamp.now(tz="UTC")
        items: list[tuple[str, dict[str, Any]]] = []
        for symbol in sorted(symbols):
            if symbol not in self._bar_json:
                continue
            stamps, payload = self._bar_json[symbol]
            first, last = stamps.searchsorted(start, "left"), stamps.searchsorted(end, "right")
            items.extend((symbol, bar) for bar in payload[first:last])
        offset = int(query.get("page_token") or 0)
        size = min(int(query.get("limit") or self.page_size), self.page_size)
        page = items[offset: offset + size]
        bars: dict[str, list[dict[str, Any]]] = {}
        for symbol, bar in page:
            bars.setdefault(symbol, []).append(bar)
        more = offset + size < len(items)
        return 200, {"bars": bars, "next_page_token": str(offset + size) if more else None}


def _utc(value: str | None) -> pd.Timestamp | None:
    if not value:
        return None
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
