"""Files a profile names: the one rule for relative paths, and reading them without surprises.

- :func:`resolve_path`: where a relative path points;
- :func:`regular_file_problem` / :func:`read_bounded`: only regular files are opened (a named
  pipe never hangs a command), with a size bound;
- :func:`bom_encoding`: the encoding a byte-order mark announces.

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


def regular_file_problem(path: Path, what: str, missing_hint: str = "") -> str | None:
    """Why ``path`` cannot be read as a regular file, from ``stat`` alone (a named pipe or a
    device is never opened, so never a hang); None when it can. ``what`` names it (``profile``)."""
    import os
    import stat

    try:
        info = os.stat(path)
    except FileNotFoundError:
        return f"{what} not found: {path}{f' ({missing_hint})' if missing_hint else ''}"
    except OSError as exc:
        return f"cannot read {what} {path}: {exc.strerror or exc}"
    if stat.S_ISDIR(info.st_mode):
        return f"{what} {path} is a folder, not a file"
    if not stat.S_ISREG(info.st_mode):
        return f"{what} {path} is not a regular file (a pipe, socket or device)"
    if not os.access(path, os.R_OK):
        return f"cannot read {what} {path}: permission denied"
    return None


def read_bounded(path: Path, what: str, max_bytes: int, missing_hint: str = "") -> bytes:
    """The bytes of the regular file ``path``, at most ``max_bytes``; ValueError (the one-line
    reason) when it is not a regular readable file or is larger."""
    problem = regular_file_problem(path, what, missing_hint)
    if problem is not None:
        raise ValueError(problem)
    try:
        with open(path, "rb") as handle:
            raw = handle.read(max_bytes + 1)
    except OSError as exc:
        raise ValueError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    if len(raw) > max_bytes:
        raise ValueError(f"{what} {path} is larger than {max_bytes:,} bytes; is it the right file?")
    return raw


_BOMS = ((b"\xff\xfe\x00\x00", "utf-32"), (b"\x00\x00\xfe\xff", "utf-32"), (b"\xef\xbb\xbf", "utf-8-sig"),
         (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16"))


def bom_encoding(head: bytes) -> str | None:
    """The encoding whose byte-order mark starts ``head`` (UTF-32 checked before UTF-16), or None."""
    for bom, encoding in _BOMS:
        if head.startswith(bom):
            return encoding
    return None
