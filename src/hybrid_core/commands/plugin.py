"""``hybrid plugin new NAME --kind strategy|risk|data|broker``: write a ready plugin package."""

from __future__ import annotations

from pathlib import Path

import click

KIND_CHOICES = ("strategy", "risk", "data", "broker")


@click.group("plugin")
def command() -> None:
    """Write plugins (see `hybrid plugins` for the installed ones)."""


@command.command("new")
@click.argument("name")
@click.option("--kind", type=click.Choice(KIND_CHOICES), default="strategy", show_default=True,
              help="What the plugin provides.")
@click.option("--dir", "parent", type=click.Path(file_okay=False, path_type=Path), default=Path("."),
              show_default=True, help="Folder in which the package's folder is written.")
def new(name: str, kind: str, parent: Path) -> None:
    """Write the package hybrid-NAME: pyproject.toml with the entry point, the component, tests
    written with hybrid's kit, a README, a tox.ini (and, for a strategy, example.yaml).

    Its tests pass as generated: `pip install -e 'hybrid-NAME[test]' && pytest hybrid-NAME`.
    """
    from ..scaffold import write_plugin

    root = write_plugin(name, kind, parent)
    click.echo(f"wrote {root}/")
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        click.echo(f"    {path.relative_to(root)}")
    click.echo(f"next: pip install -e '{root}[test]' && pytest {root} && hybrid plugins")
