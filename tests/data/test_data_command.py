"""``hybrid data update`` and ``hybrid data status`` on a yfinance profile, Yahoo faked."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from hybrid_core.cli import build_cli

PROFILE = """\
name: data-test
data:
  source: yfinance
  params: {{cache_dir: {cache}, progress: false}}
strategies:
  - {{name: equity_reversal, allocation: 0.7, universe: [AAPL, BRK.B]}}
  - {{name: crypto_adx, allocation: 0.3, universe: [BTC/USD]}}
"""


def write_profile(tmp_path: Path) -> Path:
    path = tmp_path / "profile.yaml"
    path.write_text(PROFILE.format(cache="cache/bars"))  # relative to the profile's folder
    return path


def test_update_then_status(fake_yahoo, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    profile = write_profile(tmp_path)
    runner = CliRunner()
    result = runner.invoke(build_cli(), ["data", "update", str(profile), "--start", "2020-10-01",
                                 "--end", "2020-11-27"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "3 symbol(s)" in result.output and "3 downloaded" in result.output
    assert sorted(t for t, _ in fake_yahoo.history_requests) == ["AAPL", "BRK-B", "BTC-USD"]
    assert (tmp_path / "cache" / "bars" / "BRK.B.parquet").exists()

    result = runner.invoke(build_cli(), ["data", "status", str(profile), "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    rows = {r["symbol"]: r for r in json.loads(result.output)["symbols"]}
    assert rows["AAPL"]["first"] == "2020-10-01" and rows["AAPL"]["last"] == "2020-11-27"
    assert rows["BTC/USD"]["last"] == "2020-11-27"
    assert rows["BTC/USD"]["rows"] == 58 - 3  # 58 UTC days, 3 lost by the source

    table = runner.invoke(build_cli(), ["data", "status", str(profile)], catch_exceptions=False).output
    assert "BRK.B" in table and "2020-11-27" in table


def test_status_of_an_empty_cache_says_how_to_fill_it(tmp_path: Path) -> None:
    profile = write_profile(tmp_path)
    result = CliRunner().invoke(build_cli(), ["data", "status", str(profile)], catch_exceptions=False)
    assert result.exit_code == 0
    assert "3 of 3 symbol(s) not cached; run `hybrid data update" in result.output


def test_update_reports_symbols_without_bars(fake_yahoo, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    profile = write_profile(tmp_path)
    result = CliRunner().invoke(build_cli(), ["data", "update", str(profile), "--symbols", "AAPL,NOPE",
                                      "--start", "2020-10-01", "--end", "2020-11-27"])
    assert result.exit_code == 7
    assert "no bars for: NOPE" in result.output


def test_a_local_profile_reports_what_its_files_cover(tmp_path: Path, raw_bars) -> None:  # type: ignore[no-untyped-def]
    raw_bars.to_parquet(tmp_path / "bars.parquet", index=False)
    path = tmp_path / "local.yaml"
    path.write_text("data: {source: local, params: {path: bars.parquet}}\n"
                    "strategies: [{name: crypto_adx, universe: [BTC/USD, ETH/USD, DOGE/USD]}]\n")
    result = CliRunner().invoke(build_cli(), ["data", "status", str(path), "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    status = json.loads(result.stdout)
    rows = {r["symbol"]: r for r in status["symbols"]}
    assert rows["BTC/USD"]["first"] == str(raw_bars["date"].min().date())
    assert rows["BTC/USD"]["missing"] == 3 and rows["DOGE/USD"]["bars"] == 0  # the source lost 3 days
    assert status["summary"].startswith("2 of 3 symbol(s) with bars") and "no bars for DOGE/USD" in status["summary"]
    update = CliRunner().invoke(build_cli(), ["data", "update", str(path)], catch_exceptions=False)
    assert update.exit_code == 0 and "nothing to fetch" in update.output
