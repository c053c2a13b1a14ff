"""API keys and base URL from the environment, and the checks that keys, URL and account match the mode.

Alpaca paper keys start with ``PK`` and live keys with ``AK``; paper account numbers start
with ``PA``. A key or URL of the other environment is refused before any request; an account
endpoint answering for the other environment is reported by the startup health check, before
any order.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

from hybrid_core.errors import BrokerError

PAPER_URL = "https://paper-api.alpaca.markets"
LIVE_URL = "https://api.alpaca.markets"
KEY_PREFIX = {"paper": "PK", "live": "AK"}
BASE_URL_ENV = "ALPACA_BASE_URL"
"""One base URL for the broker and the data source (a local or proxy server serving both APIs)."""
HOST_MODE = {urlsplit(PAPER_URL).hostname: "paper", urlsplit(LIVE_URL).hostname: "live"}


def base_url(param: str | None) -> str | None:
    """The base URL to use: the component's ``base_url`` param, else ``$ALPACA_BASE_URL``, else None."""
    chosen = (param or os.environ.get(BASE_URL_ENV, "")).strip()
    return chosen.rstrip("/") or None


def url_mode(url: str) -> str | None:
    """``paper`` or ``live`` for Alpaca's own trading URLs, None for any other (a local server)."""
    return HOST_MODE.get((urlsplit(url).hostname or "").lower())


def url_mode_mismatch(url: str, mode: str) -> str | None:
    """A one-line problem when ``url`` is Alpaca's trading URL of the other environment, else None."""
    other = url_mode(url)
    if other is None or other == mode:
        return None
    right = PAPER_URL if mode == "paper" else LIVE_URL
    return (f"URL/mode mismatch: {url} is Alpaca's {other} URL but the run is in {mode} mode "
            f"({KEY_PREFIX[mode]}... keys); set base_url / {BASE_URL_ENV} to {right} or leave it unset")


def read_keys(key_env: str, secret_env: str, *, required: bool = True) -> tuple[str | None, str | None]:
    """The (key, secret) pair from the environment variables named; raises BrokerError if missing."""
    key, secret = os.environ.get(key_env, "").strip(), os.environ.get(secret_env, "").strip()
    if required and not (key and secret):
        missing = " and ".join(n for n, v in ((key_env, key), (secret_env, secret)) if not v)
        raise BrokerError(f"Alpaca keys missing: set {missing} in the environment (or .env) "
                          f"to your Alpaca API key pair")
    return (key or None), (secret or None)


def key_mode_mismatch(key: str, mode: str) -> str | None:
    """A one-line problem when the key's prefix belongs to the other environment, else None."""
    other = "live" if mode == "paper" else "paper"
    if key.upper().startswith(KEY_PREFIX[other]):
        return (f"key/mode mismatch: a {other} key ({KEY_PREFIX[other]}...) used in "
                f"{mode} mode; use {mode} keys ({KEY_PREFIX[mode]}...) or change TRADING_MODE")
    return None


def account_mode_mismatch(account_number: str, mode: str) -> str | None:
    """A one-line problem when the account endpoint answered for the other environment, else None."""
    paper_account = account_number.upper().startswith("PA")
    if mode == "live" and paper_account:
        return (f"URL/mode mismatch: live mode but the account endpoint answered with paper account "
                f"{account_number}; check base_url ({LIVE_URL} for live)")
    if mode == "paper" and not paper_account:
        return (f"URL/mode mismatch: paper mode but the account endpoint answered with live account "
                f"{account_number}; check base_url ({PAPER_URL} for paper)")
    return None
