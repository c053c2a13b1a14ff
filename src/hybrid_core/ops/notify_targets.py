"""The profile's ``notify:`` section and its resolution into Apprise channels.

A profile lists the channels to notify and the events each wants::

    notify:
      - url: $HYBRID_NOTIFY_TELEGRAM          # the Apprise URL, read from the environment
        events: [fill, refused, guard, error, stale, start, stop]
        timeout_s: 10                         # at most this long per send
        rate_limit_s: 900                     # the same event at most once per 15 minutes

Notification URLs carry tokens (a Telegram bot token, a Slack webhook, an SMTP password, a
secret ntfy topic), so a profile names an environment variable (``$NAME`` or ``${NAME}``),
never the URL itself; :func:`hybrid_core.profile.load_profile` refuses a literal URL like any
other secret. :func:`resolve_targets` expands the references when a run starts and asks
Apprise to parse each URL: a missing variable or a URL Apprise does not understand stops the
run before it trades, with one line naming the target (never the URL's value).

Apprise is imported only here, and only when a profile has targets.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import unquote

import attrs

NOTIFY_EVENTS = ("fill", "refused", "guard", "error", "stale", "start", "stop")
"""Events a target may ask for (see docs/operations.md, "Notifications")."""
ENV_REFERENCE = re.compile(r"\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)\}|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))")
"""``$NAME`` or ``${NAME}``: the whole value of ``notify[i].url``."""
MIN_SECRET_PART = 6
"""Shorter pieces of a URL are not redacted from logs (they would blank ordinary text)."""
MAX_TIMEOUT_S = 120.0


def env_reference(value: str) -> str | None:
    """The variable named by ``value`` when it is exactly ``$NAME`` or ``${NAME}``, else None."""
    match = ENV_REFERENCE.fullmatch(value.strip())
    if match is None:
        return None
    return match.group("braced") or match.group("bare")


def _events(_instance: object, attribute: attrs.Attribute, value: list[str]) -> None:
    unknown = [e for e in value if e not in NOTIFY_EVENTS]
    if unknown:
        raise ValueError(f"{attribute.name} has unknown event(s) {', '.join(map(repr, unknown))}; "
                         f"choose from {', '.join(NOTIFY_EVENTS)}")
    if not value:
        raise ValueError(f"{attribute.name} is empty; name at least one of {', '.join(NOTIFY_EVENTS)}")


def _timeout(_instance: object, attribute: attrs.Attribute, value: float) -> None:
    if not 0 < value <= MAX_TIMEOUT_S:
        raise ValueError(f"{attribute.name} must be more than 0 and at most {MAX_TIMEOUT_S:.0f} seconds, got {value}")


def _non_negative(_instance: object, attribute: attrs.Attribute, value: float) -> None:
    if value < 0:
        raise ValueError(f"{attribute.name} must be 0 or more seconds, got {value}")


@attrs.define(kw_only=True)
class NotifySpec:
    """``notify[i]``: one channel (an Apprise URL from the environment) and the events it wants."""

    url: str
    """``$NAME`` or ``${NAME}``: the environment variable holding the Apprise URL."""
    events: list[str] = attrs.field(factory=lambda: list(NOTIFY_EVENTS), validator=_events)
    """Which of fill, refused, guard, error, stale, start, stop to send (default: all)."""
    timeout_s: float = attrs.field(default=10.0, validator=_timeout)
    """Longest a single send may take (connect and read timeouts); the cycle never waits for it."""
    rate_limit_s: float = attrs.field(default=900.0, validator=_non_negative)
    """The same event (kind and rule, error or data problem) is sent at most once per this many
    seconds; repeats in between are counted and summarised in the next message. 0: no limit."""


@attrs.define(eq=False)
class NotifyTarget:
    """A resolved channel: the Apprise plugin that sends, and what it wants."""

    index: int
    variable: str
    events: frozenset[str]
    timeout_s: float
    rate_limit_s: float
    plugin: Any
    """An Apprise notification plugin (``apprise.Apprise.instantiate``)."""
    secrets: tuple[str, ...] = ()
    """The URL and its private parts: redacted from every log line."""

    @property
    def name(self) -> str:
        """How logs and ``hybrid notify test`` name the target, without any secret."""
        shown = str(self.plugin.url(privacy=True)).split("?", 1)[0]
        return f"notify[{self.index}] ${self.variable} ({shown})"

    def wants(self, kind: str) -> bool:
        """True when this target asked for events of ``kind``."""
        return kind in self.events


class AppriseMessages(logging.Handler):
    """Keeps the last warning Apprise logged on each thread: the reason a send or a parse failed.

    Apprise reports failures by logging, not by raising; its lines are kept out of hybrid's
    logs (a failing channel would log every send) and hybrid logs one line per failure burst.
    """

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self._local = threading.local()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._local.last = record.getMessage()
        except Exception:  # a malformed library log line must not break a send
            self._local.last = str(record.msg)

    def take(self) -> str:
        """The last warning on this thread (then forgotten), or ""."""
        last = getattr(self._local, "last", "")
        self._local.last = ""
        return str(last)


_messages: AppriseMessages | None = None
_messages_lock = threading.Lock()


def apprise_messages() -> AppriseMessages:
    """The handler holding Apprise's failure reasons (installed on first use)."""
    global _messages
    with _messages_lock:
        if _messages is None:
            _messages = AppriseMessages()
            apprise_logger = logging.getLogger("apprise")
            apprise_logger.addHandler(_messages)
            apprise_logger.setLevel(logging.WARNING)
            apprise_logger.propagate = False
        return _messages


