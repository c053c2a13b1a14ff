"""What the benchmark scripts share: running `hybrid` as a child process and measuring it, and
other checkouts of hybrid for a before/after comparison in one run.

A checkout is a folder holding hybrid's sources and its own environment (``.venv``, made by
``scripts/setup.sh``); ``--vs DIR`` in a benchmark runs every case with DIR's ``hybrid`` too,
alternating this checkout and the other one run by run (A B A B ...), so both see the same
machine load. A second checkout of an older commit is made with, for instance::

    git clone -q . /tmp/hybrid-main && git -C /tmp/hybrid-main checkout -q <commit>
    ln -s "$PWD/../shared" /tmp/shared          # the shared data beside it, as here
    (cd /tmp/hybrid-main && scripts/setup.sh)

Peak RSS is the child's own (``wait4``'s ``ru_maxrss``), CPU is its user + system time, wall
is measured around it. On a shared machine, wall times move with the load: compare CPU times
and the paired ratios, and quote memory as it is (it does not depend on the load). Linux starts a
child's ``ru_maxrss`` at its parent's resident size when it forks, so a benchmark keeps pandas
and pyarrow out of its own process: whatever needs them (a file's symbols, the synthetic
universe) runs in a child of its own (:func:`file_symbols`).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("HYBRID_SHARED_DATA") or REPO.parent / "shared" / "data")
"""The shared real bars (``../shared/data`` beside the checkout, or ``$HYBRID_SHARED_DATA``)."""


@dataclass(frozen=True)
class Checkout:
    """A checkout of hybrid with its own environment: ``label`` names it in the tables."""

    label: str
    root: Path
    bin: Path
    """The environment's ``bin`` folder (``hybrid`` and ``python`` are there)."""

    @property
    def hybrid(self) -> list[str]:
        """The command that runs this checkout's ``hybrid``."""
        return [str(self.bin / "hybrid")]

    def has_option(self, command: str, option: str) -> bool:
        """True when ``hybrid COMMAND --help`` lists ``option`` (older checkouts lack some)."""
        key = (str(self.root), command)
        if key not in _HELP:
            _HELP[key] = subprocess.run([*self.hybrid, command, "--help"], capture_output=True,
                                        text=True).stdout
        return option in _HELP[key]


_HELP: dict[tuple[str, str], str] = {}
_COMPILED: set[Path] = set()


def this_checkout() -> Checkout:
    """This checkout, run with the interpreter running the benchmark."""
    return Checkout(label=f"this ({_commit(REPO)})", root=REPO, bin=Path(sys.executable).parent)


def other_checkout(path: str | Path) -> Checkout:
    """Another checkout (``path/.venv`` must hold its environment); exits with one line if not."""
    root = Path(path).expanduser().resolve()
    bin_dir = root / ".venv" / "bin"
    if not (bin_dir / "hybrid").exists():
        raise SystemExit(f"--vs {path}: no {bin_dir / 'hybrid'}; run scripts/setup.sh in that checkout first")
    return Checkout(label=_commit(root), root=root, bin=bin_dir)


def checkouts(vs: Sequence[str] | None) -> list[Checkout]:
    """This checkout first, then every ``--vs`` one, each with its sources compiled to bytecode."""
    found = [this_checkout(), *(other_checkout(p) for p in vs or [])]
    for checkout in found:
        compile_sources(checkout)
    return found


def compile_sources(checkout: Checkout) -> None:
    """Write the bytecode of a checkout's own sources (``src``, ``plugins``), as ``pip install``
    does for an installed hybrid. An editable install has none, and a machine that sets
    ``PYTHONDONTWRITEBYTECODE`` never writes it, so every run would compile hybrid's modules again
    (about 0.2 s a process here): a cost no installed hybrid pays. ``__pycache__`` is git-ignored."""
    if checkout.root in _COMPILED:
        return
    _COMPILED.add(checkout.root)
    folders = [str(checkout.root / name) for name in ("src", "plugins") if (checkout.root / name).is_dir()]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run([str(checkout.bin / "python"), "-m", "compileall", "-q", *folders], env=env,
                   stdout=subprocess.DEVNULL, check=True)


def _commit(root: Path) -> str:
    result = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    commit = result.stdout.strip() or "?"
    dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    return f"{commit}+dirty" if dirty else commit


def add_vs_option(parser: Any) -> None:
    """``--vs DIR`` (repeatable) on a benchmark's argument parser."""
    parser.add_argument("--vs", action="append", metavar="DIR",
                        help="also run every case with the hybrid of this other checkout (its .venv), "
                             "alternating run by run, for a before/after in one run (repeatable)")


