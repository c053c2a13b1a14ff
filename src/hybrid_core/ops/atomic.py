"""Atomic file replacement: readers see the old content or the new, never a mix or a torn file.

:func:`atomic_replace` writes one file; :func:`staged_directory` a folder of outputs (``--out``).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


def fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (not possible on every filesystem; then a no-op)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_replace(path: Path, *, sync_dir: bool = True, durable: bool = True) -> Iterator[BinaryIO]:
    """Write through the yielded handle; on success ``path`` is replaced (temp file + fsync +
    os.replace), on any error the temp file is removed and ``path`` is untouched.

    ``durable=False`` skips both fsyncs: still atomic for readers and against a killed process
    (the rename is), not against a power loss (replays, whose files can be made again)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if sync_dir and durable:
        fsync_dir(path.parent)


@contextlib.contextmanager
def staged_directory(target: Path) -> Iterator[Path]:
    """Write a folder's files through the yielded temporary folder; they reach ``target`` only
    when the block succeeds, so a failed command leaves ``target`` as it was (or absent).

    The staging folder is a hidden sibling (same filesystem, so moves are renames). A new
    ``target`` is created by one rename; an existing one gets each file replaced with
    :func:`os.replace`, and its other files are left alone. On any error the staging folder
    is removed.
    """
    import shutil

    target = Path(target)
    anchor = target.parent
    while not anchor.exists() and anchor != anchor.parent:
        anchor = anchor.parent
    import uuid

    from ..errors import HybridError

    stage = anchor / f".{target.name}.{uuid.uuid4().hex[:12]}.tmp"
    try:
        stage.mkdir()  # not mkdtemp: the folder keeps the umask's permissions once renamed
    except OSError as exc:
        raise HybridError(f"cannot write outputs to {target}: {exc.strerror or exc} (in {anchor})") from None
    try:
        yield stage
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.exists():
                os.rename(stage, target)
                fsync_dir(target.parent)
                return
            for item in sorted(stage.iterdir()):
                os.replace(item, target / item.name)
        except OSError as exc:
            raise HybridError(f"cannot write outputs to {target}: {exc.strerror or exc}") from None
        fsync_dir(target)
    finally:
        if stage.exists():
            shutil.rmtree(stage, ignore_errors=True)
