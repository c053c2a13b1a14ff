#!/usr/bin/env bash
# Create .venv and install hybrid: the core and the four plugin packages (editable).
#   scripts/setup.sh          runtime only
#   scripts/setup.sh --test   plus test tools (pytest, playwright, streamlit) and, as root,
#                             Debian's chromium for the dashboard's browser test, shellcheck and
#                             promtool (package prometheus) for the alert rules
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
VENV="${VENV:-.venv}"
with_tests=0
[ "${1:-}" = "--test" ] && with_tests=1

if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --upgrade pip
extras=""
[ "$with_tests" = 1 ] && extras="[test,dashboard]"
stamp="$VENV/.hybrid-installed$extras"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ -n "$(find plugins -name pyproject.toml -newer "$stamp")" ]; then
  "$VENV/bin/python" -m pip install --quiet -e ".$extras" \
    -e plugins/equity_reversal -e plugins/crypto_adx -e plugins/alpaca_broker -e plugins/backtrader_bridge
  touch "$stamp"
fi

if [ "$with_tests" = 1 ]; then
  need=()
  command -v chromium >/dev/null 2>&1 || need+=(chromium)
  command -v shellcheck >/dev/null 2>&1 || need+=(shellcheck)
  command -v promtool >/dev/null 2>&1 || need+=(prometheus)   # promtool checks deploy/prometheus-rules.yaml
  if [ "${#need[@]}" -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
      echo "installing Debian packages: ${need[*]}"
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
    else
      echo "warning: ${need[*]} missing; install with: sudo apt-get install ${need[*]}" >&2
    fi
  fi
fi
echo "hybrid installed in $VENV ($("$VENV/bin/hybrid" --version))"
