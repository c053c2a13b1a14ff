"""Issue 19: every bad profile, bar file, heartbeat or setting ends in one clear line and the
documented exit code; nothing is accepted silently, hangs, crashes or writes partial output."""

from __future__ import annotations

import codecs
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from bad_inputs import (
    BAD_DAY,
    BAR_PROBLEMS,
    BILLION_LAUGHS,
    UNIVERSE_BOMB,
    bars_profile,
    good_bars,
    write_csv,
    write_yaml,
)
from core_helpers import DEMO_PROFILE, REPO, demo_profile_data, error_lines, run_hybrid_process

from hybrid_core import exit_codes

USAGE, DATA, UNHEALTHY = exit_codes.USAGE, exit_codes.DATA, exit_codes.UNHEALTHY


def one_line(result, code: int, *needles: str) -> str:  # type: ignore[no-untyped-def]
    """The one error line of ``result`` (exit ``code``), holding every needle."""
    assert result.code == code, (result.code, result.err)
    lines = error_lines(result.err)
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: ") and "Traceback" not in result.err, result.err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


@pytest.fixture(scope="module")
def clean_bars() -> pd.DataFrame:
    return good_bars()


def backtest(run_cli, profile: Path, out: Path, *extra: str):  # type: ignore[no-untyped-def]
    return run_cli("backtest", profile, "--start", "2020-06-01", "--end", "2020-12-31", "--out", out,
                   "--lookahead-cuts", "0", "--no-progress", *extra)


# ------------------------------------------------------------------ profiles

def test_duplicate_keys_are_refused_naming_both_lines(run_cli, workdir: Path) -> None:  # type: ignore[no-untyped-def]
    path = workdir / "p.yaml"
    path.write_text("name: t\nrisk: [{name: stop_loss}]\nstrategies:\n  - {name: crypto_adx, allocation: 0.3}\n"
                    "risk: []\n")
    line = one_line(run_cli("validate", path), USAGE, str(path), "line 5", "key 'risk' appears twice",
                    "first on line 2")
    assert "remove one" in line


@pytest.mark.parametrize("text, needle", [
    (BILLION_LAUGHS, "alias bomb"),
    (UNIVERSE_BOMB, "alias bomb"),
    ("a: &a [*a]\nstrategies: [{name: crypto_adx}]\n", "recursive structure"),
    ("strategies: [{name: crypto_adx}]\nx: " + "[" * 5000 + "]" * 5000 + "\n", "nested more than 64 levels"),
    ("x: &x {<<: *x}\nstrategies: [{name: crypto_adx}]\n", "recursive structure"),
], ids=["billion-laughs", "universe-bomb", "recursive-alias", "deep-nesting", "recursive-merge"])
def test_yaml_bombs_and_deep_nesting_are_refused(run_cli, workdir: Path, text: str, needle: str) -> None:  # type: ignore[no-untyped-def]
    path = workdir / "bomb.yaml"
    path.write_text(text)
    for command in ("validate", "run"):
        one_line(run_cli(command, path), USAGE, str(path), needle)


def test_a_bomb_is_refused_by_a_real_process_without_hanging(tmp_path: Path) -> None:
    (tmp_path / "bomb.yaml").write_text(BILLION_LAUGHS)
    result = run_hybrid_process("validate", "bomb.yaml", cwd=tmp_path, timeout=60)
    one_line(result, USAGE, "bomb.yaml", "alias bomb")


