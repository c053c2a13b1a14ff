"""One notification channel: a bounded queue and a worker thread, off the cycle's path.

:meth:`NotifyChannel.offer` never blocks: it puts the message on a queue of at most
:data:`QUEUE_SIZE` messages, or drops it when the queue is full (a channel that has been down
long enough to fill it). A worker thread sends what is queued, one message at a time, each
bounded by the target's ``timeout_s`` (Apprise's connect and read timeouts). So a slow,
hanging or failing channel never delays a cycle, nor another channel.

Failures are logged once per burst: the first failed send logs a WARNING with the reason
Apprise gave, further failures are only counted, and the first success after them logs one
line saying the channel works again. Drops on a full queue are logged the same way.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable

import attrs
from loguru import logger

from .notify_targets import NotifyTarget, apprise_messages

QUEUE_SIZE = 64
"""Messages waiting for one channel; more are dropped (and counted) until it catches up."""
EXIT_GRACE_S = 1.0
"""At exit, a channel gets its ``timeout_s`` plus this long to send what is queued."""


@attrs.frozen
class Message:
    """What a channel sends: a title, a body of short lines, and its severity."""

    title: str
    body: str
    severity: str = "info"
    """``info``, ``success``, ``warning`` or ``failure`` (Apprise's notification types)."""


def send_message(target: NotifyTarget, message: Message) -> tuple[bool, str]:
    """Send ``message`` to ``target`` on this thread, within its timeout: (ok, Apprise's reason if not)."""
    import apprise

    messages = apprise_messages()
    messages.take()
    kind = {"success": apprise.NotifyType.SUCCESS, "warning": apprise.NotifyType.WARNING,
            "failure": apprise.NotifyType.FAILURE}.get(message.severity, apprise.NotifyType.INFO)
    try:
        ok = bool(target.plugin.notify(body=message.body, title=message.title, notify_type=kind))
    except Exception as exc:  # a plugin bug must not kill the worker
        return False, f"{type(exc).__name__}: {exc}"
    return ok, "" if ok else (messages.take() or "the service did not accept the message")


SendResult = Callable[[NotifyTarget, str], None]
"""Called with the target and ``sent``, ``failed`` or ``dropped`` after each message (metrics)."""


class NotifyChannel:
    """Sends messages to one target from a worker thread; see the module docstring."""

    def __init__(self, target: NotifyTarget, *, queue_size: int = QUEUE_SIZE,
                 on_result: SendResult | None = None) -> None:
        self.target = target
        self.on_result = on_result
        self.queue: queue.Queue[Message | None] = queue.Queue(maxsize=queue_size)
        self.sent = self.failed = self.dropped = 0
        self._failing = 0
        self._dropping = 0
        self._deadline: float | None = None
        self._abandoned = 0
        self._thread = threading.Thread(target=self._work, name=f"hybrid-notify-{target.index}", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------- cycle side
    def offer(self, message: Message) -> bool:
        """Queue ``message`` without waiting; False when the queue is full (the message is dropped)."""
        try:
            self.queue.put_nowait(message)
        except queue.Full:
            self.dropped += 1
            self._dropping += 1
            if self._dropping == 1:
                logger.warning("Notifications to {target} are not keeping up ({size} queued); new messages are "
                               "dropped until it catches up", target=self.target.name, size=self.queue.maxsize)
            self._report("dropped")
            return False
        if self._dropping:
            logger.info("Notifications to {target} are queued again; {n} message(s) were dropped",
                        target=self.target.name, n=self._dropping)
            self._dropping = 0
        return True

    def close(self, deadline: float | None = None) -> int:
        """Send what is queued until ``deadline`` (monotonic; default ``timeout_s`` + :data:`EXIT_GRACE_S`
        from now), then stop; returns how many messages were not sent."""
        self._deadline = deadline if deadline is not None else time.monotonic() + self.target.timeout_s + EXIT_GRACE_S
        try:
            self.queue.put(None, timeout=max(self._deadline - time.monotonic(), 0.0))
        except queue.Full:
            pass
        self._thread.join(timeout=max(self._deadline - time.monotonic(), 0.0))
        unsent = (self._abandoned + sum(1 for m in list(self.queue.queue) if m is not None)
                  + (1 if self._thread.is_alive() else 0))
        if unsent:
            logger.warning("{n} notification(s) to {target} not sent at exit: the channel did not answer "
                           "within {s:g} s", n=unsent, target=self.target.name, s=self.target.timeout_s)
        return unsent

    # ------------------------------------------------------------ worker side
    def _work(self) -> None:
        while True:
            message = self.queue.get()
            if message is None:
                return
            if self._deadline is not None and time.monotonic() > self._deadline:
                self._abandoned += 1  # exit grace is over; close() counts what is left
                return
            ok, why = send_message(self.target, message)
            if ok:
                self.sent += 1
                if self._failing:
                    logger.info("Notifications to {target} work again ({n} send(s) failed before)",
                                target=self.target.name, n=self._failing)
                    self._failing = 0
                self._report("sent")
                continue
            self.failed += 1
            self._failing += 1
            if self._failing == 1:
                logger.warning("Notification to {target} failed: {why}; further failures are not logged "
                               "until a send succeeds", target=self.target.name, why=why)
            self._report("failed")

    def _report(self, outcome: str) -> None:
        if self.on_result is not None:
            try:
                self.on_result(self.target, outcome)
            except Exception as exc:  # metrics must not break notifications
                logger.debug("notification result callback failed: {e}", e=exc)
