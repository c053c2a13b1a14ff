"""Sweep files and profile variants: paths, values, sampling, and the profile's own one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from hybrid_core.errors import ProfileError
from hybrid_core.plugins import build_plugin_host
from hybrid_core.profile import load_profile, problem_lines
from hybrid_core.research.grid import ProfilePath, load_plan, plan_from_mapping
from hybrid_core.research.variants import ProfileVariants, load_variant

DECILE = "strategies[equity_reversal].params.decile"
STOP = "risk[stop_loss].params.pct"
BARS = "risk[time_stop].params.bars"


def lines_of(exc: pytest.ExceptionInfo[ProfileError]) -> list[str]:
    return problem_lines(exc.value)


def test_paths_parse_and_name_themselves() -> None:
    path = ProfilePath.parse(DECILE)
    assert path.segments == (("strategies", "equity_reversal"), ("params", None), ("decile", None))
    assert path.short == "equity_reversal.decile"
    assert ProfilePath.parse("risk[0].params.pct").segments[0] == ("risk", 0)
    assert ProfilePath.parse("backtest.slippage_bps").short == "backtest.slippage_bps"
    with pytest.raises(ValueError, match="is not a profile path"):
        ProfilePath.parse("strategies[].decile")
    with pytest.raises(ValueError, match="must end with a key"):
        ProfilePath.parse("strategies[0]")


def test_a_grid_is_the_product_in_file_order() -> None:
    plan = plan_from_mapping({"parameters": {DECILE: [0.1, 0.2], STOP: {"low": 0.03, "high": 0.09, "step": 0.03},
                                             BARS: {"low": 3, "high": 7, "step": 2}}})
    assert [d.label for d in plan.dimensions] == ["equity_reversal.decile", "stop_loss.pct", "time_stop.bars"]
    assert plan.dimensions[1].choices == (0.03, 0.06, 0.09)  # both ends, no binary noise
    assert plan.dimensions[2].choices == (3, 5, 7) and plan.dimensions[2].integer
    sets = plan.sets()
    assert plan.grid_size == len(sets) == 18
    assert [s.id for s in sets] == list(range(18))
    assert sets[0].values == {DECILE: 0.1, STOP: 0.03, BARS: 3}
    assert sets[1].values == {DECILE: 0.1, STOP: 0.03, BARS: 5}
    assert sets[-1].values == {DECILE: 0.2, STOP: 0.09, BARS: 7}
    assert len({s.key for s in sets}) == 18
    assert sets[4].describe(plan.dimensions) == "equity_reversal.decile=0.1, stop_loss.pct=0.06, time_stop.bars=5"


def test_random_sets_are_distinct_draws_fixed_by_the_seed() -> None:
    spec = {"method": "random", "n": 10, "seed": 3, "parameters": {DECILE: [0.1, 0.2, 0.3], BARS: [3, 5, 10, 20]}}
    first, again = plan_from_mapping(spec).sets(), plan_from_mapping(spec).sets()
    assert [s.key for s in first] == [s.key for s in again]
    assert len({s.key for s in first}) == 10
    other = plan_from_mapping({**spec, "seed": 4}).sets()
    assert [s.key for s in other] != [s.key for s in first]
    continuous = plan_from_mapping({"method": "random", "n": 5, "parameters": {STOP: {"low": 0.02, "high": 0.1}}})
    values = [s.values[STOP] for s in continuous.sets()]
    assert all(0.02 <= v <= 0.1 for v in values) and len(set(values)) == 5


@pytest.mark.parametrize(("content", "line"), [
    ({"parameters": {DECILE: [0.1]}, "method": "bayes"},
     "g.yaml: method: expected grid, random or optuna, got 'bayes'"),
    ({"parameters": {DECILE: [0.1]}, "metric": "luck"}, "g.yaml: metric: expected one of sharpe, sortino"),
    ({"parameters": {}}, "g.yaml: parameters: name at least one profile value to vary"),
    ({"parameters": {DECILE: 0.1}}, f"g.yaml: parameters.{DECILE}: expected a list of values or a range"),
    ({"parameters": {DECILE: []}}, f"g.yaml: parameters.{DECILE}: an empty list"),
    ({"parameters": {STOP: {"low": 0.1, "high": 0.2}}}, "a range needs a step for method grid"),
    ({"parameters": {STOP: {"low": 0.3, "high": 0.2, "step": 0.1}}}, "low 0.3 must be below high 0.2"),
    ({"parameters": {STOP: {"low": 0.1, "hi": 0.2}}}, f"parameters.{STOP}.hi: unknown key (allowed: low, high, step)"),
    ({"parameters": {"strategies[0]": [1]}}, "must end with a key"),
    ({"parameters": {DECILE: [0.1]}, "method": "random"}, "g.yaml: n: method random needs the number of sets"),
    ({"parameters": {DECILE: [0.1, 0.2]}, "method": "random", "n": 3}, "3 sets asked for, but the grid has only 2"),
    ({"parameters": {DECILE: [0.1]}, "method": "optuna"}, "n_trials: method optuna needs the number of sets"),
    ({"parameters": {DECILE: [0.1]}, "pbo_partitions": 5}, "pbo_partitions: expected an even number >= 2, got 5"),
    ({"parameters": {DECILE: [0.1]}, "bogus": 1}, "g.yaml: bogus: unknown key (allowed: parameters, method"),
    ({"parameters": {DECILE: [0.1]}, "seed": "x"}, "g.yaml: seed: expected a whole number, got 'x'"),
])
def test_sweep_file_errors_are_one_line_each(content: dict, line: str) -> None:
    with pytest.raises(ProfileError) as exc:
        plan_from_mapping(content, "g.yaml")
    assert any(line in got for got in lines_of(exc)), lines_of(exc)
    assert all(got.startswith("g.yaml: ") for got in lines_of(exc))


def test_sweep_file_on_disk(tmp_path: Path, sweep_file) -> None:  # type: ignore[no-untyped-def]
    assert load_plan(sweep_file({"parameters": {DECILE: [0.1, 0.2]}})).grid_size == 2
    with pytest.raises(ProfileError, match="sweep file not found"):
        load_plan(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("parameters: [unclosed\n")
    with pytest.raises(ProfileError, match=r"bad.yaml: line 2, column 1: .* \(the sweep file is not valid YAML\)"):
        load_plan(bad)


@pytest.fixture
def variants(demo_profile) -> ProfileVariants:  # type: ignore[no-untyped-def]
    return ProfileVariants(load_profile(demo_profile()), build_plugin_host().registry)


def test_a_variant_writes_values_at_their_paths(variants: ProfileVariants) -> None:
    data = variants.variant({DECILE: 0.2, STOP: 0.08, "risk[1].params.bars": 9, "backtest.cash": 5e5})
    assert data["strategies"][0]["params"]["decile"] == 0.2
    assert data["risk"][0]["params"] == {"pct": 0.08} and data["risk"][1]["params"] == {"bars": 9}
    assert data["backtest"]["cash"] == 5e5
    assert variants.base["strategies"][0]["params"]["decile"] == 0.1  # the base is untouched
    assert isinstance(data["strategies"][0]["universe"], list) and len(data["strategies"][0]["universe"]) == 40
    assert variants.problems(data) == []
    profile = load_variant(data, variants.profile.path)
    assert profile.strategies[0].params["decile"] == 0.2 and profile.base_dir == variants.profile.base_dir
    crypto = variants.variant({"strategies[crypto_adx].params.adx_max": 30})
    assert crypto["strategies"][1]["params"]["adx_max"] == 30


def test_paths_that_are_not_in_the_profile_are_named(variants: ProfileVariants) -> None:
    with pytest.raises(ValueError, match=r"strategies\[nosuch\]: no entry named 'nosuch' \(the profile has: "
                                         r"equity_reversal, crypto_adx\)"):
        variants.variant({"strategies[nosuch].params.decile": 0.1})
    with pytest.raises(ValueError, match=r"risk\[9\]: the profile's list has 7 entries"):
        variants.variant({"risk[9].params.pct": 0.1})
    with pytest.raises(ValueError, match="^name: holds 'demo', not a mapping of keys$"):
        variants.variant({"name.first": 1})


def test_values_the_profile_refuses_are_refused_with_its_own_lines(variants: ProfileVariants, sweep_file) -> None:  # type: ignore[no-untyped-def]
    plan = load_plan(sweep_file({"parameters": {DECILE: [0.1, 1.5, "ten"], STOP: [0.05],
                                                "strategies[equity_reversal].params.bogus": [1],
                                                "strategies[nosuch].params.x": [1]}}))
    lines = variants.check_plan(plan)
    # the profile's own line: the full path of the field, the validator's words
    assert f"parameters.{DECILE}: 1.5: strategies[0].params.decile: must be a number in (0, 1], got 1.5" in lines
    assert f"parameters.{DECILE}: 'ten': strategies[0].params.decile: expected a number, got 'ten'" in lines
    assert any(line.startswith("parameters.strategies[equity_reversal].params.bogus: 1: strategies[0].params.bogus: "
                               "unknown key (allowed: decile, lookback_sessions, calendar)") for line in lines)
    assert any(line.startswith("parameters.strategies[nosuch].params.x: strategies[nosuch]: no entry")
               for line in lines)
    assert len(lines) == 4


def test_sets_valid_alone_but_not_together_are_named(variants: ProfileVariants) -> None:
    plan = plan_from_mapping({"parameters": {"strategies[equity_reversal].allocation": [0.7, 0.8],
                                             "strategies[crypto_adx].allocation": [0.3, 0.2]}})
    good, lines = variants.check_sets(plan.sets(), plan.dimensions)
    assert lines == ["set 2 (equity_reversal.allocation=0.8, crypto_adx.allocation=0.3): strategies: allocations "
                     "add up to 1.10, more than 1.0 of capital"]
    assert len(good) == 3
