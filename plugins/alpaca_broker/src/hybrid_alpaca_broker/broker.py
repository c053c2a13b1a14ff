"""The ``alpaca`` broker: paper and live accounts over alpaca-py's TradingClient.

Stops: equities get a plain ``stop`` sell order (tif gtc) that the core places once the entry
has filled; crypto has no plain stop at Alpaca, so a ``stop`` request becomes a ``stop_limit``
(tif gtc) whose limit sits ``crypto_stop_limit_offset`` below the stop. Both live at the
broker between cycles. Before a market sell (an exit or a time stop) the core cancels the
position's stop and waits for :meth:`AlpacaBroker.cancel` to confirm it, since shares reserved
by a stop make the exit fail with 403; the broker never cancels orders on its own.

Every request goes through one :class:`~hybrid_alpaca_broker.http.RetryBudget` (renewed by
:meth:`AlpacaBroker.start_cycle`): a rate limit or a slow server delays orders within the
budget; an outcome still unknown when it runs out is :class:`~hybrid_core.errors.OrderUnconfirmed`.
"""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NoReturn

import attrs
import pandas as pd
from loguru import logger

from hybrid_core.contracts import (
    AccountSnapshot,
    Broker,
    BrokerPosition,
    HealthReport,
    OrderRequest,
    OrderStatus,
    Panel,
    is_crypto,
)
from hybrid_core.errors import BrokerError, HybridError, OrderUnconfirmed, SafetyError

if TYPE_CHECKING:
    from alpaca.trading.client import TradingClient

from .conversions import OPEN_STATES, account_snapshot, broker_position, order_status, position_symbol
from .credentials import (
    LIVE_URL,
    PAPER_URL,
    account_mode_mismatch,
    base_url,
    key_mode_mismatch,
    read_keys,
    url_mode_mismatch,
)
from .fill_journal import FillJournal
from .http import RetryBudget, close_sdk_client, describe_failure, harden_sdk_client, status_of
from .order_rules import AssetRules, OrderPolicy, OrderRefused, plan_order
from .submission import OrderSender
from .symbols import to_position_symbol

log = logger.bind(broker="alpaca")
CANCEL_POLL_S = 0.1
"""Seconds between looks at an order whose cancel was requested, up to ``cancel_wait``."""


def _positive(_: Any, attribute: Any, value: float) -> None:
    if not value > 0:
        raise ValueError(f"{attribute.name} must be > 0, got {value!r}")


def _not_negative(_: Any, attribute: Any, value: float) -> None:
    if not value >= 0:
        raise ValueError(f"{attribute.name} must be >= 0, got {value!r}")


def _fraction(_: Any, attribute: Any, value: float) -> None:
    if not 0 < value < 0.5:
        raise ValueError(f"{attribute.name} must be between 0 and 0.5 (e.g. 0.01 for 1%), got {value!r}")


@attrs.define
class AlpacaParams:
    """Parameters of the ``alpaca`` broker (profile ``broker.params``)."""

    api_key_env: str = "ALPACA_API_KEY"
    secret_key_env: str = "ALPACA_SECRET_KEY"
    base_url: str | None = None
    """url_override for a local or proxy server; None: ``$ALPACA_BASE_URL``, else the paper or
    live URL by mode."""
    timeout: float = attrs.field(default=10.0, validator=_positive)
    retry_budget: float = attrs.field(default=60.0, validator=_not_negative)
    """Seconds per cycle that failed requests and their retries may take in total."""
    backoff: float = attrs.field(default=0.5, validator=_not_negative)
    equity_when_closed: Literal["queue", "skip"] = attrs.field(
        default="queue", validator=attrs.validators.in_(("queue", "skip")))
    stop_time_in_force: Literal["gtc", "day"] = attrs.field(
        default="gtc", validator=attrs.validators.in_(("gtc", "day")))
    crypto_stop_limit_offset: float = attrs.field(default=0.01, validator=_fraction)
    cancel_wait: float = attrs.field(default=3.0, validator=_not_negative)
    """Seconds to wait for Alpaca to show an order canceled after the DELETE was accepted."""
    sync_lookback_days: int = attrs.field(default=7, validator=_not_negative)
    clock_ttl: float = attrs.field(default=30.0, validator=_not_negative)
    """Seconds a read of the market clock is reused before it is read again."""


