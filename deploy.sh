#!/usr/bin/env bash
# deploy.sh: update hybrid on a server and restart its systemd service.
#
# Steps: git pull (fast-forward only) -> venv -> dependencies (core + the four plugins)
#        -> full test suite (aborts the deploy on failure) -> mypy (warning only)
#        -> systemctl restart hybrid-trader.
# See docs/operations.md. Run ./deploy.sh --help for the options.
set -euo pipefail

REPO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${HYBRID_VENV:-$REPO_DIR/.venv}"
PYTHON="${HYBRID_PYTHON:-python3}"
SERVICE="${HYBRID_SERVICE:-hybrid-trader}"
PLUGINS=(equity_reversal crypto_adx alpaca_broker backtrader_bridge)
PYTEST_ARGS="${HYBRID_DEPLOY_PYTEST_ARGS:-}"
MYPY_TARGETS="${HYBRID_DEPLOY_MYPY_TARGETS:-src}"

usage() {
    cat <<EOF
Usage: ./deploy.sh [--no-restart | --test-only] [--help]

Update and restart hybrid: git pull --ff-only, create/refresh the venv ($VENV),
install hybrid-core and the plugins (${PLUGINS[*]}), run the full test suite
(a failure aborts the deploy), type check with mypy (problems are only a warning),
then restart the systemd service '$SERVICE'.

Options:
  --no-restart   do everything except restarting the service
  --test-only    only run the tests and the type check in the existing venv
                 (no pull, no install, no restart)
  -h, --help     show this help and exit

Environment:
  HYBRID_VENV                  venv directory (default: <repo>/.venv)
  HYBRID_PYTHON                interpreter used to create the venv (default: python3)
  HYBRID_SERVICE               systemd unit to restart (default: hybrid-trader)
  HYBRID_DEPLOY_PYTEST_ARGS    pytest arguments instead of the whole suite (e.g. "tests/ops -x")
  HYBRID_DEPLOY_MYPY_TARGETS   what mypy checks (default: src)
EOF
}

step() { printf '\n==> %s\n' "$*"; }
fail() { printf 'deploy.sh: %s\n' "$*" >&2; exit 1; }

restart=1
test_only=0
while [[ $# -gt 0 ]]; do
    case "$1" in
        --no-restart) restart=0 ;;
        --test-only) test_only=1; restart=0 ;;
        -h|--help) usage; exit 0 ;;
        *) printf 'deploy.sh: unknown option %s\n\n' "$1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done

# The test suite runs this script (with a small HYBRID_DEPLOY_PYTEST_ARGS); a nested call
# running the whole suite again would recurse forever.
if [[ -n "${HYBRID_DEPLOY_RUNNING:-}" && -z "$PYTEST_ARGS" ]]; then
    fail "called from inside its own test run with the full suite (this would recurse); set HYBRID_DEPLOY_PYTEST_ARGS to a subset"
fi

cd "$REPO_DIR"

if [[ $test_only -eq 0 ]]; then
    step "git pull (fast-forward only)"
    before="$(git rev-parse --short HEAD)"
    git pull --ff-only || fail "git pull failed (local changes or diverged branch?); fix the checkout in $REPO_DIR and retry"
    echo "revision $before -> $(git rev-parse --short HEAD)"

    step "virtual environment $VENV"
    if [[ ! -x "$VENV/bin/python" ]]; then
        "$PYTHON" -m venv "$VENV" || fail "cannot create the venv with $PYTHON; install python3-venv or set HYBRID_PYTHON"
    fi

    step "dependencies: hybrid-core and plugins"
    install_args=(-e "${REPO_DIR}[test,lint]")
    for plugin in "${PLUGINS[@]}"; do
        [[ -f "$REPO_DIR/plugins/$plugin/pyproject.toml" ]] || fail "plugin plugins/$plugin is missing from the checkout"
        install_args+=(-e "$REPO_DIR/plugins/$plugin")
    done
    "$VENV/bin/python" -m pip install --quiet "${install_args[@]}" || fail "pip install failed; see the messages above"
fi

[[ -x "$VENV/bin/python" ]] || fail "no venv at $VENV; run ./deploy.sh --no-restart once to create it"

step "tests"
pytest_args=(-q)
if [[ -n "$PYTEST_ARGS" ]]; then
    read -r -a pytest_args <<< "$PYTEST_ARGS"
fi
if ! HYBRID_DEPLOY_RUNNING=1 "$VENV/bin/python" -m pytest "${pytest_args[@]}"; then
    fail "tests failed: aborting the deploy (the running service was not touched)"
fi

step "type check (mypy; a warning only)"
read -r -a mypy_targets <<< "$MYPY_TARGETS"
if ! "$VENV/bin/python" -c "import mypy" 2>/dev/null; then
    echo "WARNING: mypy is not installed in $VENV; type check skipped (pip install -e '.[lint]')" >&2
elif ! "$VENV/bin/python" -m mypy "${mypy_targets[@]}"; then
    echo "WARNING: the type check reported problems (not blocking the deploy)" >&2
fi

if [[ $restart -eq 0 ]]; then
    step "done (service not restarted)"
    exit 0
fi

step "restart $SERVICE"
command -v systemctl >/dev/null 2>&1 || fail "systemctl not found; use --no-restart (with Docker or Kubernetes, rebuild and roll out the image instead)"
as_root=()
if [[ $EUID -ne 0 ]]; then
    as_root=(sudo)
fi
${as_root[@]+"${as_root[@]}"} systemctl restart "$SERVICE" || fail "systemctl restart $SERVICE failed; see: journalctl -u $SERVICE -n 50"
sleep 3
if ! systemctl is-active --quiet "$SERVICE"; then
    fail "$SERVICE is not active after the restart; see: journalctl -u $SERVICE -n 50"
fi
echo "$SERVICE restarted and active"
