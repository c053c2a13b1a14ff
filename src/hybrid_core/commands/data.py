"""``hybrid data``: warm and inspect the bars of a run profile, whatever its data source.

- ``hybrid data update PROFILE [--start D] [--end D] [--symbols A,B]``: download what the cache
  lacks for the profile's universe (all strategies), with a progress bar on stderr. A source
  without a cache (local files) has nothing to fetch: it says so and exits 0.
- ``hybrid data status PROFILE [--json]``: per symbol, the first and last bar. For a caching
  source (``yfinance``; any source exposing ``cache`` and ``update(symbols, start, end)``) from
  the cache; for any other source (local files) the bars are read through the quality gate
  (``load_bars``, policy ``warn``, nothing logged) and each symbol shows its bars, missing
  sessions and quality problems, then one summary line. Exit 0; a file that cannot be read at
  all is a data error (7).
"""

from __future__ import annotations

import json
from typing import Any

import click
from loguru import logger

from ..errors import DataError, ProfileError


def _profile_and_source(obj: Any, profile_path: str) -> tuple[Any, Any]:
    """Load the profile and build only its data source (not the broker or strategies)."""
    from ..profile import load_profile, profile_error, structure

    profile = load_profile(profile_path)
    try:
        spec = obj.host.registry.get("data_source", profile.data.source)
        params = structure(profile.data.params or {}, spec.params_cls, "data.params")
    except ProfileError as exc:
        raise profile_error([f"data: {line}" if line.startswith("unknown") else line for line in exc.lines],
                            profile_path) from None
    source = spec.factory(params)
    source.profile_dir = profile.base_dir
    return profile, source


def _has_cache(source: Any) -> bool:
    return hasattr(source, "cache") and hasattr(source, "update")


def profile_universe(profile: Any, registry: Any) -> list[str]:
    """Every symbol the profile's strategies trade (a strategy's default universe when unset)."""
    from ..profile import resolve_universe

    symbols: list[str] = []
    for strat in profile.strategies:
        universe = resolve_universe(strat, profile.base_dir)
        if universe is None:
            try:
                universe = registry.get("strategy", strat.name).factory(name=strat.label).universe
            except (ProfileError, TypeError, ValueError) as exc:
                logger.warning("data: strategy {name}: no universe in the profile and no default "
                               "({error})", name=strat.label, error=exc)
                universe = []
        symbols.extend(universe)
    return sorted(dict.fromkeys(s.strip().upper() for s in symbols))


def _symbols_option(value: str | None) -> list[str] | None:
    return [s.strip().upper() for s in value.split(",") if s.strip()] if value else None


@click.group("data")
def command() -> None:
    """Warm and inspect the local bar cache (yfinance)."""


@command.command("update")
@click.argument("profile_path", metavar="PROFILE", type=click.Path(dir_okay=False))
@click.option("--start", default=None, help="First date (default: the profile's lookback).")
@click.option("--end", default=None, help="Last date (default: today).")
@click.option("--symbols", default=None, help="Comma-separated symbols instead of the universe.")
@click.pass_obj
def update(obj: Any, profile_path: str, start: str | None, end: str | None, symbols: str | None) -> None:
    """Download what the cache lacks for the profile's universe (nothing to do for local files)."""
    import pandas as pd  # imported on use: the CLI starts without pandas

    profile, source = _profile_and_source(obj, profile_path)
    if not _has_cache(source):
        click.echo(f"data source {profile.data.source!r} reads its bars directly (no cache): nothing to "
                   f"fetch; `hybrid data status {profile_path}` shows what the bars cover")
        return
    universe = _symbols_option(symbols) or profile_universe(profile, obj.host.registry)
    if not universe:
        raise ProfileError(f"{profile_path}: no symbols to update (no strategy lists a universe)")
    if start is None:
        lookback = getattr(profile.data, "lookback_days", None) or source.params.lookback_days
        start = str((pd.Timestamp.now(tz="UTC").tz_localize(None).normalize()
                     - pd.Timedelta(days=lookback)).date())
    report = source.update(universe, pd.Timestamp(start), pd.Timestamp(end) if end else None)
    click.echo(f"{len(universe)} symbol(s) in {source.cache.root}: {len(report.full)} downloaded, "
               f"{len(report.incremental)} extended, {len(report.readjusted)} re-adjusted and "
               f"refetched, {len(report.up_to_date)} up to date, {len(report.missing)} without bars; "
               f"{report.requests} request(s)")
    if report.missing:
        said = source.yahoo_reason() if hasattr(source, "yahoo_reason") else ""
        reason = f" (the source said: {said})" if said else ""
        click.echo(f"no bars for: {', '.join(report.missing)}{reason}", err=True)
        raise SystemExit(DataError.exit_code)