@pytest.mark.parametrize("parser", ["libyaml", "pure-python"])
def test_both_yaml_parsers_refuse_the_same_files(monkeypatch, tmp_path: Path, parser: str) -> None:  # type: ignore[no-untyped-def]
    from hybrid_core import profile_yaml
    from hybrid_core.errors import ProfileError

    if parser == "libyaml":
        assert profile_yaml.ProfileLoader is profile_yaml._LibYamlLoader  # PyYAML's wheels ship libyaml
    else:  # the fallback when PyYAML was built without it
        monkeypatch.setattr(profile_yaml, "ProfileLoader", profile_yaml._PurePythonLoader)
    monkeypatch.setattr(profile_yaml, "MAX_NODES", 1000)  # the same check as 50,000, on a small file
    cases = {
        BILLION_LAUGHS: ("more than 1,000 values once aliases are expanded; this looks like an alias bomb",),
        "a: &a [*a]\n": ("an alias refers to a value that contains it",),
        "x: " + "[" * 5000 + "]" * 5000 + "\n": ("values nested more than 64 levels deep",),
        "risk: []\nname: x\nrisk: [1]\n": ("line 3: key 'risk' appears twice in one mapping (first on line 1)",),
        "x: [" + "a, " * 1200 + "]\n": ("more than 1,000 values; a run profile is a page of settings",),
        "a: b\nc: [x\n\nd: 1\n": ("line 4, column 2: ", "(while parsing a flow sequence on line 2)"),
        "a: b\x07\n": ("character '\\x07' at position 4 is not allowed in YAML",),
    }
    for text, needles in cases.items():
        path = tmp_path / "p.yaml"
        path.write_text(text)
        with pytest.raises(ProfileError) as exc:
            profile_yaml.read_profile_yaml(path)
        assert str(exc.value).startswith(f"{path}: "), str(exc.value)
        for needle in needles:
            assert needle in str(exc.value), (parser, needle, str(exc.value))
    path = tmp_path / "ok.yaml"
    path.write_text("start: 2021-01-04\nbase: &b {x: 1}\nc: {<<: *b, y: [1.5, yes, ~]}\n")
    assert profile_yaml.read_profile_yaml(path) == {"start": "2021-01-04", "base": {"x": 1},
                                                    "c": {"x": 1, "y": [1.5, True, None]}}


@pytest.mark.parametrize("encoding, needle", [
    ("latin-1", "byte 0xe9 is not UTF-8"),
    ("utf-16-le", "UTF-16 without a byte-order mark"),
    ("cp1252", "byte 0xe9 is not UTF-8"),
])
def test_a_profile_in_another_encoding_names_file_and_encoding(run_cli, workdir: Path, encoding: str,  # type: ignore[no-untyped-def]
                                                              needle: str) -> None:
    path = workdir / "p.yaml"
    path.write_bytes("name: café\nstrategies: [{name: crypto_adx, allocation: 0.3}]\n".encode(encoding))
    one_line(run_cli("validate", path), USAGE, str(path), needle, "save")


@pytest.mark.parametrize("bom", [codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE])
def test_a_byte_order_mark_is_honoured(run_cli, workdir: Path, bom: bytes) -> None:  # type: ignore[no-untyped-def]
    data = demo_profile_data(workdir)
    text = "# café\n" + yaml.safe_dump(data)
    encoding = {codecs.BOM_UTF8: "utf-8", codecs.BOM_UTF16_LE: "utf-16-le", codecs.BOM_UTF16_BE: "utf-16-be"}[bom]
    path = workdir / "p.yaml"
    path.write_bytes(bom + text.encode(encoding))
    result = run_cli("validate", path)
    assert result.code == 0, result.err


def test_a_file_of_unknown_keys_names_the_file_and_every_key(run_cli, workdir: Path) -> None:  # type: ignore[no-untyped-def]
    path = workdir / "p.yaml"
    path.write_text("colour: red\nsize: 3\nstrats: []\n")
    result = run_cli("validate", path)
    assert result.code == USAGE
    lines = error_lines(result.err)
    assert [line.split(": ", 2)[2].split(" ")[0] for line in lines[:3]] == ["colour:", "size:", "strats:"]
    assert all(line.startswith(f"error: {path}: ") for line in lines)
    assert "did you mean 'strategies'?" in lines[2]
    assert any("strategies: required key is missing" in line for line in lines)


