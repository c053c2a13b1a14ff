"""The example strategy of docs/plugins.md runs and honours the contract."""

from __future__ import annotations

import re
from pathlib import Path

from hybrid_core.testing import check_strategy, sample_panel

DOC = Path(__file__).resolve().parents[2] / "docs" / "plugins.md"


def test_the_guide_example_strategy_passes_the_kit() -> None:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    namespace: dict = {"__name__": "weekly_losers_doc"}
    exec(compile(blocks[0], str(DOC), "exec"), namespace)
    strategy = namespace["WeeklyLosers"]
    universe = ["AAPL", "MSFT", "XOM", "INTC", "F"]
    check_strategy(strategy, sample_panel(), universe=universe)
    panel = sample_panel(universe)
    instance = strategy(name="weekly_losers", universe=universe, allocation=0.5)
    signals = instance.signals(panel)
    friday, monday = "2021-04-16", "2021-04-19"
    assert instance.explain(panel, signals, friday)[0].startswith("weekly_losers: buys ")
    assert instance.explain(panel, signals, monday) == ["weekly_losers: not a rebalance day"]
    assert signals.weight.loc[friday].eq(0.25).all()
