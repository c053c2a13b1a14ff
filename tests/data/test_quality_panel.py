"""check_quality reads a Panel off its wide arrays (the live cycle's path, every session of a
replay): the same report as the long frame of the same bars gives."""

from __future__ import annotations

import numpy as np
import pytest

from hybrid_core.contracts import Panel
from hybrid_core.data.normalise import normalise_bars
from hybrid_core.data.quality import check_quality


@pytest.mark.parametrize("seed", range(6))
def test_a_panel_gives_the_report_of_its_long_frame(raw_bars, seed: int) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    bars = normalise_bars(raw_bars, source="fixture")
    holes = rng.random(len(bars)) < 0.02 * seed  # scattered missing bars: gaps of equities and crypto
    late = (bars["symbol"] == "MSFT") & (bars["date"] < "2020-08-10")  # a symbol listing mid-window
    stale = (bars["symbol"] == "XOM") & (bars["date"] > "2020-11-10")  # and one that stops early
    bars = bars.loc[~(holes | late.to_numpy() | stale.to_numpy())]
    panel = Panel.from_long(bars).select([*sorted(bars["symbol"].unique()), "NEWCO"])
    now = "2020-11-30 21:45"
    wide = check_quality(panel, now)
    long = check_quality(panel.to_long(), now, universe=panel.symbols, check_rows=False)
    assert wide.to_dict() == long.to_dict()
    kinds = {i.kind for i in wide.issues}
    assert {"gap", "no_bars", "stale"} <= kinds if seed else {"no_bars", "stale"} <= kinds
