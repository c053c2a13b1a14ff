"""docs/plugins.md is executed, so it cannot drift from the code.

Every fenced block is used, in the order of the page: a block whose first line is
``# file: PATH`` is written to PATH in a work folder, every line of a ``bash`` block is run there
with the real ``hybrid`` and ``pytest`` (``pip install`` installs into a folder of the test, not
this environment), and it fails on the first command that exits non-zero. Each field table is
compared with the attrs fields (and properties) of the class it documents, types included, and
every hook is documented with its exact signature.
"""

from __future__ import annotations

import inspect
import os
import re
import subprocess
import sys
from pathlib import Path

import attrs

from hybrid_core import contracts, hookspecs, testing

DOC = Path(__file__).resolve().parents[2] / "docs" / "plugins.md"
BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)
FILE = re.compile(r"#\s*file:\s*(\S+)")
FIELD_TABLE = re.compile(r"^\| `(\w+)` field \| type \| meaning \|\n\|[-|]+\|\n((?:\|.*\|\n)+)", re.M)
PIP_INTO_SITE = ('pip() { if [ "$1" = install ]; then shift; python -m pip install --quiet --no-deps '
                 '--no-build-isolation --no-index --disable-pip-version-check --target "$HYBRID_DOC_SITE" "$@"; '
                 'else python -m pip "$@"; fi; }\n')


def code_blocks() -> list[tuple[str, str]]:
    return [(lang, body) for lang, body in BLOCK.findall(DOC.read_text())]


def shell_env(site: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HYBRID_", "PYTHONPATH", "VIRTUAL_ENV"))}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["PYTHONPATH"] = env["HYBRID_DOC_SITE"] = str(site)
    return env


def commands(body: str) -> list[str]:
    return [line for line in body.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_every_code_block_of_the_plugin_guide_runs(tmp_path: Path) -> None:
    work, site = tmp_path / "work", tmp_path / "site"
    work.mkdir()
    env = shell_env(site)
    used = 0
    for lang, body in code_blocks():
        if lang == "bash":
            for command in commands(body):
                proc = subprocess.run(["bash", "-c", PIP_INTO_SITE + command], cwd=work, env=env,
                                      capture_output=True, text=True, timeout=600)
                assert proc.returncode == 0, f"$ {command}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        else:
            target = FILE.fullmatch(body.splitlines()[0].strip())
            assert target, f"a {lang} block must start with '# file: PATH' (or be bash):\n{body[:200]}"
            path = work / target.group(1)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(body)
        used += 1
    assert used == len(code_blocks()) >= 15
    # what the run left behind: the generated package, the example package installed, a backtest
    assert (work / "hybrid-my-strategy" / "example.yaml").exists()
    assert (site / "hybrid_weekly_losers" / "plugin.py").exists()
    assert (work / "runs" / "backtest" / "summary.json").exists()


def _annotation(value: object) -> str:
    return value if isinstance(value, str) else getattr(value, "__name__", repr(value))


def documented_fields() -> dict[str, list[tuple[str, str]]]:
    """``{class: [(field, type), ...]}`` from the page's field tables."""
    tables = {}
    for name, rows in FIELD_TABLE.findall(DOC.read_text()):
        cells = [re.split(r"(?<!\\)\|", row.strip().strip("|")) for row in rows.splitlines()]
        tables[name] = [(c[0].strip().strip("`"), c[1].strip().strip("`").replace("\\|", "|")) for c in cells]
    return tables


def code_fields(cls: type) -> list[tuple[str, str]]:
    """attrs fields and public properties of ``cls``, with their annotations as written in the code."""
    fields = [(a.name, _annotation(a.type)) for a in attrs.fields(cls)]
    props = [(n, _annotation(inspect.signature(p.fget).return_annotation))
             for n, p in vars(cls).items() if isinstance(p, property) and not n.startswith("_")]
    return fields + props


def test_every_field_table_matches_the_code() -> None:
    tables = documented_fields()
    assert {"OrderIntent", "CycleContext", "Position", "AccountSnapshot", "Signals", "OrderRequest",
            "OrderStatus", "BrokerPosition", "HealthReport"} <= set(tables)
    for name, rows in tables.items():
        assert rows == code_fields(getattr(contracts, name)), name


def test_every_hook_and_kit_function_is_documented() -> None:
    text = DOC.read_text()
    for name in (n for n in dir(hookspecs) if n.startswith("hybrid_register_")):
        params = ", ".join(inspect.signature(getattr(hookspecs, name)).parameters)
        assert f"`{name}({params})`" in text, name
    for name in (n for n in testing.__all__ if not n.isupper()):
        assert f"`{name}" in text, name
    assert f'HYBRID_CONTRACT = "{contracts.CONTRACT_VERSION}"' in text