def test_every_failed_check_of_every_field_in_one_pass(run_cli, workdir: Path) -> None:  # type: ignore[no-untyped-def]
    data = demo_profile_data(workdir)
    data["strategies"][1]["params"] = {"adx_period": 1, "sma_period": "twenty", "z_entry": 1.5}
    data["risk"][0]["params"] = {"pct": 2}
    data["backtest"] = {"cash": -5, "commission": "none", "start": "2021-13-01"}
    data["schedule"] = {"at": "25:00", "timezone": "Mars/Olympus"}
    result = run_cli("validate", write_yaml(data, workdir / "p.yaml"))
    assert result.code == USAGE
    lines = {line.split(": ", 2)[2] for line in error_lines(result.err)}
    assert lines >= {
        "strategies[1].params.adx_period: must be a whole number >= 2, got 1",
        "strategies[1].params.sma_period: expected a whole number, got 'twenty'",
        "strategies[1].params.z_entry: must be negative (a close below its mean), got 1.5",
        "risk[0].params.pct: must be between 0 and 1 (exclusive), got 2.0",
        "backtest.cash: must be > 0, got -5.0",
        "backtest.commission: expected a number, got 'none'",
        "backtest.start: expected a date YYYY-MM-DD, got '2021-13-01' (no such day)",
        "schedule.at: expected a time HH:MM (00:00 to 23:59), got '25:00'",
        "schedule.timezone: unknown time zone 'Mars/Olympus' (use an IANA name such as America/New_York)",
    }, lines


@pytest.mark.parametrize("kind", ["folder", "fifo"])
def test_a_profile_that_is_not_a_regular_file_is_never_opened(run_cli, workdir: Path, kind: str) -> None:  # type: ignore[no-untyped-def]
    path = workdir / "p.yaml"
    path.mkdir() if kind == "folder" else os.mkfifo(path)
    needle = "is a directory" if kind == "folder" else "not a regular file"
    one_line(run_cli("validate", path), USAGE, str(path), needle)


# ------------------------------------------------------------------ validate says OK only when run can start

def test_a_moved_demo_profile_is_refused_by_validate_as_by_run_and_backtest(run_cli, workdir: Path) -> None:  # type: ignore[no-untyped-def]
    moved = workdir / "elsewhere" / "demo.yaml"
    moved.parent.mkdir()
    shutil.copy(DEMO_PROFILE, moved)
    relative = yaml.safe_load(DEMO_PROFILE.read_text())["strategies"][0]["universe"]
    expected = str((moved.parent / relative).resolve())  # taken from the profile's new folder
    runs = [run_cli("validate", moved), run_cli("run", moved, "--once", "--dry-run"),
            run_cli("backtest", moved, "--start", "2021-01-04", "--end", "2021-04-21", "--out", workdir / "out")]
    for result in runs:
        assert result.code == USAGE, result.err
        assert any("universe: file not found" in line and expected in line for line in error_lines(result.err))
    assert not (workdir / "out").exists()


def test_the_smallest_profile_of_the_docs_is_checked_where_it_stands(run_cli, workdir: Path) -> None:  # type: ignore[no-untyped-def]
    docs = (REPO / "docs" / "profile.md").read_text()
    smallest = docs.split("The smallest valid profile")[1].split("```yaml\n")[1].split("```")[0]
    path = workdir / "small.yaml"
    path.write_text(smallest)
    result = run_cli("validate", path)
    if result.code == 0:  # the docs' profile names a file that exists wherever it is copied
        assert run_cli("run", path, "--once", "--dry-run").code == 0
    else:
        line = one_line(result, DATA, "data.params" if "data.params" in result.err else "data:")
        assert "not found" in line
        assert run_cli("run", path, "--once", "--dry-run").code == DATA


def test_validate_ok_means_run_and_backtest_set_up(run_cli, workdir: Path) -> None:  # type: ignore[no-untyped-def]
    path = write_yaml(demo_profile_data(workdir), workdir / "p.yaml")
    assert run_cli("validate", path).code == 0
    assert run_cli("run", path, "--once", "--dry-run").code == 0
    assert backtest(run_cli, path, workdir / "bt").code == 0


