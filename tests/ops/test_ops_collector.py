"""The collector's start-up pause: rare young collections while importing, then frozen and restored."""

from __future__ import annotations

import gc
import subprocess
import sys

import pytest

from hybrid_core.ops import collector


@pytest.fixture
def fresh_process_state(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """The module as a new process has it; the test process's thresholds and frozen set restored after."""
    monkeypatch.setattr(collector, "_state", {})
    thresholds = gc.get_threshold()
    yield thresholds
    gc.set_threshold(*thresholds)
    gc.unfreeze()


def test_start_up_is_paused_then_frozen_and_restored_once(fresh_process_state) -> None:  # type: ignore[no-untyped-def]
    before = fresh_process_state
    collector.pause_for_start_up()
    assert gc.get_threshold() == (max(collector.START_UP_THRESHOLD, before[0]), *before[1:])
    made_at_start_up = [[] for _ in range(1000)]  # containers start-up would leave behind
    gc.unfreeze()
    collector.start_up_done()
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() >= len(made_at_start_up)
    collector.pause_for_start_up()  # a second main() in the same process: nothing changes
    assert gc.get_threshold() == before
    collector.start_up_done()
    assert gc.get_threshold() == before


def test_done_without_pause_changes_nothing(fresh_process_state) -> None:  # type: ignore[no-untyped-def]
    gc.unfreeze()
    collector.start_up_done()
    assert gc.get_threshold() == fresh_process_state and gc.get_freeze_count() == 0


def test_hybrid_process_restores_the_collector_once_the_plugins_are_loaded() -> None:
    """In a fresh process running ``hybrid plugins`` (which loads every plugin), the thresholds are
    Python's defaults again afterwards and what start-up made is frozen."""
    code = ("import gc, sys; from hybrid_core.cli import build_cli, main; default = gc.get_threshold(); "
            "cli = build_cli()\n"
            "try:\n    main(['plugins', '--json'], cli=cli)\nexcept SystemExit:\n    pass\n"
            "print(gc.get_threshold() == default, gc.get_freeze_count() > 10000, file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stderr.strip().splitlines()[-1] == "True True", done.stderr
