"""The one rule for relative paths a profile names (data files, universes, caches).

``resolve_path(raw, base_dir)``: ``~`` is expanded; a relative path is taken from the
profile's folder (``base_dir``), never from the working folder, so a profile behaves the same
whatever folder ``hybrid`` runs from. ``hybrid validate`` and the run use this same function.
(``outputs.*`` paths are the exception, documented in docs/profile.md: they follow the
working folder, like ``--out`` and ``--trade-log``.)
"""

from __future__ import annotations

from pathlib import Path


def resolve_path(raw: str | Path, base_dir: Path | None) -> Path:
    """``raw`` as an absolute path: ``~`` expanded, relative paths from ``base_dir`` (else cwd)."""
    path = Path(raw).expanduser()
    if path.is_absolute():
        return path
    return ((base_dir or Path.cwd()) / path).resolve()