@pytest.mark.parametrize("target", ["missing", "folder", "fifo", "no-columns", "api-error"])
def test_validate_checks_the_bar_file_itself(run_cli, workdir: Path, target: str) -> None:  # type: ignore[no-untyped-def]
    bars = workdir / "bars.csv"
    if target == "folder":
        bars.mkdir()
    elif target == "fifo":
        os.mkfifo(bars)
    elif target == "no-columns":
        bars.write_text("ticker,day,price\nAAPL,2021-01-04,1.0\n")
    elif target == "api-error":
        bars.write_text('{"Error Message": "Invalid API call"}\n')
    path = write_yaml(bars_profile(workdir, bars), workdir / "p.yaml")
    needle = {"missing": "not found", "folder": "is a folder", "fifo": "not a regular file",
              "no-columns": "lack column(s) date, open, high, low, close", "api-error": "API error message"}[target]
    one_line(run_cli("validate", path), DATA, str(bars), needle)
    one_line(backtest(run_cli, path, workdir / "out"), DATA, str(bars), needle)
    assert not (workdir / "out").exists()


def test_validate_checks_output_folders(run_cli, workdir: Path) -> None:  # type: ignore[no-untyped-def]
    data = demo_profile_data(workdir)
    (workdir / "blocker").write_text("a file where a folder should be")
    data["outputs"]["state_db"] = str(workdir / "blocker" / "state.sqlite")
    one_line(run_cli("validate", write_yaml(data, workdir / "p.yaml")), USAGE, "outputs.state_db",
             "is not a folder")


@pytest.mark.parametrize("text, needles", [
    ("parameters:\n  strategies[equity_reversal].params.decile: [0.1]\nparameters: {}\n",
     ("line 3", "key 'parameters' appears twice", "first on line 1")),
    (BILLION_LAUGHS, ("alias bomb",)),
    (b"parameters: {risk[stop_loss].params.pct: [0.05]}\nname: caf\xe9\n", ("line 2", "is not UTF-8")),
], ids=["duplicate-key", "alias-bomb", "latin-1"])
def test_a_sweep_file_is_read_as_safely_as_a_profile(run_cli, workdir: Path, text: str | bytes,  # type: ignore[no-untyped-def]
                                                     needles: tuple[str, ...]) -> None:
    grid = workdir / "grid.yaml"
    grid.write_bytes(text if isinstance(text, bytes) else text.encode())
    profile = write_yaml(demo_profile_data(workdir), workdir / "p.yaml")
    result = run_cli("sweep", profile, grid, "--start", "2021-01-04", "--end", "2021-02-26", "--out", workdir / "o")
    one_line(result, USAGE, f"{grid}:", *needles)
    assert not (workdir / "o").exists()


# ------------------------------------------------------------------ bar files

@pytest.mark.parametrize("problem", sorted(BAR_PROBLEMS))
def test_a_bad_bar_is_refused_by_the_backtest_naming_file_symbol_date_and_check(  # type: ignore[no-untyped-def]
        run_cli, workdir: Path, clean_bars: pd.DataFrame, problem: str) -> None:
    make, needle = BAR_PROBLEMS[problem]
    bars = write_csv(make(clean_bars.copy()), workdir / "bars.csv")
    path = write_yaml(bars_profile(workdir, bars), workdir / "p.yaml")
    out = workdir / "out"
    line = one_line(backtest(run_cli, path, out), DATA, str(bars), needle, "data.quality")
    assert line.startswith("error: data quality: ")
    assert not out.exists()  # nothing written unless the run succeeds


