"""One account model: every tool tells the same truth about one run.

The shipped demo is replayed and backtested over the same window; the replay's summary line,
`hybrid report --json` on the replay folder and on the backtest folder, and the dashboard's
tiles (the real Streamlit page) must agree on round trips, realised PnL, open positions and
their unrealised PnL. Then profiles with vetoing rules and guards replay as they backtest.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from parity_support import equity_symbols
from streamlit.testing.v1 import AppTest
from test_replay_parity import assert_same_trades, hybrid, read_trades

from hybrid_core import hookimpl
from hybrid_core.commands.dashboard import APP
from hybrid_core.contracts import CONTRACT_VERSION, RiskRule
from hybrid_core.sample import EQUITY_UNIVERSE, sample_file
from hybrid_core.testing import sample_bars_path

REPO = Path(__file__).resolve().parents[2]
DEMO_START, DEMO_END = "2021-01-04", "2021-04-21"
SUMMARY = re.compile(r"(\d+) round trip\(s\) .*?, realised PnL (-?[\d,]+\.\d\d); "
                     r"(\d+) open, unrealised (-?[\d,]+\.\d\d)")


def _money(text: str) -> float:
    return float(text.replace(",", ""))


def demo_profile(tmp_path: Path) -> Path:
    profile = yaml.safe_load((REPO / "profiles" / "demo.yaml").read_text())
    profile["data"]["params"]["path"] = str(sample_bars_path())
    profile["strategies"][0]["universe"] = str(sample_file(EQUITY_UNIVERSE))
    profile["outputs"] = {"trade_log": str(tmp_path / "o.csv"), "health_file": str(tmp_path / "h.health"),
                          "state_db": str(tmp_path / "s.sqlite")}
    profile["risk"] = [r for r in profile["risk"] if r["name"] != "kill_switch"]
    path = tmp_path / "demo.yaml"
    path.write_text(yaml.safe_dump(profile, sort_keys=False))
    return path


def dashboard_tiles(monkeypatch: pytest.MonkeyPatch, folder: Path) -> dict[str, str]:
    monkeypatch.setattr(sys, "argv", [str(APP), "--trades", str(folder / "order_events.csv"),
                                      "--state", str(folder / "state.sqlite"),
                                      "--health", str(folder / "hybrid.health")])
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    assert not at.exception, [e.value for e in at.exception]
    return {m.label: m.value for m in at.metric}


def test_the_demo_numbers_agree_across_every_tool(tmp_path, monkeypatch):
    profile = demo_profile(tmp_path)
    run, bt = tmp_path / "replay", tmp_path / "bt"
    replayed = hybrid("replay", str(profile), "--start", DEMO_START, "--end", DEMO_END, "--out", str(run),
                      "--compare-backtest", "--log-level", "ERROR")
    assert "replay matches the backtest" in replayed.stdout
    hybrid("backtest", str(profile), "--start", DEMO_START, "--end", DEMO_END, "--out", str(bt))
    closed, realised, still_open, unrealised = SUMMARY.search(replayed.stdout).groups()  # type: ignore[union-attr]
    from_run = json.loads(hybrid("report", str(run), "--json").stdout)
    from_backtest = json.loads(hybrid("report", str(bt), "--json").stdout)
    tiles = dashboard_tiles(monkeypatch, run)

    assert int(closed) > 10 and int(still_open) > 0  # a window with both kinds, or nothing is tested
    for report in (from_run, from_backtest):
        assert report["round_trips"] == int(closed)
        assert report["realised_pnl"] == pytest.approx(_money(realised), abs=0.005)
        assert report["open_position_count"] == int(still_open)
        assert report["unrealised_pnl"] == pytest.approx(_money(unrealised), abs=0.005)
    assert from_run["realised_pnl"] == pytest.approx(from_backtest["realised_pnl"], rel=1e-9)
    assert from_run["unrealised_pnl"] == pytest.approx(from_backtest["unrealised_pnl"], rel=1e-9)
    assert [(p["symbol"], p["qty"], p["mark"]) for p in from_run["open_positions"]] == \
        [(p["symbol"], p["qty"], p["mark"]) for p in from_backtest["open_positions"]]
    assert from_run["marks_as_of"] == DEMO_END and not from_run["notes"]
    assert tiles["Round trips"] == closed and tiles["Open positions"] == still_open
    assert tiles["Realised PnL"].replace("$", "") == realised
    assert tiles["Unrealised PnL"].replace("$", "") == unrealised
    # the round-trip tables of the two engines are the same trades
    assert_same_trades(read_trades(run / "round_trips.csv"), read_trades(bt / "round_trips.csv"))


class VetoEveryThirdEntry(RiskRule):
    """A third party's rule: refuses the entries of symbols whose name sorts into every third bucket."""

    name = "veto_every_third"

    def vet(self, order, context):  # type: ignore[no-untyped-def]
        if order.side == "buy" and sum(map(ord, order.symbol)) % 3 == 0:
            return f"{order.symbol} is not traded by this desk"
        return None


