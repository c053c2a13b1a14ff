"""Property-based fuzzing (Hypothesis) of the two inputs a user writes by hand: profiles and bar files.

For any input, the command ends within a time bound with a documented exit code, prints only
``error:`` lines when it fails (no traceback, no internal error), and never leaves partial
output. The default run is derandomised and small (well under a minute); set
``HYPOTHESIS_PROFILE=deep`` for a long exploration.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from bad_inputs import SYMBOLS, bars_profile, good_bars, write_yaml
from core_helpers import demo_profile_data
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hybrid_core import exit_codes

settings.register_profile("default", max_examples=40, deadline=None, derandomize=True, database=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
settings.register_profile("deep", max_examples=2000, deadline=None, database=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

DOCUMENTED = {code for code, _ in exit_codes.TABLE} - {exit_codes.INTERNAL}
TIME_LIMIT_S = 30.0
"""Per command: generous for a shared 2-core machine; a hang (the failure this catches) never ends."""


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Fail the example if the block runs longer than ``seconds`` (SIGALRM interrupts a hang)."""
    def expired(_signum: int, _frame: Any) -> None:
        raise TimeoutError(f"did not finish within {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def run(*args: Any) -> tuple[int, str, str]:
    """``hybrid ARGS`` in this process: exit code, stdout, stderr."""
    from hybrid_core.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), time_limit(TIME_LIMIT_S):
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return code, out.getvalue(), err.getvalue()


def assert_clean_failure(code: int, err: str) -> None:
    """A documented code; a failure is told in ``error:`` lines only."""
    assert code in DOCUMENTED, (code, err[-2000:])
    assert "Traceback" not in err and "internal error" not in err, err[-2000:]
    if code:
        lines = [line for line in err.splitlines() if line.strip() and " | " not in line]
        assert lines and all(line.startswith("error: ") for line in lines), err[-2000:]


# ------------------------------------------------------------------ profiles

KEYS = ["name", "data", "strategies", "risk", "broker", "schedule", "outputs", "backtest", "source",
        "params", "lookback_days", "quality", "allocation", "universe", "id", "at", "timezone", "days",
        "interval_seconds", "cash", "start", "end", "pct", "bars", "value", "decile", "adx_period", "api_key",
        "path", "<<"]
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-10**30, max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
    st.sampled_from(["crypto_adx", "equity_reversal", "paper", "local", "stop_loss", "BTC/USD", "AAPL",
                     "16:10", "2021-01-04", "refuse", "drop", "warn", "../x.parquet", "/dev/zero", ""]))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(KEYS), inner, max_size=5)), max_leaves=25)
profiles = st.dictionaries(st.sampled_from(KEYS), values, max_size=8)

YAML_BITS = ["&a ", "*a", "<<: *a\n", "{", "}", "[", "]", ": ", "- ", "\n", "  ", "!!python/object:os.system ",
             "'", '"', "#", "|\n", "? ", "%YAML 1.1\n", "---\n", "...\n", "\t", "\x00", "\ufeff", "é", "\\u0000",
             "strategies", "name", "crypto_adx", "risk: []\n", "1e999", ".nan", "0x1F", "~", "@"]


def mutate(text: str, cuts: list[tuple[int, int, str]]) -> str:
    """``text`` with each (position, length, insert) splice applied."""
    for pos, length, insert in cuts:
        at = pos % (len(text) + 1)
        text = text[:at] + insert + text[at + length:]
    return text


@given(data=profiles)
def test_any_profile_data_is_validated_with_a_documented_code(tmp_path_factory: pytest.TempPathFactory,
                                                              data: dict[str, Any]) -> None:
    folder = tmp_path_factory.mktemp("fuzz-profile")
    path = folder / "p.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    code, _out, err = run("validate", path)
    assert_clean_failure(code, err)


@given(cuts=st.lists(st.tuples(st.integers(0, 5000), st.integers(0, 40),
                               st.one_of(st.sampled_from(YAML_BITS), st.text(max_size=8))), max_size=6),
       encoding=st.sampled_from(["utf-8", "utf-8", "utf-16", "latin-1"]))
def test_any_edit_of_the_demo_profile_ends_with_a_documented_code(tmp_path_factory: pytest.TempPathFactory,
                                                                  cuts: list[tuple[int, int, str]],
                                                                  encoding: str) -> None:
    folder = tmp_path_factory.mktemp("fuzz-edit")
    text = mutate(yaml.safe_dump(demo_profile_data(folder), sort_keys=False), cuts)
    path = folder / "p.yaml"
    path.write_bytes(text.encode(encoding, errors="replace"))
    code, _out, err = run("validate", path)
    assert_clean_failure(code, err)
    if code == 0:  # what validate accepts, a run must be able to set up
        run_code, _out, run_err = run("run", path, "--once", "--dry-run", "--as-of", "2021-04-16")
        assert run_code in {0, exit_codes.DATA}, run_err[-2000:]
        assert_clean_failure(run_code, run_err)


