"""``hybrid plugins``: what is installed, what each plugin provides, and what failed to load."""

from __future__ import annotations

import json

import click


@click.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object: plugins and errors.")
@click.pass_obj
def command(obj, as_json: bool) -> None:  # type: ignore[no-untyped-def]
    """List plugins with package, version, the components each provides, and load errors."""
    info = obj.host.describe()
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    for plugin in info["plugins"]:
        tag = " (built-in)" if plugin["builtin"] else ""
        click.echo(f"{plugin['name']}{tag}: {plugin['package']} {plugin['version']}")
        for comp in plugin["components"]:
            params = ", ".join(comp["params"]) or "no parameters"
            click.echo(f"    {comp['kind']:<11} {comp['name']:<20} {comp['summary']}")
            click.echo(f"    {'':<11} {'':<20} params: {params}")
    if info["errors"]:
        click.echo("")
        click.echo("Plugins that failed to load (HYBRID_STRICT_PLUGINS=1 makes this fatal):")
        for err in info["errors"]:
            click.echo(f"    {err['name']} ({err['package']}): {err['error']}")
