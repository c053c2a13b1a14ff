"""The Dask cluster a sweep runs on: an embedded LocalCluster of worker processes, or a real one.

With no address, :func:`sweep_client` starts a ``LocalCluster`` of ``workers`` processes (one
thread each: a backtest holds the GIL) on this machine, without a dashboard, and stops it at the
end. With ``--scheduler tcp://host:8786`` it joins a running cluster (``dask scheduler`` and
``dask worker`` on other hosts, see docs/sweeps.md). Dask's nannies restart a worker process
that dies, and its scheduler runs the dead worker's sets again elsewhere.

:func:`check_versions` refuses, in one line naming the worker and the difference, a cluster
whose workers do not have this client's hybrid and plugin versions.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator
from typing import Any

from ..errors import HybridError
from .worker import EVENT_TOPIC, version_difference, worker_versions

DOCS = "docs/sweeps.md"
WORKER_WAIT_SECONDS = 60


@contextlib.contextmanager
def sweep_client(workers: int | None = None, scheduler: str | None = None) -> Iterator[Any]:
    """A Dask client on an embedded cluster of ``workers`` processes (default: the cores), or on the
    cluster whose scheduler is at ``scheduler``; closed (and the embedded cluster stopped) on exit."""
    from distributed import Client, LocalCluster

    cluster = None
    if scheduler:
        try:
            _probe(scheduler)
            client = Client(scheduler, timeout="15s")
        except (OSError, TimeoutError) as exc:
            raise HybridError(f"cannot reach the Dask scheduler at {scheduler} ({type(exc).__name__}: "
                              f"{str(exc).splitlines()[0] if str(exc) else ''}); start it with `dask scheduler` "
                              f"and workers with `dask worker {scheduler}` ({DOCS})") from None
        try:
            client.wait_for_workers(1, timeout=WORKER_WAIT_SECONDS)
        except TimeoutError:
            client.close()
            raise HybridError(f"no Dask worker joined the scheduler at {scheduler} within {WORKER_WAIT_SECONDS} s; "
                              f"start workers with `dask worker {scheduler}` ({DOCS})") from None
    else:
        count = workers or os.cpu_count() or 1
        cluster = LocalCluster(n_workers=count, threads_per_worker=1, processes=True, dashboard_address=None,
                               scheduler_port=0, silence_logs=logging.CRITICAL)
        client = Client(cluster)
    try:
        yield client
    finally:
        for topic in (EVENT_TOPIC, "all"):  # else the scheduler may send the client's own leaving to it
            with contextlib.suppress(Exception):
                client.unsubscribe_topic(topic)
        client.close()
        if cluster is not None:
            cluster.close()


def _probe(address: str) -> None:
    """Fail at once when nothing listens at a ``tcp://host:port`` address (Dask would retry for 15 s)."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    if parts.scheme != "tcp" or parts.hostname is None or parts.port is None:
        return  # tls://, ucx://...: let Dask connect
    socket.create_connection((parts.hostname, parts.port), timeout=10).close()


def check_versions(client: Any, mine: dict[str, Any] | None = None) -> dict[str, Any]:
    """This client's versions, after checking that every worker has the same (one-line refusal)."""
    mine = mine or worker_versions()
    answers = client.run(worker_versions, on_error="return")
    for address, answer in sorted(answers.items()):
        if isinstance(answer, BaseException):
            first = str(answer).splitlines()[0] if str(answer) else ""
            raise HybridError(f"worker {address} cannot run hybrid's sweep code ({type(answer).__name__}: {first}); "
                              f"install hybrid and the same plugins on every worker ({DOCS})")
        difference = version_difference(mine, answer)
        if difference:
            raise HybridError(f"worker {address} has {difference}; install the same hybrid and plugin versions "
                              f"on every worker ({DOCS})")
    return mine


def follow_events(client: Any, handler: Callable[[dict[str, Any]], None]) -> None:
    """Call ``handler`` with each event the workers report (a set started) and with the scheduler's
    ``add-worker`` / ``remove-worker`` events (a worker joined or left)."""
    client.subscribe_topic(EVENT_TOPIC, lambda event: handler(event[1]))

    def membership(event: Any) -> None:
        message = event[1] if isinstance(event, tuple) else event
        if isinstance(message, dict) and message.get("action") in ("add-worker", "remove-worker"):
            handler({"event": message["action"], **message})

    client.subscribe_topic("all", membership)
