"""`hybrid sweep` end to end on real Dask clusters: whole `hybrid` processes, real worker processes.

- 1 worker and 2 workers (one of them killed with SIGKILL when the sweep reports that it started a
  set) give byte-identical results;
- a rerun into the same folder skips finished sets, runs only new ones, and adds a walk-forward
  analysis; the report shows it all;
- on a real cluster (`dask scheduler` + `dask worker` processes) a failing set is recorded and the
  sweep goes on, and a worker with other plugin versions is refused in one line.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from research_helpers import demo_profile_data

HYBRID = Path(sys.executable).with_name("hybrid")
DASK = Path(sys.executable).with_name("dask")
DECILE = "strategies[equity_reversal].params.decile"
STOP = "risk[stop_loss].params.pct"
BARS = "risk[time_stop].params.bars"
GRID = {"method": "grid", "metric": "sharpe", "pbo_partitions": 8,
        "parameters": {DECILE: [0.1, 0.2], STOP: [0.05, 0.1], BARS: [5, 10]}}
WINDOW = ["--start", "2020-01-02", "--end", "2021-04-21", "--no-progress"]
STARTED = re.compile(r"set (?P<set>\d+) \(full\) started on worker (?P<worker>\S+) \(pid (?P<pid>\d+)\)")
ENV_KEYS = ("HYBRID_DISABLE_PLUGINS", "HYBRID_STRICT_PLUGINS", "HYBRID_DEBUG")


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ENV_KEYS}
    env.update(extra)
    return env


def _write(folder: Path, grid: dict) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    profile, grid_path = folder / "profile.yaml", folder / "grid.yaml"
    profile.write_text(yaml.safe_dump(demo_profile_data(), sort_keys=False))
    grid_path.write_text(yaml.safe_dump(grid, sort_keys=False))
    return profile, grid_path


def sweep(profile: Path, grid: Path, out: Path, *args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([str(HYBRID), "sweep", str(profile), str(grid), "--out", str(out), *WINDOW, *args],
                          capture_output=True, text=True, timeout=timeout, env=_env(), cwd=out.parent)


def journal(out: Path, sql: str, *params: object) -> list[tuple]:
    with sqlite3.connect(out / "sweep.sqlite") as conn:
        return conn.execute(sql, params).fetchall()


def _kill_first_started_worker(proc: subprocess.Popen) -> tuple[tuple[int, int] | None, list[tuple[int, int]],
                                                                  list[str]]:
    """Read the sweep's log lines; SIGKILL the worker of the first set it reports started."""
    killed: tuple[int, int] | None = None
    started: list[tuple[int, int]] = []
    lines: list[str] = []
    assert proc.stderr is not None
    for line in proc.stderr:
        lines.append(line)
        match = STARTED.search(line)
        if match is None:
            continue
        started.append((int(match["set"]), int(match["pid"])))
        if killed is None:  # its worker dies while running it
            os.kill(int(match["pid"]), signal.SIGKILL)
            killed = started[-1]
    return killed, started, lines


