"""What ``sync`` already knows, kept in the broker's state folder across restarts.

- ``reported``: fills already reported to the core (``{client_order_id: filled_at}``), so a
  restart never reports one twice;
- ``watch``: ids of orders that were open at the last sync. Alpaca filters closed orders by
  submission time, so a gtc stop placed weeks ago that triggers today would fall outside the
  lookback window; watched ids are looked up one by one instead.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd


class FillJournal:
    """A small JSON file: fills already reported and open orders to watch."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.reported: dict[str, str] = {}
        self.watch: set[str] = set()
        if path is not None and path.exists():
            data = json.loads(path.read_text() or "{}")
            self.reported = dict(data.get("reported", {}))
            self.watch = set(data.get("watch", []))

    def __contains__(self, client_order_id: str) -> bool:
        return client_order_id in self.reported

    def record(self, entries: dict[str, str], watch: set[str], keep_after: pd.Timestamp) -> None:
        """Add reported fills, replace the watch list, forget fills before ``keep_after``; save atomically."""
        self.reported.update(entries)
        self.watch = set(watch)
        cutoff = keep_after.strftime("%Y-%m-%d")
        self.reported = {k: v for k, v in self.reported.items() if not v or v[:10] >= cutoff}
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"reported": self.reported, "watch": sorted(self.watch)}, indent=0,
                                  sort_keys=True))
        os.replace(tmp, self.path)
