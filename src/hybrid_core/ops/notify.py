"""Notifications: a :class:`~hybrid_core.ops.observer.RunObserver` that tells people what happened.

Events (what a profile's ``notify[i].events`` chooses from):

=========  ==================================================================================
fill       an order filled (side, quantity, symbol, price, reason, strategy)
refused    a risk rule refused an order (the rule's one-line reason)
guard      a portfolio guard refused an order (max daily loss, drawdown, open positions, kill
           switch); a target that does not want ``guard`` gets it as ``refused``
error      a cycle failed, the broker rejected an order, or the run failed
stale      the data quality gate halted new entries for a cycle (its reason)
start      the run passed its safety checks (broker, strategies)
stop       the run ended (how, after how many cycles); a failed run is also an ``error``
=========  ==================================================================================

What a cycle produces is gathered and sent as one message per target when the cycle ends
(start and stop are sent at once), so 40 refusals by the kill switch make one message, not
40. Each message says the profile and the run's mode (``paper``, ``LIVE``, ``dry run``), lists
at most :data:`MAX_LINES` lines per kind and counts the rest.

Repeats are rate-limited per target: the same event (kind plus rule, error or data problem;
every fill is its own event) is sent at most once per ``rate_limit_s``. Repeats in between are
counted; the next message of that event, and the stop message, say how many were not sent.

Sending happens on each target's worker thread (:class:`~hybrid_core.ops.notify_channel.NotifyChannel`);
this observer only formats and queues, so it never delays a cycle.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import attrs

from ..errors import HybridError
from .notify_channel import EXIT_GRACE_S, Message, NotifyChannel, SendResult
from .notify_targets import NOTIFY_EVENTS, NotifyTarget
from .observer import RunInfo, RunObserver, error_component

if TYPE_CHECKING:
    from ..contracts import OrderIntent
    from ..data.quality import QualityReport
    from ..live.cycle import CycleResult

MAX_LINES = 10
"""Lines of one kind in one message; the rest are counted ("... and 30 more")."""
MAX_LINE_CHARS = 300
ORDER = ("error", "guard", "stale", "refused", "fill", "start", "stop")
"""Kinds in the order a message lists them (most urgent first)."""
SEVERITY = {"error": "failure", "guard": "warning", "stale": "warning", "refused": "warning", "fill": "success"}
PLURAL = {"fill": "fills", "refused": "refused", "guard": "guard", "error": "errors", "stale": "stale data",
          "start": "start", "stop": "stop"}
assert set(ORDER) == set(NOTIFY_EVENTS)


@attrs.frozen
class Notice:
    """One thing worth telling: the kinds it counts as (most specific first), a rate-limit key, a line."""

    kinds: tuple[str, ...]
    key: str
    line: str

    def kind_for(self, target: NotifyTarget) -> str | None:
        """The first of this notice's kinds that ``target`` wants, or None."""
        return next((k for k in self.kinds if target.wants(k)), None)


