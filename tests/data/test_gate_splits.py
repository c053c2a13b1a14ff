"""The gate's split check: the move, its ratio and the bar, with or without unusable bars in between
(the check compares each usable close with the previous usable one of the same symbol)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hybrid_core.data.quality import gate_bars


def bars_with_a_split(ratio: float, hole: bool) -> pd.DataFrame:
    """KO and PEP on 10 sessions; KO's prices move by 1/ratio on the 7th (an unadjusted split);
    ``hole``: KO's 6th bar has no close (unusable, left out) and PEP's 3rd a zero open."""
    dates = pd.bdate_range("2021-03-01", periods=10)
    rows = []
    for symbol in ("KO", "PEP"):
        for i, day in enumerate(dates):
            price = 100.0 + i * 0.1
            if symbol == "KO" and i >= 6:
                price /= ratio
            rows.append({"symbol": symbol, "date": day, "open": price, "high": price * 1.01,
                         "low": price * 0.99, "close": price, "volume": 1_000.0})
    frame = pd.DataFrame(rows)
    if hole:
        frame.loc[5, "close"] = np.nan
        frame.loc[12, "open"] = 0.0
    return frame


@pytest.mark.parametrize("hole", [False, True])
@pytest.mark.parametrize(("ratio", "words"), [(4.0, "like a 4:1 split"), (0.1, "like a 1:10 reverse split")])
def test_a_split_is_found_with_its_ratio(hole: bool, ratio: float, words: str) -> None:
    result = gate_bars(bars_with_a_split(ratio, hole), policy="drop", today=pd.Timestamp("2021-06-01"), log=False)
    splits = [p for p in result.problems if p.kind == "unadjusted_split"]
    assert [(p.symbol, p.date, p.count) for p in splits] == [("KO", pd.Timestamp("2021-03-09"), 1)]
    assert words in splits[0].detail
    assert set(result.bars["symbol"].astype(str)) == {"PEP"}  # drop: the whole symbol
    assert len(result.bars) == (9 if hole else 10)
