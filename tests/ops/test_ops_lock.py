"""Instance lock: one run per state database, clear message, no stale lock after a kill."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from hybrid_core.errors import SafetyError
from hybrid_core.ops.lock import InstanceLock, InstanceLockedError, lock_path_for

HOLDER = ("import sys, time\nfrom hybrid_core.ops.lock import InstanceLock\n"
          "lock = InstanceLock(sys.argv[1]).acquire()\nprint('held', flush=True)\ntime.sleep(60)\n")


def test_lock_file_sits_next_to_the_database(tmp_path: Path) -> None:
    assert lock_path_for(tmp_path / "hybrid.sqlite") == tmp_path / "hybrid.sqlite.lock"
    assert lock_path_for(tmp_path / "run.lock") == tmp_path / "run.lock"


def test_second_lock_refused_then_free_after_release(tmp_path: Path) -> None:
    db = tmp_path / "state" / "hybrid.sqlite"
    with InstanceLock(db) as first:
        assert first.held and first.holder()["pid"] == os.getpid()
        with pytest.raises(InstanceLockedError) as info:
            InstanceLock(db).acquire()
        message = str(info.value)
        assert f"pid {os.getpid()}" in message and str(tmp_path / "state" / "hybrid.sqlite.lock") in message
        assert "\n" not in message and isinstance(info.value, SafetyError)
    assert not db.exists()  # the database file itself is never touched
    with InstanceLock(db) as again:
        assert again.held


def test_other_process_holds_it_and_a_kill_frees_it(tmp_path: Path) -> None:
    db = tmp_path / "hybrid.sqlite"
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(db)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        with pytest.raises(InstanceLockedError, match=f"pid {proc.pid} "):
            InstanceLock(db).acquire()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    with InstanceLock(db) as lock:  # the kernel released the dead holder's lock
        assert lock.holder()["pid"] == os.getpid()