def acknowledgement(status: OrderStatus) -> OrderStatus:
    """``status`` as an acknowledgement: a filled order reads ``accepted`` with no fill yet.

    The live cycle learns of fills from ``sync``; a submit answering ``filled`` (a reconciled
    order that filled meanwhile) would otherwise be taken as already recorded and its
    position never opened.
    """
    if status.status != "filled":
        return status
    return attrs.evolve(status, status="accepted", filled_qty=0.0, filled_avg_price=None, filled_at=None)


class AlpacaBroker(Broker):
    """Alpaca paper/live broker: idempotent orders, stops at the broker, faults reconciled by id.

    :meth:`submit` returns Alpaca's acknowledgement, raises :class:`OrderRefused` (an
    ``OrderRejected``) for an order Alpaca refused or that breaks its rules, and
    :class:`~hybrid_core.errors.OrderUnconfirmed` when Alpaca did not confirm within the retry
    budget. :meth:`cancel` returns the order as Alpaca shows it after the cancel.
    """

    name = "alpaca"
    Params = AlpacaParams

    def __init__(self, params: AlpacaParams | None = None) -> None:
        super().__init__(params)
        self.mode: str = "paper"
        self._key = ""
        self.client: TradingClient | None = None
        self.refusals: dict[str, str] = {}
        """Why an order was refused before sending, by client_order_id."""
        self._assets: dict[str, AssetRules] = {}
        self._clock: tuple[float, Any] | None = None
        self._journal = FillJournal(None)
        self._budget = RetryBudget(self.params.retry_budget, self.params.backoff)
        self._sender: OrderSender | None = None
        self._url = base_url(self.params.base_url)
        self._refusal: str | None = None
        """Why no request may be sent at all (a URL of the other environment), set by configure."""

    # -- setup ---------------------------------------------------------------------------------
    def offline_check(self) -> list[HybridError]:
        """Offline check for `hybrid validate`: the key variables are set, and the key's prefix and
        the base URL fit the trading mode (what the startup health check would otherwise refuse).
        No network."""
        try:
            key, _secret = read_keys(self.params.api_key_env, self.params.secret_key_env)
        except BrokerError as exc:
            return [exc]
        try:
            from hybrid_core.safety import resolve_mode

            mode = resolve_mode()
        except HybridError:  # hybrid validate reports a bad TRADING_MODE itself
            return []
        problems = [key_mode_mismatch(key or "", mode), url_mode_mismatch(self._url, mode) if self._url else None]
        return [SafetyError(f"API health check would fail on startup: {p}") for p in problems if p]

    def configure(self, *, mode: Literal["paper", "live"], state_dir: str) -> None:
        """Build the hardened TradingClient for ``mode`` (chosen by the core's safety layer)."""
        if mode not in ("paper", "live"):
            raise BrokerError(f"alpaca broker mode must be paper or live, got {mode!r}")
        self.mode = mode
        key, secret = read_keys(self.params.api_key_env, self.params.secret_key_env)
        self._key = key or ""
        self._refusal = key_mode_mismatch(self._key, mode) or url_mode_mismatch(self.url, mode)
        from alpaca.trading.client import TradingClient  # imported on use: alpaca-py costs ~0.5 s

        self.client = TradingClient(key, secret, paper=mode == "paper", url_override=self._url)
        harden_sdk_client(self.client, self.params.timeout)
        self._sender = OrderSender(self.client, self._budget)
        self._journal = FillJournal(Path(state_dir) / "alpaca_reported_fills.json")
        self._budget.renew()
        log.info("alpaca broker configured: mode={mode} url={url}", mode=mode, url=self.url)

    def start_cycle(self, now: pd.Timestamp) -> None:
        """A new cycle: the retry budget is whole again."""
        self._budget.renew()

    @property
    def url(self) -> str:
        """The base URL the client talks to."""
        return self._url or (PAPER_URL if self.mode == "paper" else LIVE_URL)

    def close(self) -> None:
        """Close the HTTP session."""
        if self.client is not None:
            close_sdk_client(self.client)

    def _api(self) -> TradingClient:
        if self.client is None:
            raise BrokerError("alpaca broker used before configure(mode=..., state_dir=...)")
        if self._refusal:
            raise BrokerError(f"alpaca: nothing sent: {self._refusal}")
        return self.client

    def _read(self, what: str, fn: Any) -> Any:
        try:
            return self._budget.call(what, fn)
        except Exception as exc:
            if isinstance(exc, BrokerError):
                raise
            raise BrokerError(f"alpaca {what} failed at {self.url}: {describe_failure(exc)}") from exc

    # -- health --------------------------------------------------------------------------------
    def health_check(self) -> HealthReport:
        """Keys and URL match the mode (checked before any request), account reachable, ACTIVE,
        not blocked, and the clock answers."""
        if self.client is None:
            raise BrokerError("alpaca broker used before configure(mode=..., state_dir=...)")
        if self._refusal:
            return HealthReport(False, self._refusal, {"mode": self.mode, "url": self.url})
        api = self._api()
        try:
            acct: Any = self._budget.call("GET /v2/account", api.get_account)
        except Exception as exc:
            status = status_of(exc)
            hint = (" (keys rejected: paper keys work only with the paper URL, live keys with the live URL)"
                    if status in (401, 403) else "")
            return HealthReport(False, f"account unreachable at {self.url}: {describe_failure(exc)}{hint}",
                                {"mode": self.mode, "url": self.url})
        details: dict[str, Any] = {"mode": self.mode, "url": self.url,
                                   "account_number": acct.account_number,
                                   "status": getattr(acct.status, "value", acct.status)}
        problem = account_mode_mismatch(acct.account_number, self.mode)
        if problem:
            return HealthReport(False, problem, details)
        if details["status"] != "ACTIVE":
            return HealthReport(False, f"account {acct.account_number} status is {details['status']}, "
                                       f"not ACTIVE", details)
        if acct.trading_blocked or acct.account_blocked:
            return HealthReport(False, f"account {acct.account_number}: trading is blocked", details)
        try:
            clock = self._clock_now(refresh=True)
        except BrokerError as exc:
            return HealthReport(False, str(exc), details)
        details.update(is_open=bool(clock.is_open), next_open=clock.next_open.isoformat())
        return HealthReport(True, "", details)

    def _clock_now(self, refresh: bool = False) -> Any:
        now = time.monotonic()
        if refresh or self._clock is None or now - self._clock[0] > self.params.clock_ttl:
            self._clock = (now, self._read("GET /v2/clock", self._api().get_clock))
        return self._clock[1]

    # -- reads ---------------------------------------------------------------------------------
    def account(self) -> AccountSnapshot:
        """Cash, equity and status."""
        return account_snapshot(self._read("GET /v2/account", self._api().get_account))

    def positions(self) -> list[BrokerPosition]:
        """Open positions, crypto symbols as ``BTC/USD``, each with the asset's smallest order quantity."""
        held = self._read("GET /v2/positions", self._api().get_all_positions)
        return [broker_position(p, self._min_order_qty(position_symbol(p))) for p in held]

    def _min_order_qty(self, symbol: str) -> float | None:
        try:
            return self._asset_rules(symbol).min_order_qty
        except OrderRefused:  # an asset Alpaca no longer lists: no floor known
            return None

    def open_orders(self) -> list[OrderStatus]:
        """Orders still open at Alpaca."""
        return [order_status(o) for o in self._orders("open")]

    def _orders(self, status: str, symbol: str | None = None, after: Any = None) -> list[Any]:
        from alpaca.trading.enums import QueryOrderStatus
        from alpaca.trading.requests import GetOrdersRequest

        req = GetOrdersRequest(status=QueryOrderStatus(status), limit=500, after=after,
                               symbols=[symbol] if symbol else None)
        return self._read(f"GET /v2/orders?status={status}", lambda: self._api().get_orders(req))

    def get_order(self, client_order_id: str) -> OrderStatus | None:
        """The order with this client id, or None when Alpaca answers it has none.

        Raises :class:`~hybrid_core.errors.OrderUnconfirmed` when Alpaca did not answer."""
        found = self._sender_().lookup(client_order_id)
        return order_status(found) if found is not None else None

    def _sender_(self) -> OrderSender:
        self._api()  # configured, and no URL or key of the other environment
        assert self._sender is not None
        return self._sender

    # -- orders --------------------------------------------------------------------------------
    def submit(self, order: OrderRequest) -> OrderStatus:
        """Send ``order`` once (idempotent on client_order_id), within Alpaca's rules.

        Returns the acknowledgement: a fill is reported once, by :meth:`sync` (and
        :meth:`get_order`), never by ``submit``, even when a reconciled order has already filled.
        Raises :class:`OrderRefused` (an ``OrderRejected``) with a one-line reason, also kept in
        :attr:`refusals`, for an order that breaks a rule (not sent) or that Alpaca refused;
        :class:`~hybrid_core.errors.OrderUnconfirmed` when its outcome is not known within the
        retry budget; :class:`BrokerError` when a read it needed failed (nothing sent).
        """
        sender = self._sender_()
        cid = order.client_order_id
        if len(cid) > 48 or not cid:
            raise BrokerError(f"client_order_id {cid!r} must be 1-48 characters (Alpaca's limit)")
        existing = sender.lookup(cid)
        if existing is not None:
            log.info("alpaca order {cid} already exists (status {status}); not resubmitted",
                     cid=cid, status=getattr(existing.status, "value", existing.status))
            return acknowledgement(order_status(existing))
        try:
            rules = self._asset_rules(order.symbol)
            held, available = self._holding(order.symbol) if order.side == "sell" else (0.0, 0.0)
            market_open = True if rules.crypto else bool(self._clock_now().is_open)
            plan = plan_order(order, rules, held_qty=held, market_open=market_open,
                              policy=OrderPolicy(self.params.equity_when_closed,
                                                 self.params.stop_time_in_force,
                                                 self.params.crypto_stop_limit_offset))
            if order.side == "sell" and plan.qty > available + 1e-12:
                raise OrderRefused(
                    f"{order.symbol}: sell of {plan.qty:g} refused, only {available:g} of {held:g} held is "
                    f"available: the rest is reserved by open orders at Alpaca (a stop not canceled yet)")
            if plan.qty != order.qty:
                log.info("alpaca {cid}: qty {asked:g} -> {qty:g} ({symbol} rules)", cid=cid,
                         asked=order.qty, qty=plan.qty, symbol=order.symbol)
            sent = sender.send(plan)
        except OrderRefused as exc:
            self._refused(order, str(exc))
        except BrokerError:
            raise
        except Exception as exc:
            code = status_of(exc)
            if code is None or code >= 500 or code == 429:
                raise BrokerError(f"alpaca order {cid} not sent: {describe_failure(exc)}") from exc
            self._refused(order, f"Alpaca refused the order: {describe_failure(exc)}")
        status = acknowledgement(order_status(sent))
        log.info("alpaca order {cid} {side} {qty:g} {symbol} {type} -> {status}", cid=cid,
                 side=plan.side, qty=plan.qty, symbol=plan.symbol, type=plan.order_type,
                 status=status.status)
        return status

    def _refused(self, order: OrderRequest, reason: str) -> NoReturn:
        self.refusals[order.client_order_id] = reason
        log.warning("alpaca order {cid} not sent: {reason}", cid=order.client_order_id, reason=reason)
        raise OrderRefused(reason)

    def _asset_rules(self, symbol: str) -> AssetRules:
        if symbol not in self._assets:
            asset = None
            for name in dict.fromkeys((symbol, to_position_symbol(symbol))):  # BTC/USD, then BTCUSD
                if name != symbol and not is_crypto(symbol):
                    break
                def fetch(name: str = name) -> Any:
                    try:
                        return self._api().get_asset(name)
                    except Exception as exc:
                        if status_of(exc) == 404:
                            return None
                        raise
                asset = self._read(f"GET /v2/assets/{name}", fetch)
                if asset is not None:
                    break
            if asset is None:
                raise OrderRefused(f"{symbol}: unknown at Alpaca (GET /v2/assets/{symbol} is 404)")
            self._assets[symbol] = AssetRules.from_asset(symbol, asset)
        return self._assets[symbol]

    def _holding(self, symbol: str) -> tuple[float, float]:
        """(quantity held, quantity not reserved by open orders) of ``symbol``; (0, 0) if nothing is held."""
        def fetch() -> Any:
            try:
                return self._api().get_open_position(to_position_symbol(symbol))
            except Exception as exc:
                if status_of(exc) == 404:
                    return None
                raise
        pos = self._read(f"GET /v2/positions/{to_position_symbol(symbol)}", fetch)
        if pos is None:
            return 0.0, 0.0
        held = max(0.0, float(pos.qty))
        available = held if pos.qty_available in (None, "") else max(0.0, float(pos.qty_available))
        return held, available

    def cancel(self, client_order_id: str) -> OrderStatus | None:
        """Cancel an order and wait (up to ``cancel_wait``) for Alpaca to show it closed.

        Returns the order as Alpaca then shows it: ``canceled``; ``filled`` or another closed
        state if it closed first; still open if the cancel is not confirmed within
        ``cancel_wait`` (Alpaca's ``pending_cancel``, or a DELETE answered without effect).
        None: Alpaca has no such order. Raises :class:`~hybrid_core.errors.OrderUnconfirmed`
        when the DELETE or a lookup got no answer within the retry budget.
        """
        sender = self._sender_()
        found = sender.lookup(client_order_id)
        if found is None:
            return None
        if order_status(found).status not in OPEN_STATES:
            return order_status(found)

        def delete() -> None:
            try:
                self._api().cancel_order_by_id(found.id)
            except Exception as exc:
                if status_of(exc) not in (404, 422):  # gone, or no longer cancelable (closed meanwhile)
                    raise
        try:
            self._budget.call(f"DELETE /v2/orders/{found.id}", delete)
        except Exception as exc:
            raise OrderUnconfirmed(f"alpaca cancel of order {client_order_id} not confirmed "
                                   f"({describe_failure(exc)}); the order may still be open") from exc
        deadline = time.monotonic() + self.params.cancel_wait
        while True:
            now = sender.lookup(client_order_id)
            status = order_status(now) if now is not None else None
            if status is None or status.status not in OPEN_STATES:
                break
            if time.monotonic() >= deadline:
                log.warning("alpaca order {cid}: cancel requested but still {status} after {wait:g}s; "
                            "not confirmed", cid=client_order_id, status=status.status,
                            wait=self.params.cancel_wait)
                return status
            time.sleep(CANCEL_POLL_S)
        log.info("alpaca order {cid}: {status} after the cancel request", cid=client_order_id,
                 status=status.status if status else "gone")
        return status

    # -- reconciliation ------------------------------------------------------------------------
    def sync(self, panel: Panel, now: pd.Timestamp) -> list[OrderStatus]:
        """Orders with fills (filled, or canceled after a partial fill) not reported before.

        Scans closed orders submitted in the last ``sync_lookback_days`` plus, one by one, the
        orders open at the previous sync (a gtc stop submitted long ago that has just triggered).
        """
        now_utc = pd.Timestamp(now)
        now_utc = now_utc.tz_localize("UTC") if now_utc.tzinfo is None else now_utc.tz_convert("UTC")
        after = now_utc - timedelta(days=self.params.sync_lookback_days)
        candidates = {o.client_order_id: o for o in self._orders("closed", after=after.to_pydatetime())}
        open_ids = {o.client_order_id for o in self._orders("open")}
        for cid in sorted(self._journal.watch - open_ids - candidates.keys()):
            found = self._sender_().lookup(cid)
            if found is not None:
                candidates[cid] = found
        fresh = [order_status(o) for cid, o in candidates.items() if cid not in self._journal]
        fresh = [s for s in fresh if s.filled_qty > 0 and s.status not in OPEN_STATES]
        fresh.sort(key=lambda s: s.filled_at or "")
        self._journal.record({s.client_order_id: s.filled_at or "" for s in fresh}, open_ids,
                             after - timedelta(days=self.params.sync_lookback_days))
        if fresh:
            log.info("alpaca sync: {n} new fill(s): {ids}", n=len(fresh),
                     ids=", ".join(s.client_order_id for s in fresh))
        return fresh
