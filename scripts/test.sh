#!/usr/bin/env bash
# The test suite: installs hybrid with its test tools (and chromium as root), then pytest.
# Slow reference and benchmark-sized cases are deselected; run them with: scripts/test.sh -m slow
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
exec .venv/bin/python -m pytest -n 2 "$@"
