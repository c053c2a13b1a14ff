"""End to end: `hybrid dashboard` on a free port, opened in headless Chromium via Playwright."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from dashboard_support import tile_number, tile_tolerance, write_heartbeat
from sample_log import EXPECTED, write_log

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
HYBRID = Path(sys.executable).with_name("hybrid")
NEW_ROUND_TRIP = ("2026-01-15T21:10:00Z,KO,buy,10,60,o-ko1,filled,er-ko-buy,equity_reversal,signal,{}\n"
                  "2026-01-16T21:10:00Z,KO,sell,10,61.5,o-ko2,filled,er-ko-sell,equity_reversal,signal,{}\n")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_healthy(url: str, server: subprocess.Popen, timeout: float = 25.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"dashboard server exited with {server.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=1) as response:
                if response.read().strip() == b"ok":
                    return
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"dashboard server not healthy at {url} after {timeout:.0f} s")


def _require_browser() -> None:
    """Fail (never skip) when the browser or the CLI is missing: CI installs both."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run `apt-get install chromium` (the CI script installs it)")
    if not HYBRID.exists():
        pytest.fail(f"{HYBRID} is missing: run `pip install -e .` in this venv")


@pytest.fixture
def dashboard(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A running `hybrid dashboard` (refreshing every 2 s) on the sample log; yields (url, log)."""
    _require_browser()
    trades = write_log(tmp_path / "trades.csv")
    beat = write_heartbeat(tmp_path / "hybrid.health", mode="paper", cycle=7)
    port = _free_port()
    server = subprocess.Popen(
        [str(HYBRID), "dashboard", "--trades", str(trades), "--health", str(beat), "--port", str(port),
         "--refresh", "2"],
        stdout=subprocess.DEVNULL, stderr=(tmp_path / "server.log").open("w"), start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, server)
        yield url, trades
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)


def _tiles(page) -> dict[str, str]:
    out = {}
    for tile in page.query_selector_all('[data-testid="stMetric"]'):
        label = tile.query_selector('[data-testid="stMetricLabel"]').inner_text().strip()
        out[label] = tile.query_selector('[data-testid="stMetricValue"]').inner_text().strip()
    return out


def _start_report_json(trades: Path) -> subprocess.Popen:
    """`hybrid report --json` in the background (it runs while the browser works)."""
    return subprocess.Popen([str(HYBRID), "report", "--file", str(trades), "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _report_json(process: subprocess.Popen) -> dict:
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    return json.loads(out)


def _assert_tiles_match(tiles: dict[str, str], report: dict) -> None:
    """Each tile, read as a number, equals the report's to the precision the tile shows."""
    for label, key in (("Realised PnL", "realised_pnl"), ("Win rate", "win_rate"), ("Fills", "fills"),
                       ("Round trips", "round_trips"), ("Open positions", "open_position_count")):
        text = tiles[label]
        assert tile_number(text) == pytest.approx(report[key], abs=tile_tolerance(text)), (label, text)


@pytest.mark.browser
def test_dashboard_in_chromium(dashboard: tuple[str, Path], tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    url, trades = dashboard
    started = time.monotonic()
    laps: list[str] = []

    def lap(what: str) -> None:
        laps.append(f"{what} {time.monotonic() - started:.1f}s")

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 2000})
            lap("launch")
            page.goto(url)
            lap("goto")
            page.wait_for_selector('[data-testid="stMetric"]', timeout=45_000)
            lap("tiles")
            page.wait_for_function("document.querySelectorAll('.js-plotly-plot .main-svg').length >= 2",
                                   timeout=45_000)
            lap("charts")
            assert page.locator(".js-plotly-plot .bars path").count() == len(EXPECTED["by_symbol"])
            assert "ONLINE" in page.inner_text("body") and "PAPER" in page.inner_text("body")
            tiles = _tiles(page)
            assert tiles.pop("Unrealised PnL") == "unmarked"  # a bare audit log has no market closes
            first = {k: tile_number(v) for k, v in tiles.items()}  # the hand-worked numbers
            assert first["Realised PnL"] == EXPECTED["realised_pnl"]
            assert (first["Win rate"], first["Fills"]) == (EXPECTED["win_rate"], EXPECTED["trades"])

            # auto-refresh: a new round trip appears without a page reload
            page.evaluate("window.__still_here = 42")
            with trades.open("a", encoding="utf-8") as handle:
                handle.write(NEW_ROUND_TRIP)
            report = _start_report_json(trades)
            page.wait_for_function(
                """() => [...document.querySelectorAll('[data-testid="stMetric"]')].some(
                       t => t.innerText.includes('Fills') && t.innerText.includes('12'))""",
                timeout=45_000)
            page.wait_for_function("document.querySelectorAll('.js-plotly-plot .main-svg').length >= 2",
                                   timeout=30_000)
            lap("refreshed")
            assert page.evaluate("window.__still_here") == 42
            after = _report_json(report)
            assert after["realised_pnl"] == pytest.approx(EXPECTED["realised_pnl"] + 15.0)
            _assert_tiles_match(_tiles(page), after)
            shot = tmp_path / "dashboard.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 10_000
        finally:
            browser.close()
    lap("done")
    print(f"browser timings: {', '.join(laps)}; screenshot {shot}")
