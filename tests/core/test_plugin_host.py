"""The plugin host: built-ins through the hooks, broken plugins, strict/disable switches, duplicates."""

from __future__ import annotations

import inspect
import json
import types
from typing import Any

import attrs
import pytest

from hybrid_core import hookimpl, hookspecs
from hybrid_core.contracts import Panel, Signals, Strategy
from hybrid_core.errors import PluginLoadError
from hybrid_core.plugins import BUILTIN_MODULES, build_plugin_host


def plugin_module(name: str, **hooks: Any) -> types.ModuleType:
    """A throwaway plugin module whose attributes are the given hook implementations."""
    module = types.ModuleType(name)
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
        {"kind": "strategy", "name": "quiet", "summary": "Never trades (a test strategy).",
         "params": ["level"]}]


def test_a_broken_plugin_is_recorded_not_fatal() -> None:
    host = build_plugin_host(load_entry_points=False, extra_plugins=[
        ("broken", broken_plugin()), ("mine", strategy_plugin("mine"))])
    assert [(e.name, e.error) for e in host.errors] == [("broken", "RuntimeError: boom while registering")]
    assert "broken" not in {p.name for p in host.plugins}
    assert host.registry.get("strategy", "quiet").plugin == "mine"  # the others still load


def test_a_plugin_that_fails_to_import_is_recorded() -> None:
    def loader() -> Any:
        raise ImportError("No module named 'missing_dependency'")

    from hybrid_core import plugins

    host = build_plugin_host(load_entry_points=False)
    plugins._load(host, "needs_dep", "needs-dep", "1.0", False, loader)
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


def test_duplicate_component_names_name_both_plugins() -> None:
    host = build_plugin_host(load_entry_points=False, extra_plugins=[
        ("first", strategy_plugin("first")), ("second", strategy_plugin("second"))])
    (error,) = host.errors
    assert error.name == "second"
    assert "duplicate strategy name 'quiet'" in error.error
    assert "'first'" in error.error and "'second'" in error.error
    assert host.registry.get("strategy", "quiet").plugin == "first"


def test_duplicate_of_a_builtin_is_an_error_in_strict_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    from hybrid_core.builtin.local_data import LocalBars

    def hybrid_register_data_sources(register):  # type: ignore[no-untyped-def]
        register(LocalBars)

    monkeypatch.setenv("HYBRID_STRICT_PLUGINS", "1")
    with pytest.raises(PluginLoadError, match=r"'local_data' \(hybrid-core\) and by plugin 'copycat'"):
        build_plugin_host(load_entry_points=False, extra_plugins=[
            ("copycat", plugin_module("copycat", hybrid_register_data_sources=hybrid_register_data_sources))])


def test_a_half_registered_plugin_leaves_nothing_behind() -> None:
    class Other(Quiet):
        """Another quiet strategy."""

        name = "other"

    def hybrid_register_strategies(register):  # type: ignore[no-untyped-def]
        register(Other)
        register(Quiet)  # duplicate of the first plugin's

    host = build_plugin_host(load_entry_points=False, extra_plugins=[
        ("first", strategy_plugin("first")),
        ("second", plugin_module("second", hybrid_register_strategies=hybrid_register_strategies))])
    assert [e.name for e in host.errors] == ["second"]
    assert {s.name for s in host.registry.of_kind("strategy")} == {"quiet"}


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
    assert len(specs) == 5
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
    assert set(info) == {"plugins", "errors"} and info["errors"] == []
    by_name = {p["name"]: p for p in info["plugins"]}
    for plugin in info["plugins"]:
        assert {"name", "package", "version", "components"} <= set(plugin)
        for comp in plugin["components"]:
            assert {"kind", "name", "params"} <= set(comp)
    assert by_name["paper_broker"]["package"] == "hybrid-core"
    import importlib.metadata as md

    assert by_name["equity_reversal"]["package"] == "hybrid-equity-reversal"
    assert by_name["equity_reversal"]["version"] == md.version("hybrid-equity-reversal")
    assert [c["name"] for c in by_name["crypto_adx"]["components"]] == ["crypto_adx"]


def test_plugins_text_lists_load_errors(run_cli, workdir, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import hybrid_core.plugins as plugins

    real = plugins.build_plugin_host

    def with_broken(**kwargs: Any):  # type: ignore[no-untyped-def]
        return real(extra_plugins=[("broken", broken_plugin())], **kwargs)

    monkeypatch.setattr(plugins, "build_plugin_host", with_broken)
    result = run_cli("plugins")
    assert result.code == 0
    assert "paper_broker (built-in): hybrid-core" in result.out
    assert "Plugins that failed to load" in result.out
    assert "broken (broken): RuntimeError: boom while registering" in result.out
    result = run_cli("plugins", "--json")
    assert json.loads(result.out)["errors"] == [
        {"name": "broken", "package": "broken", "error": "RuntimeError: boom while registering"}]


def test_strict_mode_stops_the_cli_with_exit_3(run_cli, workdir, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import hybrid_core.plugins as plugins

    real = plugins.build_plugin_host
    monkeypatch.setattr(plugins, "build_plugin_host",
                        lambda **kw: real(extra_plugins=[("broken", broken_plugin())], **kw))
    monkeypatch.setenv("HYBRID_STRICT_PLUGINS", "1")
    result = run_cli("plugins", "--json")
    assert result.code == 3
    assert result.out == ""
    assert result.err.strip() == ("error: plugin 'broken' (broken) failed to load: "
                                  "RuntimeError: boom while registering")
