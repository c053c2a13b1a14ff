"""The component boundary: every call into a plugin's code fails as one :class:`ComponentError`.

A strategy, risk rule, data source or broker is third-party code. When it raises something
that is not a :class:`~hybrid_core.errors.HybridError` (a bug: ``ZeroDivisionError`` in a
``vet()``, a ``KeyError`` in a data source), the engine must not die with a traceback nor
guess: :func:`component_error` turns it into one line naming the component, the plugin that
provides it and the method, and the callers decide (the backtest stops, the live loop fails
the cycle closed and keeps running). A ``HybridError`` the component raised on purpose (a
``BrokerError``, a ``DataError``) passes through unchanged.

Hot loops (the planner's time stops, vetting) keep a plain ``try`` around the call, which
costs nothing until something raises, and call :func:`component_error` with the component
that was being called; everything else goes through :func:`call`.
"""

from __future__ import annotations

from typing import Any

from ..errors import ComponentError, HybridError

KIND_NAMES = {"strategy": "strategy", "risk_rule": "risk rule", "data_source": "data source",
              "broker": "broker"}


def describe(component: Any) -> str:
    """``risk rule 'max_order_value' (plugin risk_rules)``: what a message calls a component."""
    kind = KIND_NAMES.get(getattr(component, "kind", ""), "component")
    name = getattr(component, "name", "") or type(component).__name__
    if not isinstance(name, str):
        name = type(component).__name__
    plugin = getattr(component, "plugin", "") or ""
    return f"{kind} {name!r} ({type(component).__name__}{f', plugin {plugin}' if plugin else ''})"


def component_error(component: Any, method: str, exc: BaseException) -> HybridError:
    """The error to raise for ``exc`` escaping ``component.method``: unchanged when it is already
    a :class:`HybridError`, else a :class:`ComponentError` naming the component and plugin."""
    if isinstance(exc, HybridError):
        return exc
    error = ComponentError(f"{describe(component)} failed in {method}(): {type(exc).__name__}: {exc}")
    error.component = component  # type: ignore[attr-defined]
    return error


def call(component: Any, method: str, *args: Any, **kwargs: Any) -> Any:
    """``component.method(*args, **kwargs)`` with its failures turned into a :class:`ComponentError`."""
    try:
        return getattr(component, method)(*args, **kwargs)
    except Exception as exc:
        raise component_error(component, method, exc) from exc
