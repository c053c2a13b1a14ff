"""The README's three-line example runs: a user's own bt.Strategy on the demo profile's bars."""

from __future__ import annotations

import re
import sys
import types

import pytest
from bridge_support import REPO

README = REPO / "plugins" / "backtrader_bridge" / "README.md"


def test_the_readme_example_runs_a_users_strategy_on_hybrids_data(monkeypatch: pytest.MonkeyPatch) -> None:
    block = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)[0]
    monkeypatch.chdir(REPO)  # the example names profiles/demo.yaml from the repository root
    module = types.ModuleType("backtrader_readme")  # Backtrader's metaclasses look classes up by module
    monkeypatch.setitem(sys.modules, module.__name__, module)
    exec(compile(block, str(README), "exec"), module.__dict__)
    namespace = module.__dict__
    run, (strategy,) = namespace["run"], namespace["result"]
    names = [d._name for d in run.datas]
    assert len(names) == 42 and {"BTC/USD", "ETH/USD", "AAPL"} <= set(names)
    assert run.broker.startingcash == 1_000_000  # the profile's backtest.cash
    btc = strategy.btc
    assert len(strategy) == 476  # Cerebro stepped on every date of the window: NYSE sessions and UTC days
    assert btc._name == "BTC/USD" and len(btc) == 472  # its own days: 4 rows without a price are no bar
    assert run.broker.getvalue() != run.broker.startingcash  # it traded