@command.command("status")
@click.argument("profile_path", metavar="PROFILE", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_obj
def status(obj: Any, profile_path: str, as_json: bool) -> None:
    """Per symbol of the universe: first and last bar (cached, or in the files), gaps, quality."""
    profile, source = _profile_and_source(obj, profile_path)
    universe = profile_universe(profile, obj.host.registry)
    if _has_cache(source):
        _cache_status(source, universe, profile_path, as_json)
    else:
        _bars_status(profile, source, universe, as_json)


def _cache_status(source: Any, universe: list[str], profile_path: str, as_json: bool) -> None:
    import pandas as pd  # imported on use: the CLI starts without pandas

    table = source.cache.status(universe or None)
    if as_json:
        rows = [{k: (None if pd.isna(v) else (str(v) if k != "rows" else int(v))) for k, v in row.items()}
                for row in table.to_dict(orient="records")]
        click.echo(json.dumps({"cache_dir": str(source.cache.root), "symbols": rows}, indent=2))
        return
    click.echo(f"cache: {source.cache.root}")
    if table.empty:
        click.echo("(empty)")
        return
    shown = table.astype(object).where(table.notna(), "-")
    click.echo(shown.to_string(index=False))
    absent = int((table["rows"] == 0).sum())
    if absent:
        click.echo(f"{absent} of {len(table)} symbol(s) not cached; run `hybrid data update {profile_path}`")


def _bars_status(profile: Any, source: Any, universe: list[str], as_json: bool) -> None:
    """Coverage and quality of a source without a cache, read through the gate (policy warn)."""
    import pandas as pd  # imported on use: the CLI starts without pandas

    from ..calendars import nyse_sessions
    from ..data.loading import load_bars
    from ..data.quality import gap_issues

    start = None
    if not hasattr(source, "files"):  # a network source: the window a live cycle loads
        start = pd.Timestamp.now(tz="UTC").tz_localize(None).normalize() - pd.Timedelta(
            days=profile.data.lookback_days)
    result = load_bars(source, universe, start, None, policy="warn", log=False)
    bars = result.bars
    spans = bars.groupby("symbol", sort=True, observed=True)["date"].agg(["min", "max", "nunique"]).reset_index()
    spans["symbol"] = spans["symbol"].astype(str)
    gaps = {i.symbol: i for i in (gap_issues(spans, bars.assign(symbol=bars["symbol"].astype(str)),
                                             nyse_sessions(spans["min"].min(), spans["max"].max()))
                                  if len(spans) else [])}
    problems: dict[str, list[str]] = {}
    for p in result.problems:
        problems.setdefault(p.symbol, []).append(f"{p.kind} {p.count}")
    rows = []
    by_symbol = {r.symbol: r for r in spans.itertuples(index=False)}
    for symbol in universe or sorted(by_symbol):
        span = by_symbol.get(symbol)
        gap = gaps.get(symbol)
        rows.append({"symbol": symbol,
                     "first": str(pd.Timestamp(span.min).date()) if span is not None else None,
                     "last": str(pd.Timestamp(span.max).date()) if span is not None else None,
                     "bars": int(span.nunique) if span is not None else 0,
                     "missing": int(gap.detail.split()[0]) if gap is not None else 0,
                     "problems": ", ".join(problems.get(symbol, [])) or None})
    where = ", ".join(str(f) for f in source.files()) if hasattr(source, "files") else f"data source {source.name}"
    absent = [str(r["symbol"]) for r in rows if not r["bars"]]
    summary = (f"{len(rows) - len(absent)} of {len(rows)} symbol(s) with bars"
               + (f" {min(r['first'] for r in rows if r['first'])}..{max(r['last'] for r in rows if r['last'])}"
                  if len(rows) > len(absent) else "")
               + f"; quality: {result.summary()}"
               + (f"; no bars for {', '.join(absent[:5])}{' ...' if len(absent) > 5 else ''}" if absent else ""))
    if as_json:
        click.echo(json.dumps({"source": where, "symbols": rows, "summary": summary,
                               "quality": result.counts()}, indent=2))
        return
    click.echo(f"bars: {where}")
    if rows:
        table = pd.DataFrame(rows).astype(object)
        click.echo(table.where(table.notna(), "-").to_string(index=False))
    click.echo(summary)
