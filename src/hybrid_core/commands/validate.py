"""``hybrid validate PROFILE``: run every profile check and nothing else (exit 0 or 2)."""

from __future__ import annotations

import sys

import click

from ..errors import ProfileError


@click.command("validate")
@click.argument("profile_path", metavar="PROFILE", type=click.Path(dir_okay=False))
@click.pass_obj
def command(obj, profile_path: str) -> None:  # type: ignore[no-untyped-def]
    """Check a run profile: its shape, every component name and every parameter."""
    from ..profile import load_profile, problem_lines, validate

    try:
        profile = load_profile(profile_path)
    except ProfileError as exc:
        for line in problem_lines(exc):
            click.echo(f"error: {line}", err=True)
        sys.exit(2)
    errors = validate(profile, obj.host.registry)
    if errors:
        for line in errors:
            click.echo(f"error: {line}", err=True)
        sys.exit(2)
    click.echo(f"{profile_path}: OK ({len(profile.strategies)} strateg"
               f"{'y' if len(profile.strategies) == 1 else 'ies'}, broker {profile.broker.name}, "
               f"data {profile.data.source})")