def _secret_parts(plugin: Any, raw: str) -> tuple[str, ...]:
    """``raw`` and every piece of the URL that Apprise masks when asked for a private rendering."""
    full, private = str(plugin.url()), str(plugin.url(privacy=True))
    split = re.compile(r"[/:@?&=#,]+")
    shown = set(split.split(unquote(private)))
    parts = {p for p in split.split(unquote(full)) if len(p) >= MIN_SECRET_PART and p not in shown}
    return tuple(sorted({raw, *parts}, key=len, reverse=True))


def resolve_targets(specs: Sequence[NotifySpec], environ: Mapping[str, str] | None = None) -> list[NotifyTarget]:
    """Expand each target's environment reference and parse it with Apprise.

    Raises one :class:`ProfileError` listing every target that cannot be used."""
    if not specs:
        return []
    env = os.environ if environ is None else environ
    import apprise

    messages = apprise_messages()
    targets: list[NotifyTarget] = []
    problems: list[str] = []
    for i, spec in enumerate(specs):
        where = f"notify[{i}].url"
        variable = env_reference(spec.url)
        if variable is None:  # load_profile refuses these; a profile built in code may not have been loaded
            problems.append(f"{where}: expected $NAME, the environment variable holding the Apprise URL")
            continue
        raw = env.get(variable, "").strip()
        if not raw:
            problems.append(f"{where}: environment variable {variable} is not set; export the channel's "
                            f"Apprise URL in it (e.g. tgram://BOT_TOKEN/CHAT_ID) or remove the target")
            continue
        plugin = apprise.Apprise.instantiate(raw)
        messages.take()  # Apprise's reason quotes the URL, secrets and all: never shown
        if plugin is None:
            scheme = raw.split("://", 1)[0] if "://" in raw else ""
            problems.append(f"{where}: ${variable} is not a URL Apprise can send to"
                            f"{f' (scheme {scheme!r} unknown, or the URL malformed for it)' if scheme else ''}; "
                            f"see the Apprise wiki for the URL of each service")
            continue
        plugin.socket_connect_timeout = spec.timeout_s
        plugin.socket_read_timeout = spec.timeout_s
        targets.append(NotifyTarget(index=i, variable=variable, events=frozenset(spec.events),
                                    timeout_s=spec.timeout_s, rate_limit_s=spec.rate_limit_s, plugin=plugin,
                                    secrets=_secret_parts(plugin, raw)))
    if problems:
        from ..profile import profile_error

        raise profile_error(problems)
    return targets


def target_secrets(targets: Iterable[NotifyTarget]) -> list[str]:
    """Every secret of ``targets``, for :func:`hybrid_core.ops.logging_setup.configure_logging`."""
    return [s for t in targets for s in t.secrets]