@pytest.mark.parametrize("problem", ["high_below_low", "unadjusted_split", "nan_price"])
def test_policy_drop_leaves_bad_bars_out_with_one_summary_line(  # type: ignore[no-untyped-def]
        run_cli, workdir: Path, clean_bars: pd.DataFrame, problem: str) -> None:
    make, needle = BAR_PROBLEMS[problem]
    bars = write_csv(make(clean_bars.copy()), workdir / "bars.csv")
    path = write_yaml(bars_profile(workdir, bars, quality="drop"), workdir / "p.yaml")
    result = backtest(run_cli, path, workdir / "out")
    assert result.code == 0, result.err
    kind = needle.split(": ")[-1]
    summary = [line for line in result.err.splitlines() if "data quality: left out" in line and f"({kind})" in line]
    assert len(summary) == 1 and str(bars) in summary[0], result.err
    assert (workdir / "out" / "summary.json").exists()


def test_policy_warn_keeps_what_can_be_kept(run_cli, workdir: Path, clean_bars: pd.DataFrame) -> None:  # type: ignore[no-untyped-def]
    bars = write_csv(BAR_PROBLEMS["negative_volume"][0](clean_bars.copy()), workdir / "bars.csv")
    path = write_yaml(bars_profile(workdir, bars, quality="warn"), workdir / "p.yaml")
    result = backtest(run_cli, path, workdir / "out")
    assert result.code == 0, result.err
    assert sum("data quality: kept 1 bar(s) with a negative volume" in line for line in result.err.splitlines()) == 1


def test_the_benchmark_bars_pass_the_same_gate(run_cli, workdir: Path, clean_bars: pd.DataFrame) -> None:  # type: ignore[no-untyped-def]
    bench = clean_bars[clean_bars["symbol"] == "AAPL"].copy()
    bench["symbol"] = "BENCH"  # not traded: the benchmark loads it on its own
    bench.loc[bench["date"] == BAD_DAY, "volume"] = -100.0
    bars = write_csv(pd.concat([clean_bars, bench], ignore_index=True), workdir / "bars.csv")
    data = {**bars_profile(workdir, bars), "backtest": {"benchmark": "BENCH"}}
    out = workdir / "out"
    one_line(backtest(run_cli, write_yaml(data, workdir / "p.yaml"), out), DATA, str(bars),
             "BENCH 2020-09-15: negative_volume")
    assert not out.exists()
    data["data"]["quality"] = "drop"
    result = backtest(run_cli, write_yaml(data, workdir / "p.yaml"), out)
    assert result.code == 0, result.err
    assert json.loads((out / "summary.json").read_text())["benchmark"]["name"] == "buy-and-hold of BENCH"


def test_a_bad_policy_is_a_profile_error(run_cli, workdir: Path) -> None:  # type: ignore[no-untyped-def]
    path = write_yaml(bars_profile(workdir, workdir / "bars.csv", quality="ignore"), workdir / "p.yaml")
    one_line(run_cli("validate", path), USAGE, "data.quality: expected refuse or drop or warn, got 'ignore'")


def test_a_repeated_header_row_is_refused(run_cli, workdir: Path, clean_bars: pd.DataFrame) -> None:  # type: ignore[no-untyped-def]
    bars = write_csv(clean_bars, workdir / "bars.csv")
    lines = bars.read_text().splitlines()
    bars.write_text("\n".join([*lines[:100], lines[0], *lines[100:]]) + "\n")
    path = write_yaml(bars_profile(workdir, bars, quality="drop"), workdir / "p.yaml")
    one_line(backtest(run_cli, path, workdir / "out"), DATA, str(bars), "data row 100 repeats the header")


@pytest.mark.parametrize("rewrite, needle", [
    (lambda d: d.strftime("%m/%d/%Y"), "dates are not in one format"),
    (lambda d: d.strftime("%Y-%m-%dT00:00:00+00:00"), "mix values with a time zone"),
    (lambda d: d.strftime("%d.%m.%Y?"), "not in one format"),
], ids=["mixed-formats", "mixed-timezones", "garbage"])
def test_dates_that_do_not_parse_the_same_way_are_refused(run_cli, workdir: Path, clean_bars: pd.DataFrame,  # type: ignore[no-untyped-def]
                                                         rewrite, needle: str) -> None:
    bars = write_csv(clean_bars, workdir / "bars.csv")
    frame = pd.read_csv(bars, dtype=str)
    half = frame.index >= len(frame) // 2
    frame.loc[half, "date"] = [rewrite(pd.Timestamp(d)) for d in frame.loc[half, "date"]]
    frame.to_csv(bars, index=False)
    path = write_yaml(bars_profile(workdir, bars, quality="drop"), workdir / "p.yaml")
    one_line(backtest(run_cli, path, workdir / "out"), DATA, str(bars), needle, "data row")


