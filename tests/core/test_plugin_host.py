"""The plugin host: built-ins through the hooks, broken plugins, strict/disable switches, shared names."""

from __future__ import annotations

import inspect
import json
import types
from typing import Any

import attrs
import pytest
from core_helpers import demo_profile_data

from hybrid_core import hookimpl, hookspecs
from hybrid_core.contracts import CONTRACT_VERSION, Panel, Signals, Strategy
from hybrid_core.errors import PluginLoadError, ProfileError
from hybrid_core.ops.audit import read_trade_log
from hybrid_core.plugins import BUILTIN_MODULES, build_plugin_host


def plugin_module(name: str, **hooks: Any) -> types.ModuleType:
    """A throwaway plugin module (built for this contract) whose attributes are the given hook implementations."""
    module = types.ModuleType(name)
    module.HYBRID_CONTRACT = CONTRACT_VERSION  # type: ignore[attr-defined]
    for hook_name, function in hooks.items():
        setattr(module, hook_name, hookimpl(function))
    return module


class Quiet(Strategy):
    """Never trades (a test strategy)."""

    name = "quiet"

    @attrs.define(kw_only=True)
    class Params:
        level: float = 1.0

    def signals(self, panel: Panel) -> Signals:
        false = panel.close.notna() & False
        return Signals(entry=false, exit=false, keep=false, weight=panel.close * 0.0,
                       decided=false.any(axis=1))


def strategy_plugin(name: str, cls: type = Quiet) -> types.ModuleType:
    def hybrid_register_strategies(register):  # type: ignore[no-untyped-def]
        register(cls)

    return plugin_module(name, hybrid_register_strategies=hybrid_register_strategies)


def broken_plugin() -> types.ModuleType:
    def hybrid_register_strategies(register):  # type: ignore[no-untyped-def]
        raise RuntimeError("boom while registering")

    return plugin_module("broken", hybrid_register_strategies=hybrid_register_strategies)


def test_builtins_are_registered_through_the_hooks() -> None:
    host = build_plugin_host(load_entry_points=False)
    names = {p.name for p in host.plugins}
    assert names == {m.rsplit(".", 1)[-1] for m in BUILTIN_MODULES}
    assert all(p.builtin and p.package == "hybrid-core" for p in host.plugins)
    # every built-in component is reachable by kind and name, attributed to its plugin
    assert host.registry.get("data_source", "local").plugin == "local_data"
    assert host.registry.get("broker", "paper").plugin == "paper_broker"
    rules = {s.name for s in host.registry.of_kind("risk_rule")}
    assert rules >= {"stop_loss", "time_stop", "max_order_value"}
    # and they came through pluggy hook implementations, like any third-party plugin
    impls = {i.plugin_name for i in host.manager.hook.hybrid_register_risk_rules.get_hookimpls()}
    assert "risk_rules" in impls


def test_a_third_party_module_adds_a_strategy() -> None:
    host = build_plugin_host(load_entry_points=False, extra_plugins=[("mine", strategy_plugin("mine"))])
    spec = host.registry.get("strategy", "quiet")
    assert (spec.plugin, spec.factory) == ("mine", Quiet)
    described = {p["name"]: p for p in host.describe()["plugins"]}
    assert described["mine"]["components"] == [
        {"kind": "strategy", "name": "quiet", "qualified_name": "mine:quiet",
         "summary": "Never trades (a test strategy).", "params": ["level"]}]
    assert described["mine"]["contract"] == CONTRACT_VERSION
    assert host.registry.get("strategy", "mine:quiet") is spec


def test_a_broken_plugin_is_recorded_not_fatal() -> None:
    host = build_plugin_host(load_entry_points=False, extra_plugins=[
        ("broken", broken_plugin()), ("mine", strategy_plugin("mine"))])
    assert [(e.name, e.error) for e in host.errors] == [("broken", "RuntimeError: boom while registering")]
    assert "broken" not in {p.name for p in host.plugins}
    assert host.registry.get("strategy", "quiet").plugin == "mine"  # the others still load


def test_a_plugin_that_fails_to_import_is_recorded() -> None:
    def loader() -> Any:
        raise ImportError("No module named 'missing_dependency'")

    host = build_plugin_host(load_entry_points=False)
    host._load("needs_dep", "needs-dep", "1.0", False, loader)
    assert host.errors[-1].error == "ImportError: No module named 'missing_dependency'"


