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
.venv/bin/hybrid report "$out"
echo
echo "Audit log (order events): $out/order_events.csv   Round trips: $out/round_trips.csv"
echo "State: $out/state.sqlite   Heartbeat: $out/hybrid.health"
echo "Next: .venv/bin/hybrid backtest profiles/demo.yaml --start 2021-01-04 --end 2021-04-21 --out runs/demo-backtest"
echo "      .venv/bin/hybrid report runs/demo-backtest          # the same numbers from the backtest"
echo "      .venv/bin/hybrid dashboard --trades $out/order_events.csv --state $out/state.sqlite --health $out/hybrid.health"
