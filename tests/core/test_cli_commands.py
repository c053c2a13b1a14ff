"""The CLI factory: every command comes through ``hybrid_register_commands``, hybrid's own included;
load failures are one warning line in every command that loads the plugins."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import click
from core_helpers import demo_profile_data

from hybrid_core import commands, hookimpl
from hybrid_core.cli import build_cli
from hybrid_core.contracts import CONTRACT_VERSION


def command_plugin(name: str, hook: Any) -> types.ModuleType:
    module = types.ModuleType(name)
    module.HYBRID_CONTRACT = CONTRACT_VERSION  # type: ignore[attr-defined]
    module.hybrid_register_commands = hookimpl(hook)  # type: ignore[attr-defined]
    return module


def hello_plugin(name: str = "greeter") -> types.ModuleType:
    def hybrid_register_commands(cli):  # type: ignore[no-untyped-def]
        @cli.command("hello")
        @click.argument("who")
        def hello(who: str) -> None:
            """Say hello."""
            click.echo(f"hello {who} from {name}")

        cli.add_command(click.Command("bye", callback=lambda: click.echo("bye"), help="Say bye."))

    return command_plugin(name, hybrid_register_commands)


def broken_plugin() -> types.ModuleType:
    module = types.ModuleType("broken")
    module.HYBRID_CONTRACT = CONTRACT_VERSION  # type: ignore[attr-defined]

    def hybrid_register_strategies(register):  # type: ignore[no-untyped-def]
        raise ImportError("No module named 'missing_dependency'")

    module.hybrid_register_strategies = hookimpl(hybrid_register_strategies)  # type: ignore[attr-defined]
    return module


def test_hybrids_own_commands_come_through_the_hook() -> None:
    cli = build_cli(load_entry_points=False)
    host = cli.load_host()
    impls = {i.plugin_name for i in host.manager.hook.hybrid_register_commands.get_hookimpls()}
    assert "commands" in impls
    assert {c.name for c in host.commands if c.plugin == "commands"} == set(commands.CORE_COMMANDS)
    assert set(cli.list_commands(click.Context(cli))) == set(commands.CORE_COMMANDS)
    # the list is the package: a new command module that is not listed would never be added
    modules = {m.name for m in pkgutil.iter_modules(commands.__path__) if not m.name.startswith("_")}
    assert modules == set(commands.CORE_COMMANDS)


def test_each_cli_is_new(run_cli, workdir) -> None:  # type: ignore[no-untyped-def]
    with_plugin = run_cli("hello", "you", plugins=[("greeter", hello_plugin())])
    assert (with_plugin.code, with_plugin.out) == (0, "hello you from greeter\n")
    without = run_cli("hello", "you")
    assert without.code == 2 and "No such command 'hello'" in without.err


def test_a_plugin_adds_commands_both_ways(run_cli, workdir) -> None:  # type: ignore[no-untyped-def]
    result = run_cli("--help", plugins=[("greeter", hello_plugin())])
    assert result.code == 0
    section = result.out.split("Commands:")[1].split("Exit codes:")[0]  # the exit-code table follows
    listed = [line.split()[0] for line in section.splitlines() if line.strip()]
    assert listed == sorted([*commands.CORE_COMMANDS, "hello", "bye"])
    assert run_cli("bye", plugins=[("greeter", hello_plugin())]).out == "bye\n"
    described = run_cli("plugins", "--json", plugins=[("greeter", hello_plugin())])
    assert '"commands": [\n        "bye",\n        "hello"\n      ]' in described.out


def test_a_plugin_cannot_take_a_command_of_hybrid(run_cli, write_profile) -> None:  # type: ignore[no-untyped-def]
    def hybrid_register_commands(cli):  # type: ignore[no-untyped-def]
        cli.add_command(click.Command("validate", callback=lambda: click.echo("hijacked")))

    hijack = command_plugin("hijack", hybrid_register_commands)
    result = run_cli("validate", write_profile(), plugins=[("hijack", hijack)])
    assert result.code == 0 and "hijacked" not in result.out and ": OK (2 strategies" in result.out
    assert result.err.splitlines() == [
        "warning: plugin 'hijack' (hijack) failed to load: PluginLoadError: command 'validate' is one of "
        "hybrid's own commands; give the plugin's command another name (details: hybrid plugins)"]


def test_a_command_two_plugins_add_is_used_from_neither(run_cli, workdir) -> None:  # type: ignore[no-untyped-def]
    plugins = [("greeter", hello_plugin("greeter")), ("other", hello_plugin("other"))]
    result = run_cli("hello", "you", plugins=plugins)
    assert result.code == 2 and result.out == ""  # exit_codes.USAGE: the command cannot be used as named
    assert result.err.strip() == ("error: command 'hello' is added by plugins 'greeter' (greeter) and 'other' "
                                  "(other); neither is used: uninstall or disable one (HYBRID_DISABLE_PLUGINS)")
    listing = run_cli("plugins", plugins=plugins)
    assert "command 'bye' is added by plugins 'greeter' (greeter) and 'other' (other)" in listing.out


def test_a_broken_plugin_is_named_by_validate_backtest_and_run(run_cli, write_profile, workdir) -> None:  # type: ignore[no-untyped-def]
    profile = write_profile(demo_profile_data(workdir))
    warning = ("warning: plugin 'broken' (broken) failed to load: ImportError: No module named "
               "'missing_dependency' (details: hybrid plugins)")
    plugins = [("broken", broken_plugin())]
    for args in (("validate", profile),
                 ("backtest", profile, "--start", "2021-03-01", "--end", "2021-04-21", "--out", workdir / "bt",
                  "--lookahead-cuts", "0", "--log-level", "ERROR"),
                 ("run", profile, "--once", "--dry-run", "--as-of", "2021-04-16", "--log-level", "ERROR")):
        result = run_cli(*args, plugins=plugins)
        assert result.code == 0, result.err
        assert [line for line in result.err.splitlines() if line.startswith("warning: plugin")] == [warning], args


def test_health_loads_no_plugin_and_no_pandas(tmp_path: Path) -> None:
    """The liveness probe resolves a command of hybrid's own without loading the rest of the host."""
    code = ("import sys\nfrom hybrid_core.cli import main\n"
            "try:\n    main(['health', '--file', sys.argv[1]])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('pandas', 'hybrid_core.contracts', 'hybrid_equity_reversal') "
            "if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "none.health")], capture_output=True,
                          text=True, timeout=60)
    assert proc.stdout.splitlines()[-1] == "[]", proc.stderr
