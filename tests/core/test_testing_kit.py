"""The plugin author's kit: it passes the real components and catches each kind of broken one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import numpy as np
import pandas as pd
import pytest

from hybrid_core import testing
from hybrid_core.builtin.local_data import LocalBars
from hybrid_core.builtin.paper_broker import PaperBroker
from hybrid_core.builtin.risk_rules import MaxOrderValue, StopLoss, TimeStop
from hybrid_core.contracts import OrderRequest, OrderStatus, Panel, Position, RiskRule, Signals, Strategy
from hybrid_core.plugins import build_plugin_host
from hybrid_core.testing import ContractViolation

EQUITIES = ["AAPL", "MSFT", "XOM", "JPM", "INTC", "KO", "PFE", "T", "F", "GE"]


@pytest.fixture(scope="module")
def panel() -> Panel:
    return testing.sample_panel(EQUITIES + ["BTC/USD", "ETH/USD"], start="2020-06-01")


class Losers(Strategy):
    """Buys the worst 5-day loser each day (a small correct strategy)."""

    name = "losers"

    @attrs.define(kw_only=True)
    class Params:
        days: int = 5

    def signals(self, panel: Panel) -> Signals:
        close = panel.close
        ret = close / close.shift(self.params.days) - 1
        worst = ret.rank(axis=1, method="first") == 1
        weight = pd.DataFrame(self.allocation, index=close.index, columns=close.columns)
        return Signals(entry=worst, exit=~worst & close.notna(), keep=worst & False, weight=weight,
                       decided=close.notna().any(axis=1), info={"ret": ret})


class PeeksAhead(Losers):
    """Uses tomorrow's return (lookahead)."""

    name = "peeks"

    def signals(self, panel: Panel) -> Signals:
        signals = super().signals(panel)
        future = panel.close.shift(-1) / panel.close - 1
        signals.entry = (future.rank(axis=1, method="first") == 1) & signals.decided.to_numpy()[:, None]
        signals.exit = ~signals.entry & panel.close.notna()
        return signals


def test_the_installed_strategies_honour_the_contract(panel: Panel) -> None:
    registry = build_plugin_host().registry
    for spec in registry.of_kind("strategy"):
        testing.check_strategy(spec.factory, panel)


def test_a_correct_small_strategy_passes(panel: Panel) -> None:
    assert testing.strategy_problems(Losers, panel, universe=EQUITIES) == []
    testing.check_strategy(Losers(name="x", universe=EQUITIES[:4]), panel)


def test_lookahead_is_caught(panel: Panel) -> None:
    with pytest.raises(ContractViolation, match="peeks.*lookahead: entry on"):
        testing.check_strategy(PeeksAhead, panel, universe=EQUITIES)


def broken(**overrides: Any) -> type[Strategy]:
    """A Losers variant whose Signals has one field replaced by ``overrides[field](signals, panel)``."""

    class Broken(Losers):
        """A deliberately broken strategy."""

        def signals(self, panel: Panel) -> Signals:
            signals = super().signals(panel)
            for field, change in overrides.items():
                setattr(signals, field, change(signals, panel))
            return signals

    return Broken


@pytest.mark.parametrize("overrides, message", [
    ({"entry": lambda s, p: s.entry.astype(float)}, "signals.entry must hold bool columns"),
    ({"exit": lambda s, p: s.exit.iloc[1:]}, "signals.exit: index must be the panel's dates"),
    ({"keep": lambda s, p: s.keep.drop(columns=["AAPL"])}, "signals.keep: columns must be the universe"),
    ({"weight": lambda s, p: s.weight * np.nan}, "signals.weight must be finite wherever entry is True"),
    ({"weight": lambda s, p: s.weight * 3}, "signals.weight must be in (0, 1]"),
    ({"decided": lambda s, p: s.decided.astype(int)}, "signals.decided must have dtype bool"),
    ({"decided": lambda s, p: s.decided & False}, "entries on a date where decided is False"),
    ({"exit_reason": lambda s, p: "because"}, "exit_reason must be one of"),
    ({"exit": lambda s, p: s.entry.copy()}, "entry and exit are both True"),
    ({"info": lambda s, p: {"ret": s.weight.iloc[:3]}}, "signals.info['ret'] must be a DataFrame indexed"),
])
def test_broken_signals_are_caught(panel: Panel, overrides: dict, message: str) -> None:
    problems = testing.strategy_problems(broken(**overrides), panel, universe=EQUITIES)
    assert any(message in p for p in problems), problems


