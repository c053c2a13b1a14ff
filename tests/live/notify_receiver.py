"""A local HTTP receiver for Apprise's JSON webhook target (``json://127.0.0.1:PORT/hook``).

It records every message Apprise posts, and can misbehave like a real channel: answer 500,
or hang (accept the request and never answer until released), so tests see what a run does
when a channel is slow or down.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class NotifyReceiver:
    """Records posted messages; ``mode`` is ``ok`` (200), ``fail`` (500) or ``hang`` (no answer until
    :attr:`release` is set, then the answer of the mode at that time)."""

    def __init__(self, mode: str = "ok") -> None:
        self.mode = mode
        self.messages: list[dict[str, Any]] = []
        self.requests = 0
        self.changed = threading.Condition()
        self.release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.changed:
                    receiver.requests += 1
                    receiver.changed.notify_all()
                if receiver.mode == "hang":
                    receiver.release.wait(120)  # then answer as the mode says by then
                if receiver.mode == "hang":
                    return
                if receiver.mode == "fail":
                    self.send_response(500)
                    self.end_headers()
                    return
                with receiver.changed:
                    receiver.messages.append(json.loads(body))
                    receiver.changed.notify_all()
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        """The Apprise URL of this receiver."""
        return f"json://127.0.0.1:{self.port}/hook"

    def wait(self, predicate: Callable[[NotifyReceiver], bool], timeout: float = 30.0) -> bool:
        """Wait until ``predicate(self)`` holds (checked at every request); False on timeout."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while not predicate(self):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.changed.wait(left)
            return True

    def bodies(self) -> list[str]:
        """Title and body of every message received, one string each."""
        with self.changed:
            return [f"{m.get('title', '')}\n{m.get('message', '')}" for m in self.messages]

    def close(self) -> None:
        """Let hanging requests go and stop serving."""
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
