"""Panel.select and decision_at: the cheap paths the live cycle takes every session give what the
label-based pandas operations give, and a whole-width window of a panel is not copied."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hybrid_core.account.decisions import decision_at
from hybrid_core.contracts import BAR_COLUMNS, Panel

from .test_backtest import CRYPTO, EQUITIES, strategies, synthetic_panel


@pytest.fixture(scope="module")
def panel() -> Panel:
    return synthetic_panel(seed=11)


def by_labels(panel: Panel, symbols: list[str], start: pd.Timestamp | None, end: pd.Timestamp | None
              ) -> dict[str, pd.DataFrame]:
    """What select means, written with pandas labels: rows in [start, end], columns reindexed,
    dates without any bar of the selection dropped."""
    frames = {name: getattr(panel, name).loc[start:end].reindex(columns=symbols) for name in BAR_COLUMNS}
    keep = frames["close"].notna().any(axis=1)
    return {name: frame.loc[keep] for name, frame in frames.items()}


@pytest.mark.parametrize("case", range(12))
def test_select_equals_the_label_reindex(panel: Panel, case: int) -> None:
    rng = np.random.default_rng(case)
    pool = EQUITIES + CRYPTO + ["NEWCO", "GONE/USD"]
    symbols = list(rng.choice(pool, size=int(rng.integers(1, len(pool))), replace=False))
    if case == 0:
        symbols = list(panel.symbols)  # every column, in order
    dates = panel.dates
    lo, hi = sorted(rng.integers(0, len(dates), size=2))
    start = dates[lo] if case % 3 else None
    end = dates[hi] if case % 4 else None
    got = panel.select(symbols, end=end, start=start)
    want = by_labels(panel, symbols, start, end)
    for name in BAR_COLUMNS:
        pd.testing.assert_frame_equal(getattr(got, name), want[name], check_freq=False, check_column_type=False)
        assert getattr(got, name).columns.name == "symbol" and getattr(got, name).columns.dtype == object


def test_an_equity_selection_keeps_only_equity_sessions(panel: Panel) -> None:
    equities = panel.select(EQUITIES[:3] + ["NEWCO"])
    assert equities.dates.day_of_week.max() <= 4
    assert equities.close["NEWCO"].isna().all()


def test_a_window_of_every_column_shares_the_panels_arrays(panel: Panel) -> None:
    window = panel.select(panel.symbols, start=panel.dates[100], end=panel.dates[200])
    assert len(window.dates) == 101
    for name in BAR_COLUMNS:
        assert np.shares_memory(getattr(window, name).to_numpy(), getattr(panel, name).to_numpy())
    assert panel.select() is panel
    narrower = panel.select(EQUITIES, start=panel.dates[100], end=panel.dates[200])
    assert not np.shares_memory(narrower.close.to_numpy(), panel.close.to_numpy())


def test_decision_at_reads_misaligned_frames_by_label(panel: Panel) -> None:
    """Frames on other columns or dates than ``entry`` give the decision their labels say."""
    for strat in strategies():
        sub = panel.select(strat.universe)
        signals = strat.signals(sub)
        decided = signals.decided[signals.decided].index
        assert len(decided) > 5
        shuffled = list(reversed(signals.weight.columns))
        moved = signals.__class__(
            entry=signals.entry, exit=signals.exit, keep=signals.keep,
            weight=signals.weight[shuffled].iloc[::-1],
            decided=signals.decided, exit_reason=signals.exit_reason,
            info={k: v[shuffled] for k, v in signals.info.items()})
        for date in decided[:5]:
            assert decision_at(moved, date, strat.name) == decision_at(signals, date, strat.name)


def test_a_selection_copies_a_field_only_when_it_is_read(panel: Panel) -> None:
    import tracemalloc

    symbols = list(reversed(panel.symbols)) + ["NEWCO"]  # every column, out of order: a copy
    tracemalloc.start()
    try:
        sub = panel.select(symbols)
        sub.close.to_numpy()
        _, closes_only = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        for name in BAR_COLUMNS:
            getattr(sub, name).to_numpy()
        current, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    field = panel.close.to_numpy().nbytes
    assert closes_only < 3 * field and current > 4 * field
    pd.testing.assert_frame_equal(sub.open, panel.open.reindex(columns=symbols), check_freq=False,
                                  check_column_type=False)


def test_from_long_can_empty_the_long_frame_as_it_fills(panel: Panel) -> None:
    """``consume=True`` gives the same panel and takes the fields out of the long frame (a run's
    load drops the long frame next, so the fields are never all held twice)."""
    bars = panel.to_long()
    kept = Panel.from_long(bars)
    moved = Panel.from_long(bars, consume=True)
    assert list(bars.columns) == ["symbol", "date"]
    for name in BAR_COLUMNS:
        pd.testing.assert_frame_equal(getattr(moved, name), getattr(kept, name))


def test_used_categories_drops_unused_ones_as_pandas_does():
    """The count-based removal keeps the used categories in their order, missing values missing."""
    from hybrid_core.contracts import used_categories

    values = pd.Categorical(["b", None, "d", "b", "a"], categories=["a", "b", "c", "d", "e"])
    got = used_categories(values)
    expected = values.remove_unused_categories()
    assert list(got.categories) == list(expected.categories) == ["a", "b", "d"]
    assert list(got.codes) == list(expected.codes)
    full = pd.Categorical(["a", "b"])
    assert used_categories(full) is full
    assert list(used_categories(pd.Series(values)).categories) == ["a", "b", "d"]


def test_session_codes_match_a_sorted_factorize():
    """Session dates are coded by day number, other timestamps by pandas' factorize: same result."""
    from hybrid_core.contracts import session_codes

    for dates in (pd.to_datetime(["2021-01-05", "2020-12-31", "2021-01-05", "2021-03-01"]),
                  pd.to_datetime(["2021-01-05 10:00", "2021-01-05 00:00", "2021-01-04 23:59"])):
        codes, uniques = session_codes(pd.Series(dates))
        expected_codes, expected = pd.factorize(dates, sort=True)
        assert list(codes) == list(expected_codes)
        assert list(uniques) == list(expected)


def test_session_codes_midnight_check_and_places_are_exact_across_pieces() -> None:
    """The piecewise midnight check, the in-place day codes and the piecewise row places give what the
    whole-array forms give, across piece boundaries (several pieces of SMALL_CHUNK)."""
    from hybrid_core.contracts import SMALL_CHUNK, at_midnight, session_codes
    from hybrid_core.data.files import _places

    rng = np.random.default_rng(7)
    n = 3 * SMALL_CHUNK + 5
    days = pd.Timestamp("2015-01-01") + pd.to_timedelta(rng.integers(0, 2_000, n), unit="D")
    stamps = np.asarray(days, dtype="datetime64[ns]")
    codes, distinct = session_codes(stamps)
    expected, uniques = pd.factorize(pd.DatetimeIndex(stamps), sort=True)
    assert (codes == expected).all() and distinct.equals(pd.DatetimeIndex(uniques))
    raw = stamps.view(np.int64).copy()
    assert at_midnight(raw) and at_midnight(raw[:0])
    for where in (0, SMALL_CHUNK - 1, SMALL_CHUNK, n - 1):
        off = raw.copy()
        off[where] += 1
        assert not at_midnight(off)
    order = rng.permutation(n)
    whole = np.empty(n, dtype=np.intp)
    whole[order] = np.arange(n)
    assert (_places(order) == whole).all()
