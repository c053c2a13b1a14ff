"""One run per state database: an exclusive ``flock`` on a lock file next to it.

``flock`` locks belong to the open file: the kernel releases them when the process exits,
however it exits (SIGKILL, OOM, power loss), so a crashed run never leaves a stale lock.
The holder's pid, host and start time are written into the lock file so a second start
can say who holds it.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from loguru import logger

from ..errors import SafetyError

LOCK_SUFFIX = ".lock"


class InstanceLockedError(SafetyError):
    """Another process already holds the instance lock."""


def lock_path_for(path: str | os.PathLike[str]) -> Path:
    """The lock file for ``path``: ``path`` itself if it ends in ``.lock``, else ``<path>.lock``.

    Passing the state database path (``state/hybrid.sqlite``) therefore locks
    ``state/hybrid.sqlite.lock`` and never touches the database file.
    """
    target = Path(path)
    return target if target.name.endswith(LOCK_SUFFIX) else target.with_name(target.name + LOCK_SUFFIX)


class InstanceLock:
    """Context manager holding the exclusive lock of one state database.

    ``with InstanceLock("state/hybrid.sqlite"):`` raises :class:`InstanceLockedError`
    (a :class:`~hybrid_core.errors.SafetyError`) naming the holder's pid and the lock file
    when another run holds it.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = lock_path_for(path)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """True while this object holds the lock."""
        return self._fd is not None

    def holder(self) -> dict[str, Any]:
        """What the current holder wrote into the lock file (empty if unknown)."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8") or "{}")
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def acquire(self) -> InstanceLock:
        """Take the lock without waiting; raise :class:`InstanceLockedError` if it is taken."""
        if self._fd is not None:
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            info = self.holder()
            who = "another process"
            if info:
                who = (f"pid {info.get('pid', '?')} on {info.get('host', '?')}, "
                       f"started {info.get('started', '?')}")
            raise InstanceLockedError(
                f"another hybrid run ({who}) holds the lock {self.path}; only one run may use a state "
                f"database: stop that run first, or give this one its own outputs.state_db") from None
        except BaseException:
            os.close(fd)
            raise
        info = {"pid": os.getpid(), "host": socket.gethostname(),
                "started": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
        os.ftruncate(fd, 0)
        os.write(fd, (json.dumps(info) + "\n").encode())
        os.fsync(fd)
        self._fd = fd
        logger.debug("Instance lock {} taken", self.path, pid=info["pid"])
        return self

    def release(self) -> None:
        """Release the lock (the lock file stays, emptied, for the next run)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)
        except OSError:
            pass
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def __enter__(self) -> InstanceLock:
        return self.acquire()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()
