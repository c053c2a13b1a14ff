"""The live run: the cycle (the steps in order), orders, fills, reconciliation and the loop.

- :mod:`.cycle`: :class:`~.cycle.TradingCycle`, one decision at a close;
- :mod:`.lifecycle`: the order state machine every broker's orders follow, and the one place
  an order changes state (:class:`~.lifecycle.OrderStates`);
- :mod:`.orders`: sending, confirmed cancels, stops, settling unknown orders and crash recovery
  (:class:`~.orders.OrderDesk`);
- :mod:`.fills`: the broker's fills recorded once (:class:`~.fills.FillRecorder`);
- :mod:`.reconcile`: the state database against the broker (:class:`~.reconcile.Reconciler`);
- :mod:`.events`: the typed audit event and its trail;
- :mod:`.runner`: a profile wired into a session, and the scheduled loop.
"""
