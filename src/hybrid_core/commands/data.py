"""``hybrid data``: warm and inspect the local bar cache of a run profile.

- ``hybrid data update PROFILE [--start D] [--end D] [--symbols A,B]``: download what the cache
  lacks for the profile's universe (all strategies), with a progress bar on stderr.
- ``hybrid data status PROFILE [--json]``: per symbol, the first and last cached bar.

Both need a data source with a cache (``yfinance``; any source exposing ``cache`` and
``update(symbols, start, end)`` works).
"""

from __future__ import annotations

import json
from typing import Any

import click
from loguru import logger

from ..errors import DataError, ProfileError


def _profile_and_source(obj: Any, profile_path: str) -> tuple[Any, Any]:
    """Load the profile and build only its data source (not the broker or strategies)."""
    from ..profile import _instantiate, load_profile, structure

    profile = load_profile(profile_path)
    spec = obj.host.registry.get("data_source", profile.data.source)
    params = structure(profile.data.params or {}, spec.params_cls, "data.params")
    source = _instantiate(spec.factory, params, profile.base_dir)
    if not hasattr(source, "cache") or not hasattr(source, "update"):
        raise DataError(f"data source {profile.data.source!r} keeps no local cache; `hybrid data` "
                        f"works with a caching source such as yfinance (set data.source: yfinance)")
    return profile, source


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
    """Download what the cache lacks for the profile's universe."""
    import pandas as pd  # imported on use: the CLI starts without pandas

    profile, source = _profile_and_source(obj, profile_path)
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
    """Per symbol of the universe: first and last cached bar."""
    import pandas as pd  # imported on use: the CLI starts without pandas

    profile, source = _profile_and_source(obj, profile_path)
    universe = profile_universe(profile, obj.host.registry)
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