def test_every_problem_is_reported_in_one_pass(panel: Panel) -> None:
    """A same-row entry/exit error does not hide the lookahead (the issue's report), nor a missing docstring."""

    class SameRowAndPeeks(PeeksAhead):
        name = "both"

        def signals(self, panel: Panel) -> Signals:
            signals = super().signals(panel)
            signals.exit = signals.exit | signals.entry
            return signals

    problems = testing.strategy_problems(SameRowAndPeeks, panel, universe=EQUITIES)
    assert problems[0] == "SameRowAndPeeks: add a class docstring (its first line is shown by `hybrid plugins`)"
    assert "entry and exit are both True on the same date and symbol" in problems
    assert any(p.startswith("both: lookahead: ") for p in problems), problems
    with pytest.raises(ContractViolation) as caught:
        testing.check_strategy(SameRowAndPeeks, panel, universe=EQUITIES)
    assert str(caught.value).count("\n  - ") == len(problems) == 3


def test_params_as_a_mapping_or_an_instance(panel: Panel) -> None:
    for params in ({"days": 3}, Losers.Params(days=3)):
        assert testing.strategy_problems(Losers, panel, universe=EQUITIES, params=params) == []
    assert testing.strategy_problems(Losers, panel, universe=EQUITIES, params={"days": "three", "n": 1}) == [
        "params.days: expected a whole number, got 'three'", "params.n: unknown key (allowed: days)"]
    assert testing.strategy_problems(Losers, panel, universe=EQUITIES, params=[3]) == [
        "params must be a mapping or a Losers.Params instance, got list"]
    assert testing.risk_rule_problems(StopLoss, params={"pct": 0.1}) == []
    assert testing.risk_rule_problems(StopLoss, params={"pct": "a lot"}) == [
        "params.pct: expected a number, got 'a lot'"]


def test_a_strategy_failing_only_on_a_cut_panel_is_a_problem_not_a_crash(panel: Panel) -> None:
    class NeedsTheEnd(Losers):
        """Raises unless it sees the last date of the sample."""

        def signals(self, panel: Panel) -> Signals:
            if panel.dates[-1] < pd.Timestamp("2021-04-21"):
                raise ValueError("too short")
            return super().signals(panel)

    (problem,) = testing.strategy_problems(NeedsTheEnd, panel, universe=EQUITIES)
    assert "signals() raised on the panel cut at" in problem and "ValueError: too short" in problem


def test_class_level_problems_are_caught(panel: Panel) -> None:
    class Nameless(Strategy):
        @attrs.define
        class Params:
            needed: int

        def signals(self, panel: Panel) -> Signals:
            raise RuntimeError("never reached")

    problems = testing.strategy_problems(Nameless, panel, universe=EQUITIES)
    assert any("set a class attribute `name" in p for p in problems)
    assert any("add a class docstring" in p for p in problems)
    assert any("give every field a default (missing: needed)" in p for p in problems)


def test_a_strategy_that_raises_or_mutates(panel: Panel) -> None:
    class Raises(Losers):
        """Raises."""

        def signals(self, panel: Panel) -> Signals:
            raise KeyError("close")

    class Mutates(Losers):
        """Writes into the panel."""

        def signals(self, panel: Panel) -> Signals:
            panel.close.iloc[0, 0] = -1.0
            return super().signals(panel)

    assert testing.strategy_problems(Raises, panel, universe=EQUITIES) == [
        "signals(panel) raises KeyError: 'close'"]
    assert "signals() modified the panel it was given; work on copies" in testing.strategy_problems(
        Mutates, panel, universe=EQUITIES)


def test_risk_rules() -> None:
    for rule in (StopLoss, TimeStop, MaxOrderValue, StopLoss(StopLoss.Params(pct=0.2))):
        testing.check_risk_rule(rule)
    for spec in build_plugin_host().registry.of_kind("risk_rule"):
        testing.check_risk_rule(spec.factory)

    class StopAbove(RiskRule):
        """A stop above the entry price (would sell at once)."""

        name = "stop_above"

        def stop_price(self, position: Position) -> float | None:
            return position.entry_price * 1.05

        def time_exit(self, position: Position) -> str | None:
            return True  # type: ignore[return-value]

    problems = testing.risk_rule_problems(StopAbove)
    expected = "stop_price(AAPL @ 134.5) must be None or a price between 0 and the entry"
    assert any(expected in p for p in problems)
    assert "time_exit() must return None or a reason string, got True" in problems
    with pytest.raises(ContractViolation, match="risk rule 'stop_above' breaks the contract"):
        testing.check_risk_rule(StopAbove)

    class EarlyExit(RiskRule):
        """Says it never exits before 5 bars, then exits at 4."""

        name = "early_exit"

        def time_exit(self, position: Position) -> str | None:
            return "old" if position.bars_held >= 4 else None

        def time_exit_bars(self) -> int | None:
            return 5

    assert testing.risk_rule_problems(EarlyExit) == [
        "time_exit() exits a position held 4 bar(s), below its time_exit_bars() 5: the planner would never "
        "ask about it"]


