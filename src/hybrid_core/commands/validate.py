"""``hybrid validate PROFILE``: every offline check `run` and `backtest` make at set-up, nothing else.

Checks, all reported together (one ``error:`` line each): the file (UTF-8, YAML, no duplicate
keys), the profile's keys and values, every component name and parameter, the components built
(universe files read), each component's own offline check (the data files exist, are regular
files and have a bar schema: header or Parquet schema only; the broker's configuration is
complete), the output folders and the trading mode. Exit 0 when everything passes; otherwise
the exit code of the table (:mod:`hybrid_core.exit_codes`) of the first problem: 2 for a
profile problem, 7 when only the data is wrong, 5 for a safety refusal.
"""

from __future__ import annotations

import sys

import click

from ..errors import HybridError, ProfileError


@click.command("validate")
@click.argument("profile_path", metavar="PROFILE", type=click.Path(dir_okay=False))
@click.pass_obj
def command(obj, profile_path: str) -> None:  # type: ignore[no-untyped-def]
    """Check a run profile and what it names, offline: if it says OK, run and backtest set up."""
    from ..profile import build_components, load_profile, offline_problems, problem_lines

    try:
        profile = load_profile(profile_path, obj.host.registry)
        components = build_components(profile, obj.host.registry)
    except ProfileError as exc:
        _fail([(exc.exit_code, line) for line in problem_lines(exc)])
    except HybridError as exc:
        _fail([(exc.exit_code, str(exc))])
    problems = offline_problems(profile, components)
    if problems:
        _fail([(p.exit_code, f"{profile_path}: {p.line}") for p in problems])
    click.echo(f"{profile_path}: OK ({len(profile.strategies)} strateg"
               f"{'y' if len(profile.strategies) == 1 else 'ies'}, broker {profile.broker.name}, "
               f"data {profile.data.source})")


def _fail(problems: list[tuple[int, str]]) -> None:
    for _code, line in problems:
        click.echo(f"error: {line}", err=True)
    codes = [code for code, _line in problems]
    sys.exit(ProfileError.exit_code if ProfileError.exit_code in codes else codes[0])