@dataclass
class Measured:
    """One child process: wall seconds, CPU seconds (user + system), peak RSS in MiB, its output."""

    wall_s: float
    cpu_s: float
    peak_rss_mib: float
    returncode: int
    stdout: str = ""
    stderr: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def measure(cmd: Sequence[str], *, cwd: str | Path | None = None, env: dict[str, str] | None = None,
            check: bool = True) -> Measured:
    """Run ``cmd`` as a child and measure it with ``wait4`` (its own CPU time and peak RSS).

    Output goes to temporary files, so a child that prints a lot never blocks on a full pipe.
    ``check``: exit with the child's last lines when it fails."""
    import tempfile

    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(list(cmd), cwd=cwd, env=env, stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        result = Measured(wall_s=wall, cpu_s=usage.ru_utime + usage.ru_stime,
                          peak_rss_mib=usage.ru_maxrss / 1024.0, returncode=proc.returncode,
                          stdout=out.read(), stderr=err.read())
    if check and result.returncode != 0:
        raise SystemExit(f"`{' '.join(cmd)}` failed (exit {result.returncode}):\n{result.stderr[-2000:]}")
    return result


def file_symbols(path: str | Path) -> list[str]:
    """The symbols of a long bar file (sorted), read in a child process (see the module docstring)."""
    code = ("import sys, pyarrow.parquet as pq; t = pq.read_table(sys.argv[1], columns=['symbol']); "
            "print('\\n'.join(sorted(str(s) for s in t.column('symbol').unique().to_pylist())))")
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True)
    return out.stdout.split()


def round_trip_difference(ours_csv: Path, theirs_csv: Path) -> str | None:
    """None when two round-trip tables hold the same trades (symbol, entry and exit dates, exit
    reason, quantity; prices to 1e-9 relative), else what differs first."""
    import pandas as pd

    columns = ["symbol", "entry_date", "exit_date", "exit_reason", "qty", "entry_price", "exit_price"]
    ours, theirs = pd.read_csv(ours_csv)[columns], pd.read_csv(theirs_csv)[columns]
    merged = ours.merge(theirs, on=["symbol", "entry_date"], how="outer", suffixes=("", "_other"), indicator=True)
    if (merged["_merge"] != "both").any():
        return f"{int((merged['_merge'] != 'both').sum())} round trip(s) on one side only"
    for col in ("exit_date", "exit_reason", "qty"):
        if (merged[col] != merged[f"{col}_other"]).any():
            return col
    for col in ("entry_price", "exit_price"):
        rel = (merged[col] / merged[f"{col}_other"] - 1).abs()
        if (rel > 1e-9).any():
            return f"{col} ({rel.max():.2g})"
    return None


def alternate(checkouts: Sequence[Checkout], repeat: int,
              run: Callable[[Checkout, int], dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """``run(checkout, i)`` for i in range(repeat), checkouts interleaved (A B A B ...); rows by label."""
    rows: dict[str, list[dict[str, Any]]] = {c.label: [] for c in checkouts}
    for i in range(repeat):
        for co in checkouts:
            rows[co.label].append(run(co, i))
    return rows


def median_row(runs: Sequence[dict[str, Any]], keys: Sequence[str]) -> dict[str, Any]:
    """The first run's fields, with each of ``keys`` replaced by its median over ``runs``."""
    row = dict(runs[0])
    for key in keys:
        values = [r[key] for r in runs if isinstance(r.get(key), (int, float))]
        if values:
            row[key] = statistics.median(values)
    row["runs"] = len(runs)
    return row


def machine() -> dict[str, Any]:
    """Cores, load averages (1, 5, 15 min) and Python version, to print beside the figures."""
    one, five, fifteen = os.getloadavg()
    return {"cpus": os.cpu_count(), "load_avg": [round(one, 2), round(five, 2), round(fifteen, 2)],
            "python": sys.version.split()[0]}


def load_line() -> str:
    """``load average 1.23 0.98 0.75 on 2 cores``."""
    info = machine()
    return f"load average {' '.join(str(x) for x in info['load_avg'])} on {info['cpus']} cores"


def table(rows: Sequence[dict[str, Any]], cols: Sequence[tuple[str, str]]) -> str:
    """A fixed-width text table of ``rows``; ``cols`` is (key, format) pairs."""
    def cell(row: dict[str, Any], key: str, fmt: str) -> str:
        value = row.get(key)
        if value is None:
            return "-"
        try:
            return fmt.format(value)
        except (ValueError, TypeError):
            return str(value)

    cells = [[cell(r, c, fmt) for c, fmt in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) if cells else len(c) for i, (c, _) in enumerate(cols)]
    lines = ["  ".join(c.rjust(w) for (c, _), w in zip(cols, widths, strict=True))]
    lines += ["  ".join(v.rjust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines)
