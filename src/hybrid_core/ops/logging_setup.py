"""Logging for unattended runs: loguru sinks, JSON lines, a rotated file, secret redaction.

:func:`configure_logging` is called once by the CLI (calling it again replaces the previous
setup, so tests can call it freely). Every record, from hybrid's own ``loguru`` calls and
from stdlib ``logging`` users (alpaca-py, urllib3, yfinance), goes through the same sinks:

- stderr: a human line, or with ``json_logs`` one JSON object a line::

    {"timestamp": "2026-01-02T21:10:00.123456Z", "level": "INFO",
     "logger": "hybrid_core.live.cycle", "message": "Cycle completed",
     "cycle": 42, "signals_count": 3}

  Structured extras (``logger.bind(cycle=42)`` or ``logger.info("...", cycle=42)``) are
  flattened at top level, as Splunk, Datadog, ELK and Loki ingest them; an extra whose name
  clashes with a standard field is written as ``extra_<name>``.
- ``log_file``: the same lines in a file rotated by size (``ROTATION``), old files kept
  per ``RETENTION``.

Secrets never reach a sink: the values passed in ``secrets`` and those of the environment
variables ``ALPACA_API_KEY``, ``ALPACA_SECRET_KEY``, ``APCA_API_KEY_ID`` and any variable
whose name ends in ``_KEY``, ``_SECRET`` or ``_TOKEN`` are replaced by ``***`` in messages,
extras and exception text. Values shorter than ``MIN_SECRET_LENGTH`` are ignored so that a
setting such as ``FOO_KEY=1`` does not blank every digit 1.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import traceback
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC
from typing import Any

from loguru import logger

from ..errors import HybridError

ROTATION = "20 MB"
"""Size at which the log file is rotated."""
RETENTION = 10
"""Rotated log files kept (the oldest are deleted)."""
MIN_SECRET_LENGTH = 6
"""Shorter values are never treated as secrets (too likely to match ordinary text)."""
REDACTED = "***"

SECRET_ENV_NAMES = ("ALPACA_API_KEY", "ALPACA_SECRET_KEY", "APCA_API_KEY_ID", "APCA_API_SECRET_KEY")
SECRET_ENV_SUFFIXES = ("_KEY", "_SECRET", "_TOKEN")
RESERVED_FIELDS = frozenset({"timestamp", "level", "logger", "message", "function", "line", "exception"})


def secrets_from_env(environ: Mapping[str, str] | None = None) -> list[str]:
    """Values of the environment variables that hold credentials (see module docstring)."""
    env = os.environ if environ is None else environ
    found = []
    for name, value in env.items():
        upper = name.upper()
        if upper in SECRET_ENV_NAMES or upper.endswith(SECRET_ENV_SUFFIXES):
            found.append(value)
    return found


class Redactor:
    """Replaces every known secret value in text by ``***`` (longest secrets first)."""

    def __init__(self, secrets: Iterable[str]) -> None:
        values = sorted({s.strip() for s in secrets if s and len(s.strip()) >= MIN_SECRET_LENGTH},
                        key=len, reverse=True)
        self._pattern = re.compile("|".join(re.escape(v) for v in values)) if values else None

    def text(self, value: str) -> str:
        """``value`` with secrets replaced."""
        if self._pattern is None or not value:
            return value
        return self._pattern.sub(REDACTED, value)

    def value(self, value: Any) -> Any:
        """A JSON-friendly copy of ``value`` with secrets replaced in every string inside it."""
        if isinstance(value, str):
            return self.text(value)
        if value is None or isinstance(value, (bool, int, float)):
            return value
        if isinstance(value, Mapping):
            return {self.text(str(k)): self.value(v) for k, v in value.items()}
        if isinstance(value, (list, tuple, set, frozenset)):
            return [self.value(v) for v in value]
        return self.text(str(value))


_redactor = Redactor(())
_handler_ids: list[int] = []


def _timestamp(record: Mapping[str, Any]) -> str:
    return record["time"].astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _exception_text(record: Mapping[str, Any]) -> str | None:
    exc = record["exception"]
    if exc is None or exc.type is None:
        return None
    text = "".join(traceback.format_exception(exc.type, exc.value, exc.traceback))
    return _redactor.text(text.rstrip("\n"))


def _public_extras(record: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record["extra"].items() if not k.startswith("_")}


def json_line(record: Mapping[str, Any]) -> str:
    """The JSON object (one line, no newline) that represents one loguru record."""
    out: dict[str, Any] = {
        "timestamp": _timestamp(record),
        "level": record["level"].name,
        "logger": record["name"],
        "message": _redactor.text(record["message"]),
        "function": record["function"],
        "line": record["line"],
    }
    for key, value in _public_extras(record).items():
        out[f"extra_{key}" if key in RESERVED_FIELDS else key] = _redactor.value(value)
    exc = _exception_text(record)
    if exc is not None:
        out["exception"] = exc
    return json.dumps(out, default=str, ensure_ascii=False)


def text_line(record: Mapping[str, Any]) -> str:
    """The human line (no newline) for one record: time, level, origin, message, extras."""
    extras = " ".join(f"{k}={_redactor.value(v)}" for k, v in _public_extras(record).items())
    line = (f"{_timestamp(record)} | {record['level'].name:<8} | "
            f"{record['name']}:{record['function']}:{record['line']} - "
            f"{_redactor.text(record['message'])}")
    if extras:
        line += f" | {extras}"
    exc = _exception_text(record)
    if exc is not None:
        line += "\n" + exc
    return line


def _formatter(render: Any) -> Any:
    def fmt(record: dict[str, Any]) -> str:
        record["extra"]["_line"] = render(record)
        return "{extra[_line]}\n"
    return fmt


def _redact_record(record: Any) -> None:
    """Core patcher: redact message and extras for every sink, including ones added by others."""
    record["message"] = _redactor.text(record["message"])
    for key, value in list(record["extra"].items()):
        if not key.startswith("_"):
            record["extra"][key] = _redactor.value(value)


def _write_stderr(message: str) -> None:
    # Resolve sys.stderr at write time: pytest and daemons swap it after configuration.
    sys.stderr.write(message)
    sys.stderr.flush()


class InterceptHandler(logging.Handler):
    """Sends stdlib ``logging`` records (alpaca-py, urllib3, yfinance) to loguru."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        try:
            message = record.getMessage()
        except Exception:  # a library's malformed format string must not kill the run
            message = str(record.msg)
        name, function, line = record.name, record.funcName, record.lineno
        exc = record.exc_info if record.exc_info and record.exc_info[0] is not None else None

        def origin(r: Any) -> None:
            r.update(name=name, function=function, line=line)

        logger.patch(origin).opt(exception=exc).log(level, message)


