"""A sweep's worker code in one process: caches, warm folds, failures as outcomes; fold arithmetic."""

from __future__ import annotations

import attrs
import numpy as np
import pandas as pd
import pytest

from hybrid_core.engine.backtest import run_backtest
from hybrid_core.errors import HybridError
from hybrid_core.plugins import build_plugin_host
from hybrid_core.profile import build_components, load_profile
from hybrid_core.research import worker
from hybrid_core.research.grid import ParameterSet
from hybrid_core.research.variant_backtest import DateSpan, backtest_variant, load_bars, strategy_signals
from hybrid_core.research.variants import ProfileVariants, load_variant
from hybrid_core.research.walkforward import WalkForwardSpec, best_set, make_folds

DECILE = "strategies[equity_reversal].params.decile"
STOP = "risk[stop_loss].params.pct"
WINDOW = DateSpan(pd.Timestamp("2020-01-02"), pd.Timestamp("2021-04-21"))


@pytest.fixture
def fresh_cache(monkeypatch: pytest.MonkeyPatch) -> worker.WorkerCache:
    cache = worker.WorkerCache()
    monkeypatch.setattr(worker, "CACHE", cache)
    return cache


@pytest.fixture
def make_task(demo_profile):  # type: ignore[no-untyped-def]
    profile = load_profile(demo_profile())
    variants = ProfileVariants(profile, build_plugin_host().registry)
    versions = worker.worker_versions()

    def make(values: dict, set_id: int = 0, **changes: object) -> worker.SetTask:
        item = ParameterSet.make(set_id, values)
        return worker.SetTask(set_id=set_id, key=item.key, scope="full", profile=variants.variant(values),
                              profile_path=str(profile.path), window=WINDOW, trade=WINDOW, versions=versions,
                              lookahead_cuts=0, **changes)  # type: ignore[arg-type]

    return make


def test_bars_load_once_and_signals_are_shared_by_sets_changing_only_risk(
        fresh_cache: worker.WorkerCache, make_task) -> None:  # type: ignore[no-untyped-def]
    a = worker.run_set(make_task({DECILE: 0.1, STOP: 0.05}))
    b = worker.run_set(make_task({DECILE: 0.1, STOP: 0.10}, set_id=1))
    assert a.ok and b.ok, (a.error, b.error)
    assert fresh_cache.loads == 1 and len(fresh_cache.panels) == 1
    assert len(fresh_cache.signals) == 2  # one per strategy: the stop changed nothing they depend on
    cached = dict(fresh_cache.signals)
    c = worker.run_set(make_task({DECILE: 0.2, STOP: 0.05}, set_id=2))
    assert c.ok and fresh_cache.loads == 1
    assert len(fresh_cache.signals) == 3  # equity_reversal again for the new decile; crypto_adx reused
    assert all(fresh_cache.signals[k] is v for k, v in cached.items())
    assert a.metrics != b.metrics and a.metrics["trades"] > 0
    assert a.returns is not None and a.dates is not None and len(a.returns) == len(a.dates)


def test_a_set_that_fails_is_an_outcome_with_its_error(fresh_cache: worker.WorkerCache, make_task) -> None:  # type: ignore[no-untyped-def]
    outcome = worker.run_set(make_task({"backtest.benchmark": "NOPE"}))
    assert not outcome.ok and outcome.metrics == {}
    assert outcome.error.startswith("backtest.benchmark: no bars for 'NOPE' between 2020-01-02 and 2021-04-21")
    other = make_task({DECILE: 0.1})
    mismatched = attrs.evolve(other, versions={**other.versions, "hybrid-core": "0.0.1"})
    refused = worker.run_set(mismatched)
    assert not refused.ok and refused.error.startswith("this worker has hybrid-core")


def test_the_version_difference_names_what_differs() -> None:
    mine = {"hybrid-core": "0.1.0", "plugins": {"equity_reversal": "hybrid-equity-reversal 0.1.0",
                                               "crypto_adx": "hybrid-crypto-adx 0.1.0"}}
    assert worker.version_difference(mine, mine) is None
    assert worker.version_difference(mine, {**mine, "hybrid-core": "0.2.0"}) == \
        "hybrid-core 0.2.0 (this client: 0.1.0)"
    older = {**mine, "plugins": {**mine["plugins"], "crypto_adx": "hybrid-crypto-adx 0.0.9"}}
    assert worker.version_difference(mine, older) == \
        "plugin 'crypto_adx' from hybrid-crypto-adx 0.0.9 (this client: hybrid-crypto-adx 0.1.0)"
    missing = {**mine, "plugins": {"equity_reversal": "hybrid-equity-reversal 0.1.0"},
               "plugin_errors": {"crypto_adx": "ImportError: no talib"}}
    assert worker.version_difference(mine, missing) == ("no plugin 'crypto_adx' (hybrid-crypto-adx 0.1.0 on this "
                                                        "client; it failed to load: ImportError: no talib)")


