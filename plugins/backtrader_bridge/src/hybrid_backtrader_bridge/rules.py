"""Which risk rules the Backtrader bridge can apply, and the one-line refusal of the others."""

from __future__ import annotations

from collections.abc import Sequence

from hybrid_core.contracts import RiskRule
from hybrid_core.errors import ProfileError


def check_risk_rules(rules: Sequence[RiskRule]) -> None:
    """Refuse a rule that vets orders: the bridge applies stop-loss and time-stop rules only.

    A rule maps when all it does is give a protective stop (``stop_price``: a Backtrader stop
    order at the entry fill) or a time exit (``time_exit``: a market exit at the next open),
    like the profile's ``stop_loss`` and ``time_stop``. Order vetting (``max_order_value``, the
    guards, the kill switch) has no counterpart in the bridge, so a run would silently differ.
    """
    for rule in rules:
        if type(rule).vet is not RiskRule.vet:
            name = getattr(rule, "name", type(rule).__name__)
            raise ProfileError(f"risk rule {name!r} vets orders, which the backtrader engine cannot apply (it maps "
                               f"only stop-loss and time-stop rules); remove it from the profile's `risk` list "
                               f"for this run or use --engine native")
