"""Pure-Python wheels made in a test (zip + dist-info + RECORD, no build backend) and pip installs of them."""

from __future__ import annotations

import base64
import hashlib
import subprocess
import sys
import zipfile
from collections.abc import Mapping
from pathlib import Path


def pure_wheel(out: Path, project: str, version: str, files: Mapping[str, str | bytes],
               entry_points: Mapping[str, Mapping[str, str]]) -> Path:
    """A ``py3-none-any`` wheel of ``project`` holding ``files`` (path in the wheel -> content)."""
    dist = f"{project.replace('-', '_')}-{version}"
    content = {name: data.encode() if isinstance(data, str) else data for name, data in files.items()}
    content[f"{dist}.dist-info/METADATA"] = f"Metadata-Version: 2.1\nName: {project}\nVersion: {version}\n".encode()
    content[f"{dist}.dist-info/entry_points.txt"] = "".join(
        f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in eps.items())
        for group, eps in entry_points.items()).encode()
    content[f"{dist}.dist-info/WHEEL"] = (b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
                                          b"Tag: py3-none-any\n")
    record = [f"{name},sha256={_digest(data)},{len(data)}" for name, data in content.items()]
    content[f"{dist}.dist-info/RECORD"] = ("\n".join([*record, f"{dist}.dist-info/RECORD,,"]) + "\n").encode()
    out.mkdir(parents=True, exist_ok=True)
    wheel = out / f"{dist}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for name, data in content.items():
            zf.writestr(name, data)
    return wheel


def _digest(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def pip_install(*args: str) -> None:
    """``pip install --no-deps --no-index ARGS`` with this interpreter (e.g. ``--target SITE WHEEL``)."""
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index",
                           "--disable-pip-version-check", "--quiet", *args], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