def test_unparseable_dates_in_parquet_are_a_data_error(run_cli, workdir: Path, clean_bars: pd.DataFrame) -> None:  # type: ignore[no-untyped-def]
    frame = clean_bars.assign(date=pd.DatetimeIndex(clean_bars["date"]).strftime("%Y-%m-%d"))
    frame.loc[10, "date"] = "not-a-date"
    bars = workdir / "bars.parquet"
    frame.to_parquet(bars, index=False)
    path = write_yaml(bars_profile(workdir, bars), workdir / "p.yaml")
    one_line(backtest(run_cli, path, workdir / "out"), DATA, str(bars), "data row 11 has 'not-a-date'")


def test_a_tz_aware_parquet_file_works_on_the_live_path(run_cli, workdir: Path, clean_bars: pd.DataFrame) -> None:  # type: ignore[no-untyped-def]
    frame = clean_bars.assign(date=pd.DatetimeIndex(clean_bars["date"]).tz_localize("UTC"))
    bars = workdir / "bars.parquet"
    frame.to_parquet(bars, index=False)
    path = write_yaml(bars_profile(workdir, bars), workdir / "p.yaml")
    result = run_cli("run", path, "--once", "--dry-run")
    assert result.code == 0, result.err
    assert "cycle 1 at 2020-12-31" in result.out


def test_a_named_pipe_as_data_never_hangs(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "bars.parquet")
    write_yaml(bars_profile(tmp_path, tmp_path / "bars.parquet"), tmp_path / "p.yaml")
    for args in (["validate", "p.yaml"], ["run", "p.yaml", "--once", "--dry-run"],
                 ["backtest", "p.yaml", "--start", "2020-06-01", "--end", "2020-12-31", "--out", "out"],
                 ["data", "status", "p.yaml"]):
        result = run_hybrid_process(*args, cwd=tmp_path, timeout=60)
        one_line(result, DATA, "not a regular file")


# ------------------------------------------------------------------ heartbeat and environment

@pytest.mark.parametrize("state", ["random-bytes", "folder", "empty", "huge", "fifo", "deep-json", "json-list",
                                   "bad-time", "utf16"])
def test_health_answers_0_or_1_for_any_heartbeat_file(run_cli, workdir: Path, state: str) -> None:  # type: ignore[no-untyped-def]
    path = workdir / "hb"
    if state == "random-bytes":
        path.write_bytes(bytes(range(256)) * 8)
    elif state == "folder":
        path.mkdir()
    elif state == "empty":
        path.write_bytes(b"")
    elif state == "huge":
        path.write_bytes(b" " * (1 << 20))
    elif state == "fifo":
        os.mkfifo(path)
    elif state == "deep-json":
        path.write_text("[" * 30000 + "]" * 30000)
    elif state == "json-list":
        path.write_text("[1, 2]")
    elif state == "bad-time":
        path.write_text(json.dumps({"time": "9" * 500, "cycle": {"a": [1] * 1000}}))
    elif state == "utf16":
        path.write_bytes(json.dumps({"time": "2021-01-01T00:00:00Z"}).encode("utf-16"))
    result = run_cli("health", "--file", path)
    assert result.code == UNHEALTHY, result.err
    assert result.out.startswith("UNHEALTHY: ") and len(result.out.splitlines()) == 1
    assert result.err == ""


def test_degraded_is_healthy_with_its_reason(run_cli, workdir: Path) -> None:  # type: ignore[no-untyped-def]
    from hybrid_core.ops.heartbeat import HeartbeatFile

    path = workdir / "hb"
    HeartbeatFile(path).write(cycle=3, mode="paper", status="degraded", reason="stale equity data")
    result = run_cli("health", "--file", path)
    assert result.code == 0 and result.out.startswith("OK (degraded)") and "stale equity data" in result.out


