"""The error hierarchy. The CLI turns each into one line and its exit code from
:mod:`hybrid_core.exit_codes` (the one table of codes)."""

from __future__ import annotations

from collections.abc import Sequence

from . import exit_codes


class HybridError(Exception):
    """Base of every error hybrid raises on purpose; the message is one line for a user.

    Without a more specific class it is invalid input (a bad option, date or setting).
    """

    exit_code = exit_codes.USAGE


class ProfileError(HybridError):
    """The run profile is missing, malformed or names something that does not exist.

    ``lines`` holds one line per problem (all problems of a profile are reported together).
    """

    exit_code = exit_codes.USAGE

    def __init__(self, message: str = "", *, lines: Sequence[str] | None = None) -> None:
        self.lines = [str(line) for line in lines] if lines else [message]
        super().__init__(message or "; ".join(self.lines))


class EnvironmentValueError(HybridError):
    """An environment variable holds a value hybrid cannot use; the message names the variable."""

    exit_code = exit_codes.USAGE


class CheckFailed(HybridError):
    """A check the user asked for answered no (``hybrid notify test``: a target failed); not an error
    in the input, so it exits 1 like an unhealthy ``hybrid health``."""

    exit_code = exit_codes.UNHEALTHY


class PluginLoadError(HybridError):
    """A plugin could not be imported or registered (fatal only in strict mode)."""

    exit_code = exit_codes.PLUGIN_LOAD


class ComponentError(HybridError):
    """A component (strategy, data source, risk rule, broker) failed in its own code."""

    exit_code = exit_codes.COMPONENT


class StrategyError(ComponentError):
    """A strategy's own code raised; the message names the strategy."""


class SafetyError(HybridError):
    """A safety layer refused to go on (live trading not enabled, health check failed...)."""

    exit_code = exit_codes.SAFETY


class BrokerError(HybridError):
    """The broker refused or failed a request."""

    exit_code = exit_codes.BROKER


class OrderRejected(BrokerError):
    """The broker's explicit answer that an order is refused: it does not exist at the broker.

    Raised by ``Broker.submit`` for a refusal the broker gave (an HTTP 4xx that is not a rate
    limit) or for an order the broker plugin refused to send (it breaks the exchange's rules).
    Only this error makes the live cycle record an order ``rejected``.
    """


class OrderUnconfirmed(BrokerError):
    """The broker did not confirm an order's outcome: it may or may not exist, or be canceled.

    A submission whose answer never came (timeouts, 5xx, a rate limit outlasting the retry
    budget), a cancel that was not confirmed, a lookup that got no answer. The live cycle
    records the order ``unknown`` and looks it up by client_order_id until the broker answers;
    it never records it ``rejected``.
    """


class DataError(HybridError):
    """Market data is missing, malformed, stale, unreadable or refused by the quality gate."""

    exit_code = exit_codes.DATA


class BarsRefused(DataError):
    """The data quality gate refused bars under ``data.quality: refuse`` (the message names the
    file, symbol, date and check). Bars were there and are wrong, unlike a DataError for bars
    that are missing."""