class RateLimiter:
    """The same (kind, key) at most once per ``interval_s``; repeats are counted until the next send."""

    def __init__(self, interval_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval_s = interval_s
        self.clock = clock
        self._last: dict[tuple[str, str], float] = {}
        self._held: dict[tuple[str, str], int] = {}
        self._since: dict[tuple[str, str], datetime] = {}

    def admit(self, kind: str, key: str, count: int = 1) -> tuple[bool, int]:
        """(send now?, repeats held back since the last send, which the caller reports when sending)."""
        slot = (kind, key)
        now = self.clock()
        last = self._last.get(slot)
        if kind == "fill" or self.interval_s <= 0 or last is None or now - last >= self.interval_s:
            self._last[slot] = now
            self._since.pop(slot, None)
            return True, self._held.pop(slot, 0)
        self._held[slot] = self._held.get(slot, 0) + count
        self._since.setdefault(slot, datetime.now(UTC))
        return False, 0

    def held(self) -> dict[tuple[str, str], tuple[int, datetime]]:
        """Repeats not sent so far, with the time of the first, then forgotten (the stop message)."""
        out = {slot: (n, self._since.get(slot, datetime.now(UTC))) for slot, n in self._held.items() if n}
        self._held.clear()
        self._since.clear()
        return out


def _qty(value: Any) -> str:
    try:
        return f"{float(value):g}"
    except (TypeError, ValueError):
        return str(value)


def _price(value: Any) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "?"
    return f"{number:,.2f}" if number == number else "?"


def _short(line: str) -> str:
    line = " ".join(line.split())
    return line if len(line) <= MAX_LINE_CHARS else line[: MAX_LINE_CHARS - 3] + "..."


def _guard_names() -> frozenset[str]:
    from ..builtin.guards import GUARD_NAMES

    return GUARD_NAMES


class Notifier(RunObserver):
    """Turns a run's events into messages for each target (see the module docstring)."""

    def __init__(self, targets: Sequence[NotifyTarget], *, on_result: SendResult | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.channels = [NotifyChannel(t, on_result=on_result) for t in targets]
        self.limiters = {c.target.index: RateLimiter(c.target.rate_limit_s, clock) for c in self.channels}
        self.guards = _guard_names()
        self.run: RunInfo | None = None
        self.cycles = 0
        self._pending: list[Notice] = []

    # ------------------------------------------------------------- observer
    def run_started(self, run: RunInfo) -> None:
        self.run = run
        strategies = ", ".join(run.strategies) or "none"
        self._send([Notice(("start",), "start", f"START broker {run.broker}, strategies {strategies}")])

    def data_checked(self, report: QualityReport) -> None:
        if report.halt_entries:
            self._pending.append(Notice(("stale",), "stale", f"STALE {report.reason}"))

    def order_refused(self, intent: OrderIntent, rule: str, reason: str) -> None:
        kinds = ("guard", "refused") if rule in self.guards else ("refused",)
        tag = "GUARD" if rule in self.guards else "REFUSED"
        self._pending.append(Notice(kinds, rule, f"{tag} {intent.side} {_qty(intent.qty)} {intent.symbol} @ "
                                                 f"{_price(intent.ref_price)}: {reason}"))

    def order_event(self, event: Mapping[str, Any]) -> None:
        status = event.get("status")
        what = f"{event.get('side')} {_qty(event.get('qty'))} {event.get('symbol')} @ {_price(event.get('price'))}"
        if status == "filled":
            why = ", ".join(str(v) for v in (event.get("reason"), event.get("strategy")) if v)
            self._pending.append(Notice(("fill",), str(event.get("client_order_id") or what),
                                        f"FILL {what}{f' ({why})' if why else ''}"))
        elif status in ("rejected", "unknown"):
            signal = event.get("signal")
            error = signal.get("error") if isinstance(signal, Mapping) else None
            verdict = "broker rejected" if status == "rejected" else "broker did not confirm (unknown, looked up by id)"
            self._pending.append(Notice(("error",), f"broker:{event.get('symbol')}",
                                        f"ERROR {verdict} {what}: {error or 'no reason given'}"))

    def cycle_finished(self, result: CycleResult, error: BaseException | None = None) -> None:
        self.cycles += 1
        if result.status == "error":
            component = error_component(error)
            self._pending.append(Notice(("error",), f"{component}:{result.error}",
                                        f"ERROR cycle {result.cycle} failed ({component}): {result.error}"))
        pending, self._pending = self._pending, []
        self._send(pending, cycle=result.cycle)

    def run_stopped(self, reason: str, error: BaseException | None = None) -> None:
        pending, self._pending = self._pending, []
        self._send([*pending, self._stop_notice(reason, error)], final=True)

    def _stop_notice(self, reason: str, error: BaseException | None) -> Notice:
        """STOP, or ERROR for a run that failed (Ctrl-C is a stop)."""
        if isinstance(error, KeyboardInterrupt):
            error, reason = None, "interrupted (Ctrl-C)"
        if error is None:
            return Notice(("stop",), "stop", f"STOP ({reason}) after {self.cycles} cycle(s)")
        what = str(error) if isinstance(error, HybridError) and str(error) else f"{type(error).__name__}: {error}"
        when = "before its first cycle" if self.run is None else f"after {self.cycles} cycle(s)"
        return Notice(("error", "stop"), "run", f"ERROR the run failed {when}: {what}")

    def close(self) -> None:
        if not self.channels:
            return
        deadline = time.monotonic() + max(c.target.timeout_s for c in self.channels) + EXIT_GRACE_S
        for channel in self.channels:  # one deadline for all: exit waits for the slowest channel only
            channel.close(deadline)

    # ------------------------------------------------------------ messages
    def _send(self, notices: Sequence[Notice], *, cycle: int | None = None, final: bool = False) -> None:
        for channel in self.channels:
            message = self.message_for(channel.target, notices, cycle=cycle, final=final)
            if message is not None:
                channel.offer(message)

    def message_for(self, target: NotifyTarget, notices: Sequence[Notice], *, cycle: int | None = None,
                    final: bool = False) -> Message | None:
        """The message ``target`` gets for ``notices`` (None when it wants none of them now)."""
        limiter = self.limiters[target.index]
        chosen: dict[str, list[tuple[str, str]]] = {}
        for notice in notices:
            kind = notice.kind_for(target)
            if kind is not None:
                chosen.setdefault(kind, []).append((notice.key, notice.line))
        lines: list[str] = []
        counts: list[str] = []
        for kind in ORDER:
            entries = chosen.get(kind, [])
            sent: list[str] = []
            by_key: dict[str, list[str]] = {}
            for key, line in entries:
                by_key.setdefault(key, []).append(line)
            for key, group in by_key.items():
                admitted, held = limiter.admit(kind, key, len(group))
                if not admitted:
                    continue
                if held:
                    group = [*group[:-1], f"{group[-1]} (+{held} like it not sent: rate limit)"]
                sent.extend(group)
            if not sent:
                continue
            counts.append(f"{len(sent)} {PLURAL[kind]}" if kind not in {"start", "stop"} else kind)
            lines.extend(_short(line) for line in sent[:MAX_LINES])
            if len(sent) > MAX_LINES:
                lines.append(f"... and {len(sent) - MAX_LINES} more {PLURAL[kind]}")
        if final:
            for (kind, key), (n, since) in sorted(limiter.held().items()):
                lines.append(f"not sent (rate limit) since {since:%Y-%m-%d %H:%M} UTC: {n} {PLURAL[kind]} ({key})")
        if not counts:
            return None
        run = self.run
        who = f"hybrid {run.profile} ({run.label})" if run is not None else "hybrid"
        where = f" cycle {cycle}" if cycle is not None else ""
        severity = next((SEVERITY[k] for k in ORDER if k in chosen and k in SEVERITY), "info")
        return Message(title=f"{who}{where}: {', '.join(counts)}", body="\n".join(lines), severity=severity)


def notify_test_message(target: NotifyTarget, profile: str, mode: str) -> Message:
    """The message ``hybrid notify test`` sends."""
    import socket

    return Message(title=f"hybrid {profile} ({mode}): test",
                   body=f"TEST notification from `hybrid notify test` on {socket.gethostname()} to {target.name}; "
                        f"events: {', '.join(e for e in ORDER if target.wants(e))}")