@pytest.mark.parametrize("value", ["abc", "-5", "0", "nan"])
def test_a_bad_environment_value_names_the_variable(run_cli, workdir: Path, monkeypatch, value: str) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("HYBRID_HEALTH_MAX_AGE", value)
    one_line(run_cli("health", "--file", workdir / "hb"), USAGE, f"HYBRID_HEALTH_MAX_AGE={value!r}", "--max-age")


def test_a_bad_switch_value_names_the_variable(run_cli, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("HYBRID_STRICT_PLUGINS", "maybe")
    one_line(run_cli("plugins"), USAGE, "HYBRID_STRICT_PLUGINS='maybe' is not a switch")


# ------------------------------------------------------------------ exit codes

@pytest.mark.parametrize("command", [
    ["backtest", "{p}", "--start", "2021-13-45", "--end", "2021-04-21", "--out", "out"],
    ["replay", "{p}", "--start", "2021-13-45", "--end", "2021-04-21"],
    ["run", "{p}", "--once", "--as-of", "2021-13-45"],
], ids=["backtest", "replay", "run"])
def test_a_bad_date_is_a_usage_error_in_every_command(run_cli, write_profile, workdir: Path, command) -> None:  # type: ignore[no-untyped-def]
    profile = str(write_profile())
    result = run_cli(*(a.replace("{p}", profile) for a in command))
    one_line(result, USAGE, "2021-13-45", "is not a date")
    assert not (workdir / "out").exists()


def test_the_exit_code_table_is_in_the_help_and_the_docs(run_cli) -> None:  # type: ignore[no-untyped-def]
    result = run_cli("--help")
    docs = (REPO / "docs" / "operations.md").read_text() + (REPO / "docs" / "profile.md").read_text()
    for code, meaning in exit_codes.TABLE:
        assert f"{code:>3}  {meaning}" in result.out
        assert f"| `{code}` |" in docs, code


def test_the_exit_codes_of_the_errors_come_from_the_table() -> None:
    from hybrid_core import errors

    classes = [errors.HybridError, errors.ProfileError, errors.EnvironmentValueError, errors.PluginLoadError,
               errors.ComponentError, errors.SafetyError, errors.BrokerError, errors.DataError]
    documented = {code for code, _ in exit_codes.TABLE}
    assert {c.exit_code for c in classes} <= documented
    assert errors.HybridError.exit_code == USAGE and errors.DataError.exit_code == DATA


# ------------------------------------------------------------------ quiet, truthful logs

def test_one_cycle_on_stale_data_says_so_in_one_line_per_kind(run_cli, write_profile, workdir: Path) -> None:  # type: ignore[no-untyped-def]
    from hybrid_core.data.quality import forget_logged_issues

    forget_logged_issues()  # a fresh process would warn: earlier tests in this one saw the same data
    result = run_cli("run", write_profile(), "--once", "--dry-run")
    assert result.code == 0, result.err
    warnings = [line for line in result.err.splitlines() if "| WARNING" in line or "| ERROR" in line]
    assert sum("data quality: stale: 42 symbol(s)" in line for line in warnings) == 1, warnings
    assert len([line for line in warnings if "stale" in line and "halted" not in line]) == 1
    assert any("New entries halted for this cycle" in line for line in warnings)


def test_the_real_cli_process_never_prints_a_traceback_for_bad_input(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_bytes(b"\xff\xfe\x00name: [")
    result = run_hybrid_process("validate", "p.yaml", cwd=tmp_path)
    assert result.code == USAGE and "Traceback" not in result.err and "internal error" not in result.err
    result = subprocess.run([sys.executable, "-m", "hybrid_core.cli", "health", "--file", str(tmp_path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == UNHEALTHY


@pytest.mark.parametrize("key, url, code, needle", [
    (None, None, exit_codes.BROKER, "Alpaca keys missing: set ALPACA_API_KEY and ALPACA_SECRET_KEY"),
    ("AKLIVEKEY", None, exit_codes.SAFETY, "key/mode mismatch: a live key"),
    ("PKPAPERKEY", "https://api.alpaca.markets", exit_codes.SAFETY,
     "URL/mode mismatch: https://api.alpaca.markets is Alpaca's live URL but the run is in paper mode"),
    ("PKPAPERKEY", "http://127.0.0.1:9", 0, ""),  # a local server: any mode
    ("PKPAPERKEY", None, 0, ""),
])
def test_validate_checks_the_broker_configuration(run_cli, workdir: Path, monkeypatch, key: str | None,  # type: ignore[no-untyped-def]
                                                  url: str | None, code: int, needle: str) -> None:
    monkeypatch.delenv("ALPACA_BASE_URL", raising=False)
    if key:
        monkeypatch.setenv("ALPACA_API_KEY", key)
        monkeypatch.setenv("ALPACA_SECRET_KEY", "secret")
    data = demo_profile_data(workdir)
    data["broker"] = {"name": "alpaca", **({"params": {"base_url": url}} if url else {})}
    result = run_cli("validate", write_yaml(data, workdir / "p.yaml"))
    if code:
        one_line(result, code, "broker: ", needle)
    else:
        assert result.code == 0, result.err


@pytest.mark.parametrize("option, value", [("--cash", "nan"), ("--cash", "-1"), ("--slippage-bps", "inf"),
                                           ("--commission", "1.5")])
def test_backtest_numbers_are_checked_before_running(run_cli, write_profile, workdir: Path, option: str,  # type: ignore[no-untyped-def]
                                                     value: str) -> None:
    result = run_cli("backtest", write_profile(), "--start", "2021-01-04", "--end", "2021-04-21",
                     "--out", workdir / "out", option, value)
    one_line(result, USAGE, option, "is not a finite number")
    assert not (workdir / "out").exists()


def test_a_trade_log_that_is_a_named_pipe_never_hangs(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "trades.csv")
    result = run_hybrid_process("report", "--file", "trades.csv", cwd=tmp_path, timeout=60)
    one_line(result, DATA, "trade log trades.csv is not a regular file")


def test_a_replay_refuses_bad_bars_before_writing_anything(run_cli, workdir: Path,  # type: ignore[no-untyped-def]
                                                           clean_bars: pd.DataFrame) -> None:
    bars = write_csv(BAR_PROBLEMS["high_below_low"][0](clean_bars.copy()), workdir / "bars.csv")
    path = write_yaml(bars_profile(workdir, bars), workdir / "p.yaml")
    result = run_cli("replay", path, "--start", "2020-09-01", "--end", "2020-12-31", "--out", workdir / "out")
    one_line(result, DATA, str(bars), "AAPL 2020-09-15: high_below_low")
    assert not (workdir / "out").exists()


def test_a_live_cycle_follows_the_profile_policy(run_cli, workdir: Path, clean_bars: pd.DataFrame) -> None:  # type: ignore[no-untyped-def]
    bars = write_csv(BAR_PROBLEMS["negative_volume"][0](clean_bars.copy()), workdir / "bars.csv")
    refuse = write_yaml(bars_profile(workdir, bars, quality="refuse"), workdir / "refuse.yaml")
    one_line(run_cli("run", refuse, "--once", "--dry-run"), DATA, "AAPL 2020-09-15: negative_volume")
    default = write_yaml(bars_profile(workdir, bars), workdir / "default.yaml")
    result = run_cli("run", default, "--once", "--dry-run", "--as-of", "2020-09-30")
    assert result.code == 0, result.err
    assert "New entries halted for this cycle: bad bars in the last 45 days (negative_volume: AAPL)" in result.err
    beat = json.loads((workdir / "hybrid.health").read_text())
    assert beat["status"] == "degraded" and "negative_volume" in beat["reasons"][0]