class FrameSource(LocalBars):
    """Returns whatever frame it is given (to break the data contract on purpose)."""

    name = "frame"

    def __init__(self, frame: pd.DataFrame) -> None:
        super().__init__()
        self.frame = frame

    def fetch(self, symbols, start, end):  # type: ignore[no-untyped-def]
        return self.frame


def test_data_sources() -> None:
    source = LocalBars(LocalBars.Params(path=str(testing.sample_bars_path())))
    testing.check_data_source(source, ["AAPL", "BTC/USD", "MSFT"], "2021-01-01", "2021-03-31")
    good = testing.sample_bars(["AAPL", "MSFT"], "2021-01-04", "2021-01-29")
    assert testing.data_source_problems(FrameSource(good), ["AAPL", "MSFT"], "2021-01-04", "2021-01-29") == []

    def problems(frame: pd.DataFrame) -> list[str]:
        return testing.data_source_problems(FrameSource(frame), ["AAPL", "MSFT"], "2021-01-04", "2021-01-29")

    assert problems(good.iloc[::-1]) == ["rows must be sorted by (symbol, date)"]
    assert problems(pd.concat([good, good.iloc[:1]]).sort_values(["symbol", "date"])) == [
        "duplicated (symbol, date) rows"]
    negative = good.copy()
    negative.loc[3, "low"] = -1.0
    assert problems(negative) == [
        "every open/high/low/close must be a positive finite price (drop rows without one)"]
    renamed = problems(good.rename(columns={"close": "Close"}))
    assert renamed[0].startswith("columns must be ['symbol', 'date',")
    integer_volume = good.assign(volume=good["volume"].astype("int64"))
    assert problems(integer_volume) == ["column volume must be float64, got int64"]
    late = good.assign(date=good["date"] + pd.Timedelta(hours=16))
    assert "dates must be normalised (midnight, no time of day)" in problems(late)
    assert problems(good.iloc[:0]) == [
        "fetch() returned no rows for ['AAPL', 'MSFT'] between 2021-01-04 and 2021-01-29"]


def test_the_sample_data_source_serves_the_bundled_bars() -> None:
    """`data: {source: sample}` works wherever hybrid-core is installed (no files of one's own)."""
    from hybrid_core.builtin.sample_data import SampleBars

    source = SampleBars()
    testing.check_data_source(source, ["AAPL", "BTC/USD"], "2021-03-01", "2021-03-31")
    assert source.latest_date(["AAPL"]) == pd.Timestamp("2021-04-21")
    served = source.fetch(["MSFT"], None, None)
    pd.testing.assert_frame_equal(served.assign(symbol=served["symbol"].astype(str)).reset_index(drop=True),
                                  testing.sample_bars(["MSFT"]).reset_index(drop=True))


def test_the_paper_broker_honours_the_contract(tmp_path: Path) -> None:
    broker = PaperBroker()
    testing.check_broker(broker, state_dir=tmp_path)
    assert broker.open_orders() == []
    broker.close()


def test_a_broker_that_is_not_idempotent_is_caught(tmp_path: Path) -> None:
    class Forgetful(PaperBroker):
        """Makes a new order for every submit, raises on unknown ids."""

        name = "forgetful"
        count = 0

        def submit(self, order: OrderRequest) -> OrderStatus:
            Forgetful.count += 1
            return OrderStatus(order.client_order_id, f"b{self.count}", order.symbol, order.side,
                               order.qty, "new")

        def cancel(self, client_order_id: str) -> None:
            raise KeyError(client_order_id)

    problems = testing.broker_problems(Forgetful(), state_dir=tmp_path)
    assert len(problems) == 1
    assert problems[0].startswith("cancel(unknown id) must do nothing, raises KeyError")

    Forgetful.cancel = lambda self, cid: None  # type: ignore[method-assign]
    problems = testing.broker_problems(Forgetful(), state_dir=tmp_path / "2")
    assert any("submit() is not idempotent: the same client_order_id gave two broker orders" in p
               for p in problems)
    assert "get_order(id of a submitted order) must return its OrderStatus" in problems


