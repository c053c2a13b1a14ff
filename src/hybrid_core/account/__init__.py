"""The account: one model of positions, orders, marks and round trips under every engine.

- :mod:`.state`: the account at a close (cash, positions, pending orders, time-stop counts,
  stops, marks) and the decision at a close (plan + vet);
- :mod:`.ledger`: fills -> round trips and open lots (FIFO, after commissions);
- :mod:`.decisions`: a strategy's signals -> per-date decisions;
- :mod:`.planner`: decisions -> orders;
- :mod:`.risk`: the protective stop, order vetting and the guards' watermarks;
- :mod:`.boundary`: every call into a plugin's code fails as one ``ComponentError``.

It imports only :mod:`hybrid_core.contracts` and :mod:`hybrid_core.errors`; the backtest, the
paper simulator, the live cycle, replay, ``hybrid report`` and the dashboard all use it.
"""