def test_a_fold_is_traded_warm(demo_profile) -> None:  # type: ignore[no-untyped-def]
    """Signals computed over all the bars, orders decided only from the fold's first session: the fold's
    first rebalance (Friday 2020-06-05) trades, where a cold start would need 5 earlier sessions and
    wait a week; the decision of Friday 2020-05-29, before the fold, places no order."""
    profile = load_profile(demo_profile())
    components = build_components(profile, build_plugin_host().registry)
    panel = load_bars(profile, components, WINDOW).panel
    signals = {s.name: strategy_signals(s, panel) for s in components.strategies}
    fold = DateSpan(pd.Timestamp("2020-06-01"), pd.Timestamp("2020-09-30"))
    variant = load_variant(ProfileVariants(profile, build_plugin_host().registry).base, profile.path)
    warm = backtest_variant(variant, components, panel, signals, fold)
    assert (warm.equity.index[0], warm.equity.index[-1]) == (pd.Timestamp("2020-06-01"), pd.Timestamp("2020-09-30"))
    cut = panel.select(None, start=fold.start, end=fold.end)
    cold = run_backtest(cut, components.strategies, components.risk_rules, cash=1e6, progress=False)
    first_warm = warm.trades["entry_date"].min()
    first_cold = cold.trades[cold.trades["strategy"] == "equity_reversal"]["entry_date"].min()
    assert first_warm == pd.Timestamp("2020-06-08")
    assert first_cold == pd.Timestamp("2020-06-15")
    assert np.isclose(warm.equity["value"].iloc[0], 1e6)


def test_rolling_and_anchored_folds() -> None:
    dates = pd.bdate_range("2021-01-01", periods=10)
    rolling = make_folds(dates, WalkForwardSpec(4, 3))
    assert [(f.train, f.test) for f in rolling] == [((0, 4), (4, 7)), ((3, 7), (7, 10))]
    assert rolling[0].train_dates == (dates[0], dates[3]) and rolling[0].test_dates == (dates[4], dates[6])
    anchored = make_folds(dates, WalkForwardSpec(4, 4, anchored=True))
    assert [(f.train, f.test) for f in anchored] == [((0, 4), (4, 8)), ((0, 8), (8, 10))]  # last test is short
    with pytest.raises(HybridError, match="needs at least 11 sessions; the window 2021-01-01..2021-01-14 has 10"):
        make_folds(dates, WalkForwardSpec(8, 3))
    assert WalkForwardSpec.parse("train=756,test=252,anchored") == WalkForwardSpec(756, 252, True)
    with pytest.raises(HybridError, match="expected train=N,test=M"):
        WalkForwardSpec.parse("756/252")


def test_the_best_set_skips_failures_and_breaks_ties_by_id() -> None:
    def outcome(set_id: int, sharpe: float | None, ok: bool = True) -> worker.SetOutcome:
        return worker.SetOutcome(set_id=set_id, key=str(set_id), scope="full", ok=ok,
                                 metrics={} if sharpe is None else {"sharpe": sharpe})

    picked = best_set([outcome(3, 1.5), outcome(1, 1.5), outcome(2, 9.0, ok=False), outcome(4, float("nan"))],
                      "sharpe")
    assert picked is not None and picked.set_id == 1
    assert best_set([outcome(0, None)], "sharpe") is None


def test_a_worker_that_cannot_read_the_bars_is_refused_by_name(fresh_cache: worker.WorkerCache,  # type: ignore[no-untyped-def]
                                                                make_task, tmp_path) -> None:
    task = make_task({"data.params.path": str(tmp_path / "missing.parquet")})
    with pytest.raises(HybridError, match=r"^worker tcp://w:1 cannot load the sweep's bars: data file not found: "):
        worker.SweepPreload(task)._load("tcp://w:1")
    mismatched = attrs.evolve(task, versions={**task.versions, "hybrid-core": "9.9"})
    with pytest.raises(HybridError, match=r"^worker tcp://w:1 has hybrid-core .* \(this client: 9.9\); install"):
        worker.SweepPreload(mismatched)._load("tcp://w:1")
    fine = make_task({})
    worker.SweepPreload(fine)._load("tcp://w:1")
    assert fresh_cache.loads == 1 and worker.run_set(fine).ok and fresh_cache.loads == 1  # the set reuses them


def test_a_set_is_backtested_exactly_as_hybrid_backtest_does(fresh_cache: worker.WorkerCache, make_task,  # type: ignore[no-untyped-def]
                                                              demo_profile, tmp_path) -> None:
    """The profile itself as a set, warm start and all, against the backtest command's summary.json."""
    import json

    from click.testing import CliRunner

    from hybrid_core.cli import build_cli

    window = DateSpan(pd.Timestamp("2020-06-01"), pd.Timestamp("2021-04-21"))
    outcome = worker.run_set(attrs.evolve(make_task({}), window=window, trade=window, lookahead_cuts=3))
    assert outcome.ok, outcome.error
    result = CliRunner().invoke(build_cli(), ["backtest", str(demo_profile(name="again.yaml")), "--start",
                                              "2020-06-01", "--end", "2021-04-21", "--out", str(tmp_path / "bt"),
                                              "--no-progress"])
    assert result.exit_code == 0, result.output
    total = json.loads((tmp_path / "bt" / "summary.json").read_text())["total"]
    for name in ("total_return", "cagr", "sharpe", "sortino", "max_drawdown", "trades", "win_rate", "excess_return",
                 "alpha", "beta", "information_ratio", "tracking_error"):
        assert outcome.metrics[name] == total[name], name
    assert outcome.metrics["exposure"] == total["average_exposure"]
    assert outcome.dates is not None and outcome.dates[0] == np.datetime64("2020-06-01")