def test_sample_and_synthetic_panels() -> None:
    sample = testing.sample_panel()
    assert len(sample.symbols) == 42 and {"BTC/USD", "ETH/USD", "AAPL"} <= set(sample.symbols)
    assert sample.dates[0] == pd.Timestamp("2020-01-02") and sample.dates[-1] == pd.Timestamp("2021-04-21")
    # adjusted: AAPL's 4-for-1 split of 2020-08-31 leaves no jump in the adjusted close
    aapl = sample.close["AAPL"].dropna()
    assert abs(aapl.loc["2020-08-31"] / aapl.loc["2020-08-28"] - 1) < 0.1
    synthetic = testing.synthetic_panel(["AAA", "BTC/USD"], start="2021-01-01", end="2021-01-31")
    assert synthetic.close["BTC/USD"].notna().sum() == 31
    assert synthetic.close["AAA"].notna().sum() == 19  # NYSE sessions of January 2021
    assert ((synthetic.high >= synthetic.low) | synthetic.high.isna()).all().all()
    again = testing.synthetic_panel(["AAA", "BTC/USD"], start="2021-01-01", end="2021-01-31")
    pd.testing.assert_frame_equal(synthetic.close, again.close)


def test_data_locations(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    repo = Path(__file__).resolve().parents[2]
    assert testing.source_checkout() == repo  # the editable install of the test setup
    assert testing.shared_data_dir() == repo.parent / "shared" / "data"
    # the sample is package data: inside the installed hybrid_core package, not the checkout's root
    assert testing.sample_bars_path() == repo / "src" / "hybrid_core" / "sample" / "bars.parquet"
    monkeypatch.setenv("HYBRID_SHARED_DATA", str(tmp_path))
    assert testing.shared_data_dir() == tmp_path


def test_shared_data_outside_a_checkout_is_refused_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """From a wheel there is no ../shared: the kit says so instead of pointing into the venv."""
    from hybrid_core.errors import DataError
    from hybrid_core.testing import samples

    monkeypatch.setattr(samples, "source_checkout", lambda: None)
    with pytest.raises(DataError, match=r"only found beside a hybrid source checkout; set HYBRID_SHARED_DATA"):
        testing.shared_data_dir()
    assert len(testing.sample_panel(["AAPL"]).dates) == 328  # the sample needs none of it


def test_lookahead_helpers_are_reexported(panel: Panel) -> None:
    strategy = Losers(name="x", universe=EQUITIES)
    assert testing.check_no_lookahead(strategy, panel, n_cuts=2).ok
    with pytest.raises(AssertionError, match="lookahead"):
        testing.assert_no_lookahead(PeeksAhead(name="p", universe=EQUITIES), panel, n_cuts=2)


def test_the_parity_kit_names_a_plugin_that_failed_to_load(tmp_path: Path) -> None:
    """The author's strategy is 'unknown' because its plugin did not load: the kit says why."""
    import types

    import yaml
    from core_helpers import demo_profile_data

    from hybrid_core import hookimpl
    from hybrid_core.contracts import CONTRACT_VERSION
    from hybrid_core.errors import ProfileError

    broken = types.ModuleType("mine")
    broken.HYBRID_CONTRACT = CONTRACT_VERSION  # type: ignore[attr-defined]

    def hybrid_register_strategies(register):  # type: ignore[no-untyped-def]
        raise AttributeError("module 'pandas' has no attribute 'rolling_mean'")

    broken.hybrid_register_strategies = hookimpl(hybrid_register_strategies)  # type: ignore[attr-defined]
    data = demo_profile_data(tmp_path)
    data["strategies"] = [{"name": "losers", "universe": EQUITIES}]
    profile = tmp_path / "p.yaml"
    profile.write_text(yaml.safe_dump(data))
    with pytest.raises(ProfileError, match=r"unknown strategy 'losers'.*\(plugins that failed to load: mine "
                                           r"\(mine\): AttributeError: module 'pandas' has no attribute"):
        testing.check_replay_matches_backtest(profile, "2021-03-01", "2021-03-31", extra_plugins=[("mine", broken)])