def test_one_and_two_workers_a_killed_worker_and_a_rerun(tmp_path: Path) -> None:
    """One sweep on 1 worker, the same on 2 workers with one killed mid-sweep (identical files), then a
    rerun into the second folder with a larger grid and a walk-forward (only the new sets run)."""
    profile, grid = _write(tmp_path, GRID)
    one, two = tmp_path / "one", tmp_path / "two"
    first = sweep(profile, grid, one, "--workers", "1")
    assert first.returncode == 0, first.stderr
    assert "8 sets (8 run, 0 already finished, 0 failed)" in first.stdout

    proc = subprocess.Popen([str(HYBRID), "sweep", str(profile), str(grid), "--out", str(two), *WINDOW,
                             "--workers", "2", "--log-level", "INFO"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(), cwd=tmp_path)
    watchdog = threading.Timer(240, proc.kill)
    watchdog.start()
    try:
        killed, started, log = _kill_first_started_worker(proc)
        stdout = proc.stdout.read() if proc.stdout else ""
        code = proc.wait(timeout=30)
    finally:
        watchdog.cancel()
    assert code == 0, stdout
    assert killed is not None
    assert "8 sets (8 run, 0 already finished, 0 failed)" in stdout
    killed_set, killed_pid = killed
    (finisher,), = journal(two, "SELECT pid FROM sets WHERE scope = 'full' AND set_id = ?", killed_set)
    assert finisher != killed_pid  # the killed worker's set ran again on another worker
    assert any(s == killed_set and p != killed_pid for s, p in started)
    lost = [re.search(r"left the cluster unexpectedly with set\(s\) ([\d, ]+) assigned", line) for line in log]
    assert [str(killed_set) in m[1].split(", ") for m in lost if m] == [True]  # one warning, naming the set
    assert (two / "results.csv").read_bytes() == (one / "results.csv").read_bytes()
    pd.testing.assert_frame_equal(pd.read_parquet(two / "returns.parquet"), pd.read_parquet(one / "returns.parquet"))
    summaries = [json.loads((out / "sweep.json").read_text()) for out in (one, two)]
    for key in ("best", "pbo", "deflated_sharpe", "benchmark"):
        assert summaries[0][key] == summaries[1][key], key
    assert killed_pid not in {w["pid"] for w in summaries[1]["cluster"]["workers"] if w["alive"]}
    assert summaries[1]["counts"]["workers_lost"] == 1 and summaries[0]["counts"]["workers_lost"] == 0
    assert [w["bar_loads"] for w in summaries[0]["cluster"]["workers"]] == [1]  # bars loaded once for 8 sets

    _check_rerun_with_walk_forward(tmp_path, one_worker=one, out=two)


def _check_rerun_with_walk_forward(tmp_path: Path, *, one_worker: Path, out: Path) -> None:
    """A larger grid into a finished folder: only the new sets run; then the walk-forward's files."""
    grid = {**GRID, "parameters": {**GRID["parameters"], DECILE: [0.1, 0.2, 0.3]}}
    profile, grid_path = _write(tmp_path / "larger", grid)
    proc = sweep(profile, grid_path, out, "--walk-forward", "train=200,test=100")
    assert proc.returncode == 0, proc.stderr
    assert "12 sets (4 run, 8 already finished, 0 failed)" in proc.stdout
    old = pd.read_csv(one_worker / "results.csv")
    new = pd.read_csv(out / "results.csv")
    pd.testing.assert_frame_equal(new.iloc[:8].reset_index(drop=True), old)
    assert new["equity_reversal.decile"].tolist() == [0.1] * 4 + [0.2] * 4 + [0.3] * 4

    folds = pd.read_csv(out / "walk_forward.csv", parse_dates=["train_start", "train_end", "test_start", "test_end"])
    dates = pd.read_parquet(out / "returns.parquet")["date"]
    assert len(folds) == 3 and (folds["note"].isna()).all()
    for _, fold in folds.iterrows():  # the best training Sharpe was chosen, among every set's training run
        scope = f"train {fold['train_start'].date()}..{fold['train_end'].date()}"
        rows = journal(out, "SELECT set_id, metrics FROM sets WHERE scope = ? AND ok = 1", scope)
        assert len(rows) == 12
        best = max(rows, key=lambda r: (json.loads(r[1])["sharpe"], -r[0]))
        assert fold["set_id"] == best[0]
        after = dates[dates > fold["train_end"]].iloc[0]
        assert fold["test_start"] == after  # no gap between training and test
    oos = pd.read_csv(out / "oos_equity.csv", parse_dates=["date"])
    chained = [1e6]
    for _, fold in folds.iterrows():
        scope = f"test {fold['test_start'].date()}..{fold['test_end'].date()}"
        (returns,), = journal(out, "SELECT returns FROM sets WHERE scope = ?", scope)
        r = np.frombuffer(returns, dtype="float64")
        chained.extend((chained[-1] * np.cumprod(1 + r)).tolist())
    np.testing.assert_allclose(oos["value"].to_numpy(), chained[1:], rtol=1e-9)
    summary = json.loads((out / "sweep.json").read_text())
    assert summary["walk_forward"]["total"]["final_value"] == pytest.approx(chained[-1], rel=1e-9)
    assert summary["counts"]["walk_forward_ran"] == 3 * 12 + 3

    page = (out / "report.html").read_text()
    for part in ('id="fig-heatmap"', 'id="heat-x"', "Top sets by sharpe", 'id="fig-distribution"',
                 "Deflated Sharpe Ratio", "Probability of Backtest Overfitting", 'id="fig-best_equity"',
                 'id="fig-walk_forward"', "Walk-forward train=200,test=100", "equal-weight buy-and-hold"):
        assert part in page, part
    assert "<script src=" not in page  # self-contained


@pytest.fixture
def scheduler(tmp_path: Path) -> Iterator[tuple[str, list[subprocess.Popen]]]:
    """A real `dask scheduler` process; yields its address and a list for worker processes to stop."""
    file = tmp_path / "scheduler.json"
    procs = [subprocess.Popen([str(DASK), "scheduler", "--scheduler-file", str(file), "--port", "0",
                               "--no-dashboard"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_env())]
    try:
        deadline = time.monotonic() + 60
        while not file.exists() or not file.read_text().strip():
            assert time.monotonic() < deadline, "dask scheduler did not start"
            time.sleep(0.1)
        yield json.loads(file.read_text())["address"], procs
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


def _worker(address: str, **env: str) -> subprocess.Popen:
    return subprocess.Popen([str(DASK), "worker", address, "--nthreads", "1", "--no-dashboard"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_env(**env))


def _wait_for_workers(address: str, count: int) -> None:
    from distributed import Client

    with Client(address, timeout="30s") as client:
        client.wait_for_workers(count, timeout=90)


def test_a_real_cluster_records_failing_sets_and_refuses_other_versions(
        tmp_path: Path, scheduler: tuple[str, list[subprocess.Popen]]) -> None:
    address, procs = scheduler
    procs.append(_worker(address))
    _wait_for_workers(address, 1)
    grid = {"parameters": {"backtest.benchmark": ["universe", "NOPE", "BTC/USD"]}}
    profile, grid_path = _write(tmp_path, grid)
    out = tmp_path / "out"
    proc = sweep(profile, grid_path, out, "--scheduler", address, "--lookahead-cuts", "0")
    assert proc.returncode == 0, proc.stderr
    assert "3 sets (3 run, 0 already finished, 1 failed)" in proc.stdout
    results = pd.read_csv(out / "results.csv")
    failed = results[results["status"] == "failed"]
    assert failed["backtest.benchmark"].tolist() == ["NOPE"]
    assert failed["error"].iloc[0].startswith("backtest.benchmark: no bars for 'NOPE' between 2020-01-02")
    assert results.loc[results["status"] == "ok", "sharpe"].nunique() == 1  # the benchmark changes no trade
    assert json.loads((out / "sweep.json").read_text())["cluster"]["scheduler"] == address

    procs.append(_worker(address, HYBRID_DISABLE_PLUGINS="crypto_adx"))
    _wait_for_workers(address, 2)
    refused = sweep(profile, grid_path, tmp_path / "out2", "--scheduler", address)
    assert refused.returncode == 2  # a worker of other versions: invalid set-up (exit_codes.USAGE), not a bug
    errors = [line for line in refused.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, refused.stderr
    assert re.fullmatch(r"error: worker tcp://\S+ has no plugin 'crypto_adx' \(hybrid-crypto-adx \S+ on this "
                        r"client\); install the same hybrid and plugin versions on every worker "
                        r"\(docs/sweeps.md\)", errors[0]), errors[0]
    assert not (tmp_path / "out2" / "results.csv").exists()
