# Two commands for a newcomer:  make demo  |  make test
.PHONY: demo test test-slow bench lint tox

demo:            ## install, replay 15 weeks of paper trading offline, print the report
	scripts/demo.sh

test:            ## install with test tools, run the test suite (pytest)
	scripts/test.sh

test-slow:       ## the slow reference cases (eq504, hybrid_2016) and benchmark-sized tests
	scripts/test.sh -m slow

bench:           ## benchmarks: live cycle, backtests (native vs Backtrader on eq50), notifications and metrics, sweeps
	.venv/bin/python bench/cycle.py
	.venv/bin/python bench/backtest.py
	.venv/bin/python bench/backtest.py --cases eq50_2015 --engines native backtrader
	.venv/bin/python bench/signals.py
	.venv/bin/python bench/sweep.py

lint:            ## ruff and mypy
	.venv/bin/ruff check src plugins tests bench
	.venv/bin/mypy src

tox:             ## the Python 3.11-3.13 matrix and lint (needs pyenv's interpreters)
	PYENV_VERSION=3.11.7:3.12.1:3.13.0 .venv/bin/tox
