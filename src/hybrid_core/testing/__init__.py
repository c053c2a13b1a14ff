"""The plugin author's kit: sample bars and contract checks for a plugin's own test suite.

Typical use in a strategy package's tests::

    from hybrid_core.testing import check_strategy, sample_panel

    def test_my_strategy_honours_the_contract():
        check_strategy(MyStrategy, sample_panel())

What is here:

- :func:`sample_panel` / :func:`sample_bars`: real adjusted daily bars bundled with hybrid
  (40 S&P 500 equities + BTC/USD and ETH/USD, 2020-01-02..2021-04-21), no shared data needed;
- :func:`synthetic_panel`: a deterministic random-walk panel (NYSE sessions for equities,
  every day for crypto) when a test wants bars that exist anywhere;
- :func:`shared_data_dir`: the large reference data of hybrid's own tests (``HYBRID_SHARED_DATA``, or
  ``../shared/data`` beside a source checkout); nothing else here needs it;
- contract checks (:mod:`hybrid_core.testing.contracts_check`): :func:`check_strategy`,
  :func:`check_risk_rule`, :func:`check_data_source`, :func:`check_broker`;
- the no-lookahead check: :func:`check_no_lookahead`, :func:`assert_no_lookahead`;
- live/backtest parity: :func:`assert_replay_matches_backtest` replays the live cycle over a
  window and compares its trades with the backtest's (first differing decision reported).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .contracts_check import (
    ContractViolation,
    broker_problems,
    check_broker,
    check_data_source,
    check_risk_rule,
    check_strategy,
    data_source_problems,
    risk_rule_problems,
    strategy_problems,
)
from .samples import (
    SHARED_DATA_ENV,
    sample_bars,
    sample_bars_path,
    sample_panel,
    shared_data_dir,
    source_checkout,
    synthetic_panel,
)

if TYPE_CHECKING:  # pragma: no cover
    from .lookahead import LookaheadReport

__all__ = [
    "SHARED_DATA_ENV", "ContractViolation", "assert_no_lookahead",
    "broker_problems", "check_broker", "check_data_source", "check_no_lookahead", "check_risk_rule",
    "check_strategy", "data_source_problems", "risk_rule_problems", "sample_bars", "sample_bars_path",
    "sample_panel", "shared_data_dir", "source_checkout", "strategy_problems", "synthetic_panel",
    "assert_replay_matches_backtest", "check_replay_matches_backtest",
]


def check_no_lookahead(strategy: Any, panel: Any, cut_dates: Sequence[Any] | None = None,
                       n_cuts: int = 8) -> LookaheadReport:
    """Signals up to a date must not change when later bars are removed (see ``testing.lookahead``)."""
    from .lookahead import check_no_lookahead as check

    return check(strategy, panel, cut_dates=cut_dates, n_cuts=n_cuts)


def assert_no_lookahead(strategy: Any, panel: Any, cut_dates: Sequence[Any] | None = None,
                        n_cuts: int = 8) -> LookaheadReport:
    """:func:`check_no_lookahead`, raising ``AssertionError`` at the first difference."""
    from .lookahead import assert_no_lookahead as check

    return check(strategy, panel, cut_dates=cut_dates, n_cuts=n_cuts)


def check_replay_matches_backtest(*args: Any, **kwargs: Any) -> Any:
    """Replay versus backtest for a profile (see :mod:`hybrid_core.testing.parity`)."""
    from .parity import check_replay_matches_backtest as check

    return check(*args, **kwargs)


def assert_replay_matches_backtest(*args: Any, **kwargs: Any) -> Any:
    """:func:`check_replay_matches_backtest`, raising ``AssertionError`` at the first difference."""
    from .parity import assert_replay_matches_backtest as check

    return check(*args, **kwargs)
