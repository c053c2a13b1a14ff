"""Research at scale: parameter sweeps and walk-forward analysis on Dask, with overfitting statistics.

- :mod:`.grid` reads a sweep file (which profile values to vary, how to sample them);
- :mod:`.variants` applies one parameter set to a profile and validates it like any profile;
- :mod:`.variant_backtest` is the one call into the backtest engine;
- :mod:`.worker` is what runs on every Dask worker (bars and signals cached per process);
- :mod:`.cluster` starts or joins the Dask cluster and checks the workers' versions;
- :mod:`.journal` records finished sets in SQLite, so a rerun skips them;
- :mod:`.sweep` and :mod:`.walkforward` drive a sweep and a walk-forward analysis;
- :mod:`.overfitting` computes the Deflated Sharpe Ratio and the Probability of Backtest Overfitting;
- :mod:`.outputs` and :mod:`.report` write results.parquet/csv, sweep.json and report.html.
"""