def test_strict_mode_makes_a_broken_plugin_fatal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HYBRID_STRICT_PLUGINS", "1")
    with pytest.raises(PluginLoadError, match=r"plugin 'broken' .* boom while registering"):
        build_plugin_host(load_entry_points=False, extra_plugins=[("broken", broken_plugin())])


def test_disable_plugins_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HYBRID_DISABLE_PLUGINS", " broken , yfinance_data")
    host = build_plugin_host()
    names = {p.name for p in host.plugins}
    assert "yfinance_data" not in names and "local_data" in names
    with pytest.raises(Exception, match="unknown data source 'yfinance'"):
        host.registry.get("data_source", "yfinance")


def test_disable_an_entry_point_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    assert "crypto_adx" in {p.name for p in build_plugin_host().plugins}
    monkeypatch.setenv("HYBRID_DISABLE_PLUGINS", "crypto_adx")
    host = build_plugin_host()
    assert "crypto_adx" not in {p.name for p in host.plugins}
    assert not host.errors


def test_a_name_two_plugins_provide_is_never_resolved() -> None:
    """Both plugins load; the bare name is an error naming both packages and both qualified names."""
    host = build_plugin_host(load_entry_points=False, extra_plugins=[
        ("second", strategy_plugin("second")), ("first", strategy_plugin("first"))])
    assert host.errors == []
    with pytest.raises(ProfileError) as caught:
        host.registry.get("strategy", "quiet")
    assert str(caught.value) == (
        "strategy name 'quiet' is provided by 2 plugins: 'first:quiet' (package first 0) and "
        "'second:quiet' (package second 0); name the one you mean by its qualified name in the profile "
        "(e.g. first:quiet), or uninstall the other package")
    assert host.registry.get("strategy", "second:quiet").plugin == "second"
    assert host.registry.get("strategy", "first:quiet").plugin == "first"
    (conflict,) = host.describe()["conflicts"]
    assert [p["qualified_name"] for p in conflict["providers"]] == ["first:quiet", "second:quiet"]


def test_a_copy_of_a_builtin_takes_nothing_from_it() -> None:
    """No precedence either way: the built-in `local` and a copy are both reachable only by qualified name."""
    from hybrid_core.builtin.local_data import LocalBars

    def hybrid_register_data_sources(register):  # type: ignore[no-untyped-def]
        register(LocalBars)

    host = build_plugin_host(load_entry_points=False, extra_plugins=[
        ("copycat", plugin_module("copycat", hybrid_register_data_sources=hybrid_register_data_sources))])
    with pytest.raises(ProfileError, match=r"'copycat:local' \(package copycat 0\) and 'local_data:local' "
                                           r"\(package hybrid-core "):
        host.registry.get("data_source", "local")
    assert host.registry.get("data_source", "local_data:local").plugin == "local_data"
    with pytest.raises(ProfileError, match=r"unknown data source 'nope:local': no plugin 'nope' providing "
                                           r"'local'; installed: copycat:local, local_data:local, sample, yfinance"):
        host.registry.get("data_source", "nope:local")


def test_one_plugin_registering_a_name_twice_fails_to_load() -> None:
    def hybrid_register_strategies(register):  # type: ignore[no-untyped-def]
        register(Quiet)
        register(Quiet)

    host = build_plugin_host(load_entry_points=False, extra_plugins=[
        ("twice", plugin_module("twice", hybrid_register_strategies=hybrid_register_strategies))])
    assert [(e.name, e.error) for e in host.errors] == [
        ("twice", "PluginLoadError: plugin 'twice' registers two strategys named 'quiet'")]


def test_a_half_registered_plugin_leaves_nothing_behind() -> None:
    class Other(Quiet):
        """Another quiet strategy."""

        name = "other"

    def hybrid_register_strategies(register):  # type: ignore[no-untyped-def]
        register(Other)
        raise RuntimeError("fails after registering one")

    host = build_plugin_host(load_entry_points=False, extra_plugins=[
        ("first", strategy_plugin("first")),
        ("second", plugin_module("second", hybrid_register_strategies=hybrid_register_strategies))])
    assert [e.name for e in host.errors] == ["second"]
    assert {s.qualified_name for s in host.registry.of_kind("strategy")} == {"first:quiet"}


