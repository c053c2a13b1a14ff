"""A local Alpaca-compatible HTTP server, for tests and for rehearsing a paper run offline.

The real alpaca-py clients talk to it through ``url_override``. Run it::

    python -m hybrid_alpaca_broker.testing.server --port 8765 [--bars bars.parquet] [--market closed]

Trading API: ``/v2/account``, ``/v2/clock``, ``/v2/positions[/{symbol}]`` (GET, DELETE),
``/v2/orders`` (POST, GET), ``/v2/orders:by_client_order_id``, ``/v2/orders/{id}`` (GET, DELETE),
``/v2/assets/{symbol}``. Data API: ``/v2/stocks/bars``, ``/v1beta3/crypto/us/bars``.
Control (not Alpaca): ``POST /_control/fault`` (a :class:`Fault` as JSON; ``DELETE`` clears them),
``POST /_control/price`` ``{"symbol", "price"}``, ``POST /_control/clock`` ``{"is_open"}``,
``POST /_control/advance`` ``{"date"}``, ``GET /_control/requests``.
"""

from __future__ import annotations

import argparse
import json
import re
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import pandas as pd

from .exchange import Response, SimulatedExchange
from .faults import Fault, FaultPlan

ORDER_ID = re.compile(r"^/v2/orders/(?P<id>[0-9a-f-]{36})$")
POSITION = re.compile(r"^/v2/positions/(?P<symbol>[^/]+)$")
ASSET = re.compile(r"^/v2/assets/(?P<symbol>.+)$")


class AlpacaHandler(BaseHTTPRequestHandler):
    """Routes one request to the exchange, applying any queued fault."""

    server: AlpacaHTTPServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet by default
        if self.server.verbose:
            super().log_message(format, *args)

    def do_GET(self) -> None:  # noqa: N802 - http.server API
        self._handle("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._handle("POST")

    def do_DELETE(self) -> None:  # noqa: N802
        self._handle("DELETE")

    def _handle(self, method: str) -> None:
        parts = urlsplit(self.path)
        path, query = unquote(parts.path), dict(parse_qsl(parts.query))
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        body = json.loads(raw or b"{}")
        ex, faults = self.server.exchange, self.server.faults
        if not path.startswith("/_control"):
            with ex.lock:
                ex.requests.append((method, path, query))
        text = unquote(parts.query) + raw.decode("utf-8", "replace")
        fault = None if path.startswith("/_control") else faults.take(method, path, text)
        if fault is not None and fault.action == "late":
            faults.release.wait(fault.hang_seconds)  # the client times out meanwhile
            fault = None
        elif fault is not None and not fault.after_accept:
            self._misbehave(fault, None)
            return
        status, payload = self._route(method, path, query, body)
        if fault is not None:
            self._misbehave(fault, (status, payload))
            return
        self._send(status, payload)

    def _misbehave(self, fault: Fault, real: Response | None) -> None:
        if fault.action == "drop":
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        if fault.action == "hang":
            self.server.faults.release.wait(fault.hang_seconds)
            try:
                if real is not None:
                    self._send(*real)
                else:
                    self._send(504, {"code": 50400000, "message": "gateway timeout"})
            except OSError:
                pass
            return
        if fault.action == "ignore":
            self._send_raw(fault.status, (fault.body or "").encode(), None if not fault.body else
                           fault.content_type)
            return
        extra = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
        self._send_raw(fault.status, fault.payload().encode(), fault.content_type, extra)

    def _send(self, status: int, payload: Any) -> None:
        if status == 204 or payload is None:
            self._send_raw(status, b"", None)
        else:
            self._send_raw(status, json.dumps(payload).encode(), "application/json")

    def _send_raw(self, status: int, data: bytes, content_type: str | None,
                  headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if data:
            self.wfile.write(data)

    def _authorized(self, path: str) -> bool:
        ex = self.server.exchange
        if path.startswith("/v1beta3/crypto"):
            return True
        key = self.headers.get("APCA-API-KEY-ID")
        return bool(key) and (ex.api_key is None or key == ex.api_key)

    def _route(self, method: str, path: str, query: dict[str, str], body: Any) -> Response:
        if path.startswith("/_control"):
            return self._control(method, path, body)
        if not self._authorized(path):
            return 401, {"code": 40110000, "message": "request is not authorized"}
        ex = self.server.exchange
        if method == "GET":
            simple = {"/v2/account": ex.account_json, "/v2/clock": ex.clock_json,
                      "/v2/positions": ex.positions_json}
            if path in simple:
                return simple[path]()
            if path == "/v2/orders":
                return ex.list_orders(query)
            if path == "/v2/orders:by_client_order_id":
                return ex.order_json_by_client_id(query.get("client_order_id", ""))
            if path == "/v2/stocks/bars":
                return ex.bars_json(query, crypto=False)
            if path == "/v1beta3/crypto/us/bars":
                return ex.bars_json(query, crypto=True)
            if m := ORDER_ID.match(path):
                return ex.order_json(m["id"])
            if m := POSITION.match(path):
                return ex.position_json(m["symbol"])
            if m := ASSET.match(path):
                return ex.asset_json(m["symbol"])
        elif method == "POST" and path == "/v2/orders":
            return ex.submit(body)
        elif method == "DELETE":
            if m := ORDER_ID.match(path):
                return ex.cancel(m["id"])
            if m := POSITION.match(path):
                return ex.close_position(m["symbol"])
        return 404, {"code": 40410000, "message": f"endpoint not found: {method} {path}"}

    def _control(self, method: str, path: str, body: dict[str, Any]) -> Response:
        ex = self.server.exchange
        if method == "GET" and path == "/_control/requests":
            return 200, [[m, p, q] for m, p, q in ex.requests]
        if method == "GET" and path == "/_control/orders":
            with ex.lock:
                return 200, list(ex.orders)
        if method == "DELETE" and path == "/_control/fault":
            self.server.faults.clear()
            return 200, {"ok": True}
        if method != "POST":
            return 404, {"message": "control endpoints take POST"}
        if path == "/_control/fault":
            self.server.faults.add(Fault(**body))
        elif path == "/_control/price":
            ex.set_price(body["symbol"], float(body["price"]))
        elif path == "/_control/clock":
            ex.market_open = bool(body["is_open"])
        elif path == "/_control/advance":
            ex.advance(body["date"])
        else:
            return 404, {"message": f"unknown control endpoint {path}"}
        return 200, {"ok": True}


class AlpacaHTTPServer(ThreadingHTTPServer):
    """ThreadingHTTPServer carrying the exchange and the fault plan."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], exchange: SimulatedExchange, verbose: bool = False) -> None:
        super().__init__(address, AlpacaHandler)
        self.exchange = exchange
        self.faults = FaultPlan()
        self.verbose = verbose

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet about clients that went away (timeouts and dropped connections are on purpose)."""
        if self.verbose:
            super().handle_error(request, client_address)


class AlpacaTestServer:
    """The server on 127.0.0.1 in a background thread; use as a context manager.

    ``url`` is what the broker's ``base_url`` / alpaca-py's ``url_override`` takes.
    """

    def __init__(self, exchange: SimulatedExchange | None = None, port: int = 0,
                 verbose: bool = False) -> None:
        self.exchange = exchange or SimulatedExchange()
        self.httpd = AlpacaHTTPServer(("127.0.0.1", port), self.exchange, verbose)
        self.faults = self.httpd.faults
        self._thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,),
                                        name="alpaca-test-server", daemon=True)

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def count(self, method: str, path: str) -> int:
        """How many requests with this method and exact path the server received."""
        with self.exchange.lock:
            return sum(1 for m, p, _ in self.exchange.requests if m == method and p == path)

    def start(self) -> AlpacaTestServer:
        """Start serving in the background."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Release hanging handlers, stop serving and close the socket."""
        self.faults.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> AlpacaTestServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def read_bars_file(path: str) -> pd.DataFrame:
    """A canonical long frame from Parquet or CSV; ``adj_close`` columns are applied to OHLC."""
    frame = pd.read_parquet(path) if path.endswith(".parquet") else pd.read_csv(path, parse_dates=["date"])
    if "adj_close" in frame.columns:
        factor = frame["adj_close"] / frame["close"]
        for col in ("open", "high", "low", "close"):
            frame[col] = frame[col] * factor
    return frame.dropna(subset=["open", "high", "low", "close"])


