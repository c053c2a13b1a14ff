"""``cerebro(profile, start, end)``: a Cerebro holding a profile's bars, for your own Backtrader strategy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import backtrader as bt
import pandas as pd

from hybrid_core.profile import RunProfile, build_components, load_profile

from . import _core
from .broker import contract_broker
from .feeds import to_feeds


def cerebro(profile: str | Path | RunProfile, start: Any = None, end: Any = None, *, warmup: int = 0,
            host: Any = None, **cerebro_kwargs: Any) -> bt.Cerebro:
    """A ``bt.Cerebro`` with one feed per symbol of the profile's strategies, from its data source.

    ``start``/``end`` (dates; default: the profile's ``backtest.start``/``end``) bound the bars;
    ``warmup`` sessions before ``start`` are added (default 0: the feeds open at ``start``, so a
    strategy of yours cannot trade before it). The bars pass hybrid's data quality gate under the
    profile's ``data.quality`` (default ``refuse``), as in ``hybrid backtest``.
    The broker is a :class:`~hybrid_backtrader_bridge.broker.ContractBroker` with the profile's
    ``backtest`` cash, commission and slippage. ``cerebro_kwargs`` go to ``bt.Cerebro``
    (default ``stdstats=False``: a buy/sell observer per feed slows a run of hundreds of symbols).
    Feeds are named by symbol: ``self.getdatabyname("AAPL")``.
    """
    from hybrid_core.plugins import build_plugin_host

    loaded = profile if isinstance(profile, RunProfile) else load_profile(profile)
    spec = loaded.backtest
    first, last = (None if d is None else pd.Timestamp(d).normalize()
                   for d in (start if start is not None else spec.start, end if end is not None else spec.end))
    host = host if host is not None else build_plugin_host()
    components = build_components(loaded, host.registry)
    panel = _core.load_window(components.data_source, components.strategies, first, last, warmup,
                              quality=_core.policy_for(loaded.data.quality, live=False)).panel
    out = bt.Cerebro(**{"stdstats": False, **cerebro_kwargs})
    out.broker = contract_broker(spec.cash, slippage_bps=spec.slippage_bps, commission=spec.commission)
    for feed in to_feeds(panel):
        out.adddata(feed)
    return out
