"""``hybrid plugins``: what is installed, what each plugin provides, name conflicts and load errors."""

from __future__ import annotations

import json

import click


@click.command("plugins")
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON object: contract, plugins, conflicts and errors.")
@click.pass_obj
def command(obj, as_json: bool) -> None:  # type: ignore[no-untyped-def]
    """List plugins with package, version, contract, the components and commands each provides,
    component names two plugins share, and plugins that failed to load."""
    info = obj.load_host(warn=False).describe()
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    click.echo(f"hybrid contract {info['contract']}; a profile may name any component <plugin>:<name>")
    for plugin in info["plugins"]:
        tag = " (built-in)" if plugin["builtin"] else f" (contract {plugin['contract']})"
        click.echo(f"{plugin['name']}{tag}: {plugin['package']} {plugin['version']}")
        for comp in plugin["components"]:
            params = ", ".join(comp["params"]) or "no parameters"
            click.echo(f"    {comp['kind']:<15} {comp['name']:<20} {comp['summary']}")
            click.echo(f"    {'':<15} {'':<20} params: {params}")
        if plugin["commands"] and plugin["name"] != "commands":
            click.echo(f"    {'commands':<15} {', '.join(plugin['commands'])}")
    if info["conflicts"]:
        click.echo("")
        click.echo("Names provided by more than one plugin (a profile must use the qualified name):")
        for conflict in info["conflicts"]:
            click.echo(f"    {conflict['message']}")
    if info["errors"]:
        click.echo("")
        click.echo("Plugins that failed to load (HYBRID_STRICT_PLUGINS=1 makes this fatal):")
        for err in info["errors"]:
            click.echo(f"    {err['name']} ({err['package']}): {err['error']}")
