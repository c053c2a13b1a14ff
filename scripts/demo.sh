#!/usr/bin/env bash
# The offline demo: installs hybrid, replays 15 weeks of paper trading on the bundled real
# bars (40 equities + BTC/ETH), checks it against the backtest, prints the report.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
out="${DEMO_OUT:-runs/demo}"
rm -rf "$out"
.venv/bin/hybrid validate profiles/demo.yaml
.venv/bin/hybrid replay profiles/demo.yaml --start 2021-01-04 --end 2021-04-21 --out "$out" \
  --compare-backtest --log-level ERROR
.venv/bin/hybrid report --file "$out/trades.csv"
echo
echo "Trade log: $out/trades.csv   State: $out/state.sqlite   Heartbeat: $out/hybrid.health"
echo "Next: .venv/bin/hybrid backtest profiles/demo.yaml --start 2020-01-02 --end 2021-04-21 --out runs/demo-backtest"
echo "      .venv/bin/hybrid dashboard --trades $out/trades.csv --health $out/hybrid.health"
