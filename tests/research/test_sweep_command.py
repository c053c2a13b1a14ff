"""`hybrid sweep` refusals before any cluster starts, and Optuna's batches (in one process)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from hybrid_core.cli import build_cli, main
from hybrid_core.plugins import build_plugin_host
from hybrid_core.profile import load_profile
from hybrid_core.research import worker
from hybrid_core.research.grid import load_plan, plan_from_mapping
from hybrid_core.research.optuna_search import optuna_sets
from hybrid_core.research.variant_backtest import DateSpan
from hybrid_core.research.variants import ProfileVariants

DECILE = "strategies[equity_reversal].params.decile"
STOP = "risk[stop_loss].params.pct"
WINDOW = ["--start", "2020-01-02", "--end", "2021-04-21"]


def run(capfd: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capfd.readouterr()
    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capfd.readouterr()
    return code, out, err


def test_every_invalid_set_is_refused_before_anything_runs(demo_profile, sweep_file, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                           capfd: pytest.CaptureFixture[str]) -> None:
    grid = sweep_file({"parameters": {DECILE: [0.1, 2.0], STOP: [0.05, -1]}})
    code, out, err = run(capfd, "sweep", demo_profile(), grid, *WINDOW, "--out", tmp_path / "out")
    assert code == 2
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 2, err
    assert lines[0].startswith(f"error: parameters.{DECILE}: 2.0: strategies[0].params")
    assert lines[1].startswith(f"error: parameters.{STOP}: -1: risk[0].params")
    assert not (tmp_path / "out").exists()  # nothing started, nothing written


def test_sweep_file_and_option_errors(demo_profile, sweep_file, tmp_path: Path,  # type: ignore[no-untyped-def]
                                      capfd: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capfd, "sweep", demo_profile(), sweep_file({"parameters": {DECILE: [0.1]}, "metric": "luck"}),
                       *WINDOW, "--out", tmp_path / "o")
    assert code == 2 and "error: " in err and "metric: expected one of sharpe" in err
    good = sweep_file({"parameters": {DECILE: [0.1]}}, name="good.yaml")
    code, _, err = run(capfd, "sweep", demo_profile(), good, *WINDOW, "--out", tmp_path / "o", "--workers", "2",
                       "--scheduler", "tcp://127.0.0.1:1")
    assert code == 2 and "give --workers (an embedded cluster) or --scheduler (a running one), not both" in err
    code, _, err = run(capfd, "sweep", demo_profile(), good, "--start", "2021-01-01", "--end", "2020-01-01",
                       "--out", tmp_path / "o")
    assert code == 2 and err.strip() == "error: --end 2020-01-01 is before --start 2021-01-01"  # usage (exit_codes)
    code, _, err = run(capfd, "sweep", demo_profile(), good, *WINDOW, "--out", tmp_path / "o",
                       "--walk-forward", "756/252")
    assert code == 2 and "expected train=N,test=M[,anchored]" in err


def test_an_unreachable_scheduler_is_one_line(demo_profile, sweep_file, tmp_path: Path,  # type: ignore[no-untyped-def]
                                               capfd: pytest.CaptureFixture[str]) -> None:
    good = sweep_file({"parameters": {DECILE: [0.1]}})
    code, _, err = run(capfd, "sweep", demo_profile(), good, *WINDOW, "--out", tmp_path / "o",
                       "--scheduler", "tcp://127.0.0.1:9")
    assert code == 2  # an --scheduler that does not answer: invalid input (exit_codes.USAGE)
    assert err.strip().startswith("error: cannot reach the Dask scheduler at tcp://127.0.0.1:9 (")
    assert err.strip().endswith("start it with `dask scheduler` and workers with `dask worker tcp://127.0.0.1:9` "
                                "(docs/sweeps.md)")


def test_sweep_is_a_command_with_help() -> None:
    result = CliRunner().invoke(build_cli(), ["sweep", "--help"])
    assert result.exit_code == 0 and "--walk-forward" in result.output and "--scheduler" in result.output


def test_optuna_batches_do_not_depend_on_the_order_results_arrive(demo_profile, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(worker, "CACHE", worker.WorkerCache())
    profile = load_profile(demo_profile())
    variants = ProfileVariants(profile, build_plugin_host().registry)
    plan = plan_from_mapping({"method": "optuna", "n_trials": 6, "batch": 3, "seed": 11,
                              "parameters": {DECILE: {"low": 0.05, "high": 0.3, "step": 0.05},
                                             STOP: {"low": 0.02, "high": 0.1}}})
    window = DateSpan(*map(lambda d: __import__("pandas").Timestamp(d), ("2020-06-01", "2021-04-21")))
    versions = worker.worker_versions()
    batches: list[int] = []

    def make_run(reverse: bool):  # type: ignore[no-untyped-def]
        def run_batch(batch, valid):  # type: ignore[no-untyped-def]
            batches.append(len(batch))
            tasks = [worker.SetTask(set_id=s.id, key=s.key, scope="full", profile=valid[s.key],
                                    profile_path=str(profile.path), window=window, trade=window,
                                    versions=versions, lookahead_cuts=0) for s in batch]
            done = {t.key: worker.run_set(t) for t in (reversed(tasks) if reverse else tasks)}
            return dict(reversed(list(done.items()))) if reverse else done
        return run_batch

    sets, outcomes = optuna_sets(plan, variants, make_run(False))
    again, _ = optuna_sets(plan, variants, make_run(True))
    assert [s.values for s in sets] == [s.values for s in again]
    assert len(sets) == 6 and batches[:2] == [3, 3]
    assert all(0.05 <= s.values[DECILE] <= 0.3 and 0.02 <= s.values[STOP] <= 0.1 for s in sets)
    assert all(outcomes[s.key].ok for s in sets)


def test_the_guide_examples_are_valid(demo_profile) -> None:  # type: ignore[no-untyped-def]
    import re

    import yaml

    doc = (Path(__file__).resolve().parents[2] / "docs" / "sweeps.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", doc, flags=re.S)
    plan = plan_from_mapping(yaml.safe_load(blocks[0]), "docs/sweeps.md")
    assert plan.grid_size == 64
    variants = ProfileVariants(load_profile(demo_profile()), build_plugin_host().registry)
    assert variants.check_plan(plan) == []
    manifests = list(yaml.safe_load_all(blocks[1]))
    assert [m["kind"] for m in manifests] == ["Deployment", "Service", "Deployment"]
    demo = load_plan(Path(__file__).resolve().parents[2] / "profiles" / "demo_sweep.yaml")
    assert demo.grid_size == 18 and variants.check_plan(demo) == []