def test_component_and_plugin_names_cannot_hold_the_qualifier() -> None:
    host = build_plugin_host(load_entry_points=False, extra_plugins=[
        ("a:b", strategy_plugin("x")), ("fine", strategy_plugin("fine", type("Bad", (Quiet,), {"name": "p:q"})))])
    assert [e.error for e in host.errors] == [
        "PluginLoadError: plugin name 'a:b' may not contain ':'",
        "PluginLoadError: plugin 'fine': component name 'p:q' may not contain ':' (it separates plugin and "
        "component in qualified names)"]


@pytest.mark.parametrize(("declared", "problem"), [
    (None, f'hybrid_old does not declare the hybrid contract it was built for; add HYBRID_CONTRACT = '
           f'"{CONTRACT_VERSION}" to hybrid_old (this hybrid-core implements contract {CONTRACT_VERSION})'),
    ("2.0", f"hybrid_old 0 was built for hybrid contract 2.0, but this hybrid-core 0.1.0 implements "
            f"contract {CONTRACT_VERSION} (a plugin needs the same major and a minor no newer); install a "
            f"release of hybrid_old built for contract 1.x"),
    ("1.7", f"hybrid_old 0 was built for hybrid contract 1.7, but this hybrid-core 0.1.0 implements contract "
            f"{CONTRACT_VERSION}"),
    ("0.9", "hybrid_old 0 was built for hybrid contract 0.9"),
    (1, f'hybrid_old.HYBRID_CONTRACT must be a "MAJOR.MINOR" string such as "{CONTRACT_VERSION}", got 1'),
    ("1.0.0", f'hybrid_old.HYBRID_CONTRACT must be a "MAJOR.MINOR" string such as "{CONTRACT_VERSION}", '
              f'got \'1.0.0\''),
])
def test_a_plugin_built_for_another_contract_is_a_load_error(declared: Any, problem: str) -> None:
    module = strategy_plugin("hybrid_old")
    del module.HYBRID_CONTRACT
    if declared is not None:
        module.HYBRID_CONTRACT = declared  # type: ignore[attr-defined]
    host = build_plugin_host(load_entry_points=False, extra_plugins=[("old", module)])
    (error,) = host.errors
    assert error.error.startswith("PluginLoadError: " + problem.replace("hybrid_old does", "hybrid_old 0 does"))
    assert "old" not in {p.name for p in host.plugins} and not host.registry.by_plugin("old")


def test_an_older_minor_of_the_same_major_loads() -> None:
    from hybrid_core.plugins import contract_compatible

    assert contract_compatible((1, 0), (1, 3)) and not contract_compatible((1, 4), (1, 3))
    assert not contract_compatible((0, 9), (1, 0)) and not contract_compatible((2, 0), (1, 9))


def test_misspelled_hook_is_caught_and_named() -> None:
    def hybrid_register_strategy(register):  # type: ignore[no-untyped-def]  # missing "ies"
        register(Quiet)

    host = build_plugin_host(load_entry_points=False, extra_plugins=[
        ("typo", plugin_module("typo", hybrid_register_strategy=hybrid_register_strategy))])
    (error,) = host.errors
    assert "unknown hook 'hybrid_register_strategy'" in error.error
    assert "did you mean 'hybrid_register_strategies'" in error.error
    host.manager.check_pending()  # the typo plugin was unregistered: nothing left pending


def test_registering_a_non_component_is_refused() -> None:
    def hybrid_register_brokers(register):  # type: ignore[no-untyped-def]
        register(Quiet)  # a strategy handed to the broker hook

    host = build_plugin_host(load_entry_points=False, extra_plugins=[
        ("wrongkind", plugin_module("wrongkind", hybrid_register_brokers=hybrid_register_brokers))])
    assert "does not subclass hybrid_core.contracts.Broker" in host.errors[0].error


def test_every_hookspec_is_documented_and_typed() -> None:
    specs = [getattr(hookspecs, n) for n in dir(hookspecs) if n.startswith("hybrid_")]
    assert len(specs) == 6
    for spec in specs:
        doc = inspect.getdoc(spec) or ""
        assert "Called" in doc and "Returns" in doc, spec.__name__
        hints = inspect.signature(spec)
        assert hints.return_annotation in (None, "None"), spec.__name__
        assert all(p.annotation is not inspect.Parameter.empty for p in hints.parameters.values())