def main(argv: list[str] | None = None) -> None:
    """Command line: serve until Ctrl-C."""
    parser = argparse.ArgumentParser(description="Local Alpaca-compatible server for offline paper runs")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--cash", type=float, default=100_000.0)
    parser.add_argument("--bars", action="append", default=[],
                        help="Parquet/CSV long bars (symbol,date,open,high,low,close,volume); repeatable")
    parser.add_argument("--market", choices=("open", "closed"), default="open",
                        help="clock state; closed queues equity market orders until /_control/advance")
    parser.add_argument("--crypto-fee-bps", type=float, default=0.0)
    parser.add_argument("--multiplier", type=int, choices=(1, 2, 4), default=1,
                        help="margin multiplier: 1 = cash account, 2 or 4 = margin account buying power")
    parser.add_argument("--fill-at-next-open", action="store_true",
                        help="replaying history: every market order (crypto too) fills at the next "
                             "/_control/advance open, as the daily backtest assumes")
    parser.add_argument("--account-number", default="PA1TESTACCT",
                        help="PA... answers as a paper account; anything else as a live one")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    exchange = SimulatedExchange(cash=args.cash, account_number=args.account_number,
                                 market_open=args.market == "open", crypto_fee_bps=args.crypto_fee_bps,
                                 multiplier=args.multiplier, fill_at_next_open=args.fill_at_next_open)
    for path in args.bars:
        exchange.load_bars(read_bars_file(path))
    server = AlpacaTestServer(exchange, port=args.port, verbose=args.verbose)
    print(f"Alpaca-compatible server on {server.url} (base_url for the alpaca broker and data source); "
          f"Ctrl-C stops it", flush=True)
    try:
        server.httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.httpd.server_close()


if __name__ == "__main__":
    main()