def configure_logging(*, json_logs: bool = False, log_file: str | None = None, level: str = "INFO",
                      secrets: Sequence[str] = ()) -> None:
    """Install hybrid's log sinks (stderr, optional rotated file) and secret redaction.

    Replaces every loguru handler and the stdlib root handlers, so it is safe to call twice.
    """
    global _redactor
    level = level.upper()
    try:
        logger.level(level)
    except ValueError:
        raise HybridError(f"unknown log level {level!r}; use one of TRACE, DEBUG, INFO, SUCCESS, "
                          "WARNING, ERROR, CRITICAL") from None
    _redactor = Redactor([*secrets, *secrets_from_env()])
    logger.remove()
    _handler_ids.clear()
    logger.configure(patcher=_redact_record)
    fmt = _formatter(json_line if json_logs else text_line)
    common: dict[str, Any] = {"level": level, "format": fmt, "colorize": False,
                              "backtrace": False, "diagnose": False}
    _handler_ids.append(logger.add(_write_stderr, **common))
    if log_file:
        os.makedirs(os.path.dirname(os.path.abspath(log_file)), exist_ok=True)
        _handler_ids.append(logger.add(log_file, rotation=ROTATION, retention=RETENTION,
                                       encoding="utf-8", **common))
    logging.basicConfig(handlers=[InterceptHandler()], level=logging.getLevelName(_stdlib_level(level)),
                        force=True)
    for noisy in ("urllib3", "yfinance", "peewee", "websockets", "asyncio"):
        logging.getLogger(noisy).setLevel(max(logging.INFO, _stdlib_level(level)))


def _stdlib_level(level: str) -> int:
    mapping = {"TRACE": logging.DEBUG, "SUCCESS": logging.INFO}
    value = mapping.get(level, logging.getLevelName(level))
    return value if isinstance(value, int) else logging.INFO


def redact(text: str) -> str:
    """``text`` with the secrets known to the current logging setup replaced by ``***``."""
    return _redactor.text(text)