def test_plugins_json_shape(run_cli, workdir) -> None:  # type: ignore[no-untyped-def]
    result = run_cli("plugins", "--json")
    assert result.code == 0, result.err
    info = json.loads(result.out)
    assert set(info) == {"contract", "plugins", "conflicts", "errors"}
    assert info["errors"] == [] and info["conflicts"] == [] and info["contract"] == CONTRACT_VERSION
    by_name = {p["name"]: p for p in info["plugins"]}
    for plugin in info["plugins"]:
        assert {"name", "package", "version", "contract", "components", "commands"} <= set(plugin)
        for comp in plugin["components"]:
            assert {"kind", "name", "qualified_name", "params"} <= set(comp)
            assert comp["qualified_name"] == f"{plugin['name']}:{comp['name']}"
    assert by_name["paper_broker"]["package"] == "hybrid-core"
    import importlib.metadata as md

    assert by_name["equity_reversal"]["package"] == "hybrid-equity-reversal"
    assert by_name["equity_reversal"]["version"] == md.version("hybrid-equity-reversal")
    assert [c["name"] for c in by_name["crypto_adx"]["components"]] == ["crypto_adx"]
    assert by_name["equity_reversal"]["contract"] == "1.0"
    assert "run" in by_name["commands"]["commands"] and by_name["commands"]["builtin"]


def test_plugins_text_lists_load_errors(run_cli, workdir) -> None:  # type: ignore[no-untyped-def]
    result = run_cli("plugins", plugins=[("broken", broken_plugin())])
    assert result.code == 0
    assert "paper_broker (built-in): hybrid-core" in result.out
    assert "equity_reversal (contract 1.0): hybrid-equity-reversal" in result.out
    assert "Plugins that failed to load" in result.out
    assert "broken (broken): RuntimeError: boom while registering" in result.out
    assert result.err == ""  # the listing is the details: no warning lines on top
    result = run_cli("plugins", "--json", plugins=[("broken", broken_plugin())])
    assert json.loads(result.out)["errors"] == [
        {"name": "broken", "package": "broken", "error": "RuntimeError: boom while registering"}]


def test_plugins_text_shows_a_shared_name(run_cli, workdir) -> None:  # type: ignore[no-untyped-def]
    result = run_cli("plugins", plugins=[("first", strategy_plugin("first")), ("second", strategy_plugin("second"))])
    assert result.code == 0, result.err
    assert "Names provided by more than one plugin (a profile must use the qualified name):" in result.out
    assert "strategy name 'quiet' is provided by 2 plugins: 'first:quiet' (package first 0) and" in result.out


def test_strict_mode_stops_the_cli_with_exit_3(run_cli, workdir, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("HYBRID_STRICT_PLUGINS", "1")
    result = run_cli("plugins", "--json", plugins=[("broken", broken_plugin())])
    assert result.code == 3
    assert result.out == ""
    assert result.err.strip() == ("error: plugin 'broken' (broken) failed to load: "
                                  "RuntimeError: boom while registering")


def test_a_profile_may_qualify_every_name(run_cli, write_profile, workdir) -> None:  # type: ignore[no-untyped-def]
    data = demo_profile_data(workdir)
    data["data"]["source"] = "local_data:local"
    data["broker"]["name"] = "paper_broker:paper"
    data["strategies"][0]["name"] = "equity_reversal:equity_reversal"
    registry = build_plugin_host().registry
    data["risk"] = [{**rule, "name": registry.get("risk_rule", rule["name"]).qualified_name} for rule in data["risk"]]
    assert {r["name"] for r in data["risk"]} >= {"risk_rules:stop_loss", "guards:kill_switch"}
    result = run_cli("run", write_profile(data), "--once", "--dry-run", "--as-of", "2021-04-16",
                     "--log-level", "ERROR")
    assert result.code == 0, result.err
    rows = read_trade_log(workdir / "trades.csv")
    assert len(rows) and set(rows["strategy"]) <= {"equity_reversal", "crypto_adx"}  # labels stay bare
