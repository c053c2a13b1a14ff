"""Safety layers between a profile and real money.

1. Paper by default: ``TRADING_MODE`` is PAPER unless set to LIVE.
2. LIVE needs ``LIVE_TRADING_ENABLED=true`` as well, otherwise :class:`SafetyError`.
3. LIVE prints a warning banner and waits (5 s, interruptible) before the first order.
4. Max order value is a risk rule (``max_order_value``) that refuses, never resizes.
5. ``--dry-run`` never reaches a broker's order methods (see :class:`DryRunBroker` use in
   the cycle).
6. The broker's health check runs before the first order: :func:`require_healthy_broker`.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Mapping
from typing import Literal, TextIO

from .contracts import Broker
from .errors import SafetyError

TradingMode = Literal["paper", "live"]
LIVE_BANNER_SECONDS = 5.0


def resolve_mode(environ: Mapping[str, str] | None = None) -> TradingMode:
    """The trading mode from ``TRADING_MODE`` and ``LIVE_TRADING_ENABLED`` (paper by default)."""
    env = os.environ if environ is None else environ
    raw = env.get("TRADING_MODE", "PAPER").strip().upper() or "PAPER"
    if raw not in {"PAPER", "LIVE"}:
        raise SafetyError(f"TRADING_MODE must be PAPER or LIVE, got {raw!r}; unset it for paper trading")
    if raw == "PAPER":
        return "paper"
    enabled = env.get("LIVE_TRADING_ENABLED", "").strip().lower()
    if enabled != "true":
        raise SafetyError(
            "TRADING_MODE=LIVE but LIVE_TRADING_ENABLED is not 'true': live trading with real money "
            "is locked; set LIVE_TRADING_ENABLED=true to enable it, or unset TRADING_MODE for paper")
    return "live"


def live_banner(seconds: float = LIVE_BANNER_SECONDS, *, out: TextIO | None = None,
                sleep: Callable[[float], None] = time.sleep) -> None:
    """Print the LIVE warning banner and wait ``seconds`` (Ctrl-C aborts before any order)."""
    stream = out or sys.stderr
    line = "!" * 72
    stream.write(f"\n{line}\n!!  LIVE TRADING: REAL MONEY. Orders will be sent to the live account.\n"
                 f"!!  Starting in {seconds:.0f} seconds; press Ctrl-C to abort.\n{line}\n\n")
    stream.flush()
    try:
        sleep(seconds)
    except KeyboardInterrupt:
        raise SafetyError("live run aborted by the user during the warning countdown") from None


def require_healthy_broker(broker: Broker) -> None:
    """Run the broker's health check; raise ``SafetyError`` if it fails (before any order)."""
    try:
        report = broker.health_check()
    except Exception as exc:  # the reason matters more than the type here
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SafetyError(f"API health check failed on startup: {reason}") from exc
    if not report.ok:
        raise SafetyError(f"API health check failed on startup: {report.reason}")