class VetoPlugin:
    HYBRID_CONTRACT = CONTRACT_VERSION

    @hookimpl
    def hybrid_register_risk_rules(self, register):  # type: ignore[no-untyped-def]
        register(VetoEveryThirdEntry)


def test_replay_equals_backtest_with_vetoing_rules_and_guards(tmp_path, make_profile):
    from hybrid_core.testing.parity import check_replay_matches_backtest

    risk = [{"name": "stop_loss"}, {"name": "time_stop"},
            {"name": "max_order_value", "params": {"value": 236_000}},
            {"name": "max_open_positions", "params": {"limit": 4}},
            {"name": "max_drawdown", "params": {"pct": 0.04}}, {"name": "veto_every_third"}]
    profile = make_profile("veto", equity_symbols(30), ["BTC/USD", "ETH/USD"], risk=risk)
    report = check_replay_matches_backtest(profile, "2019-06-03", "2019-10-31", workdir=tmp_path / "w",
                                           extra_plugins=[("veto", VetoPlugin())])
    assert report.difference is None, report.difference.describe()
    trades = report.backtest_trades
    assert len(trades) > 10
    log = pd.read_csv(tmp_path / "w" / "order_events.csv")
    refused = log[log["status"] == "refused"]["signal"].astype(str)
    for rule in ("max_order_value", "max_open_positions", "veto_every_third"):
        assert refused.str.contains(rule).any(), f"{rule} never refused an order: nothing was tested"


def test_risk_rules_never_block_an_exit(tmp_path, make_profile):
    """Sells worth more than max_order_value still go out on time (the issue's case, where time-stop
    sells of 177-180k were refused day after day under a 176k cap)."""
    cap = 205_000  # entries of 20% of ~1M pass it; a position that then gains is worth more
    symbols = equity_symbols(50)
    runs = {}
    for name, extra in (("capped", [{"name": "max_order_value", "params": {"value": cap}}]), ("free", [])):
        profile = make_profile(name, symbols, risk=[{"name": "stop_loss"}, {"name": "time_stop"}, *extra],
                               strategies=[{"name": "equity_reversal", "allocation": 1.0, "universe": symbols}])
        hybrid("backtest", str(profile), "--start", "2019-01-02", "--end", "2019-12-31", "--out", str(tmp_path / name))
        runs[name] = read_trades(tmp_path / name / "round_trips.csv").set_index(["symbol", "entry_date"])
    capped, free = runs["capped"], runs["free"]
    closed = capped[capped["exit_reason"] != "end_of_data"]
    assert (closed["qty"] * closed["exit_price"] > cap).sum() >= 3  # exits the cap would have refused
    assert len(capped) < len(free)  # the cap did refuse entries
    # a position both runs opened (same name, same day) leaves exactly when and why in both
    both = capped.index.intersection(free.index)
    assert len(both) >= 10
    assert (free.loc[both, "exit_date"] == capped.loc[both, "exit_date"]).all()
    assert (free.loc[both, "exit_reason"] == capped.loc[both, "exit_reason"]).all()


def test_a_replay_into_a_folder_made_for_another_window_is_refused(tmp_path):
    profile = demo_profile(tmp_path)
    out = tmp_path / "replay"
    hybrid("replay", str(profile), "--start", "2021-04-12", "--end", "2021-04-16", "--out", str(out),
           "--log-level", "ERROR")
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.suffix == ".csv"}
    proc = hybrid("replay", str(profile), "--start", "2020-06-01", "--end", "2020-07-01", "--out", str(out),
                  "--log-level", "ERROR", check=False)
    assert proc.returncode != 0
    (line,) = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert "2021-04-12..2021-04-16" in line and "2020-06-01..2020-07-01" in line and "--out" in line
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.suffix == ".csv"} == before
    # the same window resumes (nothing left to do) and leaves the round trips as they were
    again = hybrid("replay", str(profile), "--start", "2021-04-12", "--end", "2021-04-16", "--out", str(out),
                   "--log-level", "ERROR")
    assert "resumed: 5 already done" in again.stdout
    assert (out / "round_trips.csv").read_bytes() == before["round_trips.csv"]


def test_a_parity_check_of_zero_trades_says_so(tmp_path):
    profile = demo_profile(tmp_path)
    proc = hybrid("replay", str(profile), "--start", "2021-04-19", "--end", "2021-04-20", "--warmup", "0",
                  "--out", str(tmp_path / "r"), "--compare-backtest", "--log-level", "ERROR", check=False)
    assert proc.returncode == 1
    assert "both made 0 trades: nothing was compared" in proc.stdout
