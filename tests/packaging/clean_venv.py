"""A virtual environment clean of the checkout, with hybrid-core and plugins installed from wheels.

As a user gets it: the wheels are built (from a copy of the sources, so nothing is written into
the checkout), pip installs them from the wheel files, and every command runs from a folder
outside the repository with no PYTHONPATH, no HYBRID_* variable and a temporary HOME.

Installing the core's ~90 third-party dependencies (pandas, pyarrow, streamlit...) into each new
venv takes about a minute, so they are installed once into a cache folder keyed by the core
wheel's requirements and the interpreter (``~/.cache/hybrid/test-deps/<key>``), which each clean
venv sees through a ``.pth`` file. That folder holds only what pip installs for those
requirements, never hybrid's code; pip then installs the wheels resolving their dependencies
against it with ``--no-index``, so a dependency the core or a plugin does not declare fails.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from collections.abc import Sequence
from pathlib import Path

from filelock import FileLock

REPO = Path(__file__).resolve().parents[2]
PIP = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
TEST_RUNNER = ("pytest>=8",)
"""What a plugin's own tests need besides hybrid-core (the generated packages' test extra)."""


def _pip(*args: str | Path, timeout: float = 900) -> None:
    proc = subprocess.run([*PIP, *map(str, args)], capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"pip {' '.join(map(str, args[:3]))}... failed:\n{proc.stderr[-3000:]}"


def build_wheels(sources: Sequence[Path], out: Path) -> list[Path]:
    """Wheels of the package folders ``sources`` into ``out`` (setuptools of this environment, offline)."""
    out.mkdir(parents=True, exist_ok=True)
    before = set(out.glob("*.whl"))
    _pip("wheel", "--quiet", "--no-deps", "--no-build-isolation", "--no-index", "--wheel-dir", out, *sources)
    return sorted(set(out.glob("*.whl")) - before)


def core_sources(dest: Path) -> Path:
    """A copy of what the core's wheel is built from (the checkout stays untouched by the build)."""
    dest.mkdir(parents=True)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, dest / name)
    shutil.copytree(REPO / "src", dest / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    return dest


def requirements(wheel: Path) -> list[str]:
    """The wheel's runtime requirements (``Requires-Dist`` without an extra)."""
    with zipfile.ZipFile(wheel) as zf:
        meta = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        lines = zf.read(meta).decode().splitlines()
    return [line.split(":", 1)[1].strip() for line in lines
            if line.startswith("Requires-Dist:") and "extra ==" not in line]


def dependency_folder(wanted: Sequence[str]) -> Path:
    """A folder holding ``wanted`` (pip install --target), built once per requirements and interpreter."""
    key = hashlib.sha256("\n".join([sys.version, sysconfig.get_platform(), *sorted(wanted)]).encode())
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "hybrid" / "test-deps"
    folder = cache / key.hexdigest()[:16]
    cache.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder) + ".lock"):
        if not folder.is_dir():
            partial = folder.with_suffix(".partial")
            shutil.rmtree(partial, ignore_errors=True)
            _pip("install", "--quiet", "--target", partial, *wanted)
            assert not list(partial.glob("hybrid_core*")), "the dependency folder must hold no hybrid code"
            partial.rename(folder)
    return folder


class CleanVenv:
    """A venv without pip whose site-packages sees only ``deps`` (a .pth file) and what is installed."""

    def __init__(self, path: Path, deps: Path) -> None:
        self.path = path
        self.home = path.parent / "home"
        self.home.mkdir(parents=True, exist_ok=True)
        venv.EnvBuilder(with_pip=False).create(path)
        self.python = path / "bin" / "python"
        site = Path(self.run("python", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])",
                             cwd=path).stdout.strip())
        (site / "_hybrid_test_dependencies.pth").write_text(f"{deps}\n")

    def install(self, *wheels: Path) -> None:
        """pip install the wheels into the venv, resolving dependencies offline against what it has."""
        links = sorted({str(w.parent) for w in wheels})
        _pip("--python", self.python, "install", "--quiet", "--no-index",
             *[a for link in links for a in ("--find-links", link)], *wheels)

    def run(self, *args: str | Path, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        """Run a program of the venv (``python``, ``hybrid``...) in ``cwd`` with a clean environment."""
        env = {"PATH": f"{self.path / 'bin'}{os.pathsep}/usr/bin{os.pathsep}/bin", "LANG": "C.UTF-8",
               "HOME": str(self.home)}
        program = str(self.path / "bin" / str(args[0]))
        return subprocess.run([program, *map(str, args[1:])], cwd=cwd, env=env, capture_output=True, text=True,
                              timeout=timeout)
