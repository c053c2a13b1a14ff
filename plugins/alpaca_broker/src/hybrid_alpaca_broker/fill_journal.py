"""Which filled orders ``sync`` already reported, kept in the broker's state folder across restarts."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd


class FillJournal:
    """A JSON file ``{client_order_id: filled_at}`` of fills already reported to the core."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.reported: dict[str, str] = {}
        if path is not None and path.exists():
            self.reported = json.loads(path.read_text() or "{}")

    def __contains__(self, client_order_id: str) -> bool:
        return client_order_id in self.reported

    def record(self, entries: dict[str, str], keep_after: pd.Timestamp) -> None:
        """Add reported fills, forget those filled before ``keep_after``, and save atomically."""
        self.reported.update(entries)
        cutoff = keep_after.isoformat()
        self.reported = {k: v for k, v in self.reported.items() if not v or v >= cutoff[:10]}
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.reported, indent=0, sort_keys=True))
        os.replace(tmp, self.path)