# ------------------------------------------------------------------ bar files

prices = st.one_of(st.floats(min_value=0.5, max_value=500.0), st.floats(allow_nan=True, allow_infinity=True),
                   st.sampled_from([0.0, -1.0, 1e300, 1e-12, math.nan]))
edits = st.lists(st.tuples(st.integers(0, 10**6), st.sampled_from(["open", "high", "low", "close", "volume",
                                                                      "symbol", "date", "dup", "drop"]),
                           prices, st.sampled_from(["", "AAPL", "MSFT", "BTC/USD", "symbol", " AAPL"]),
                           st.sampled_from(["2020-09-19", "2031-01-05", "1700-01-01", "09/15/2020",
                                            "2020-09-15T12:00:00+02:00", "nonsense", "", "date"])),
                 max_size=8)


def edited_bars(base: pd.DataFrame, changes: list[tuple[int, str, float, str, str]]) -> pd.DataFrame:
    """``base`` with each change applied to one row (a value, a symbol, a date, a duplicate, a drop)."""
    frame = base.astype({"date": object}).copy()
    frame["date"] = pd.DatetimeIndex(base["date"]).strftime("%Y-%m-%d")
    for row, column, number, symbol, date in changes:
        i = frame.index[row % len(frame)]
        if column == "symbol":
            frame.loc[i, "symbol"] = symbol
        elif column == "date":
            frame.loc[i, "date"] = date
        elif column == "dup":
            frame = pd.concat([frame, frame.loc[[i]].assign(close=number)], ignore_index=True)
        elif column == "drop":
            frame = frame.drop(index=i).reset_index(drop=True)
        else:
            frame.loc[i, column] = number
    return frame


@pytest.fixture(scope="module")
def base_bars() -> pd.DataFrame:
    return good_bars()


def _write(frame: pd.DataFrame, path: Path) -> None:
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)


@given(changes=edits, suffix=st.sampled_from([".csv", ".parquet"]),
       policy=st.sampled_from([None, "refuse", "drop", "warn"]))
@settings(max_examples=25)
def test_any_bar_file_gives_a_documented_code_and_never_partial_output(
        tmp_path_factory: pytest.TempPathFactory, base_bars: pd.DataFrame,
        changes: list[tuple[int, str, float, str, str]], suffix: str, policy: str | None) -> None:
    folder = tmp_path_factory.mktemp("fuzz-bars")
    bars = folder / f"bars{suffix}"
    _write(edited_bars(base_bars, changes), bars)
    extra = {"quality": policy} if policy else {}
    profile = write_yaml(bars_profile(folder, bars, **extra), folder / "p.yaml")
    out = folder / "out"
    code, _stdout, err = run("backtest", profile, "--start", "2020-06-01", "--end", "2020-12-31", "--out", out,
                             "--lookahead-cuts", "0", "--no-progress")
    assert_clean_failure(code, err)
    written = sorted(p.name for p in out.iterdir()) if out.exists() else []
    assert written in ([], ["equity.csv", "report.html", "round_trips.csv", "summary.json"]), written
    assert (code == 0) == bool(written), (code, written, err[-1000:])
    assert [p.name for p in folder.iterdir() if p.name.startswith(".")] == []  # no staging folder left


@given(data=st.binary(max_size=3000), head=st.sampled_from([b"", b"symbol,date,open,high,low,close,volume\n",
                                                            b"PAR1", b"\xef\xbb\xbf", b"\xff\xfe"]),
       suffix=st.sampled_from([".csv", ".parquet", ".txt", ".gz"]))
def test_any_bytes_as_a_bar_file_are_read_or_refused_in_one_line(tmp_path_factory: pytest.TempPathFactory,
                                                                 data: bytes, head: bytes, suffix: str) -> None:
    from hybrid_core.data.files import read_bars_file
    from hybrid_core.data.quality import gate_bars
    from hybrid_core.errors import DataError

    path = tmp_path_factory.mktemp("fuzz-bytes") / f"bars{suffix}"
    path.write_bytes(head + data)
    with time_limit(TIME_LIMIT_S):
        try:
            bars = gate_bars(read_bars_file(path, SYMBOLS), policy="drop", log=False).bars
        except DataError as exc:
            assert "\n" not in str(exc) and str(path) in str(exc)
            return
    assert list(bars.columns) == ["symbol", "date", "open", "high", "low", "close", "volume"]
    block = bars[["open", "high", "low", "close"]].to_numpy()
    assert np.isfinite(block).all() and (block > 0).all()
    assert not bars.duplicated(["symbol", "date"]).any()
