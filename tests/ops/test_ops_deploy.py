"""Deployment files: deploy.sh (shellcheck, --help, --test-only), systemd unit, Dockerfile, k8s.yaml."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy.sh"
PLUGINS = {"equity_reversal", "crypto_adx", "alpaca_broker", "backtrader_bridge"}
RUN_ARGS = ["run", "/etc/hybrid/profile.yaml", "--json-logs"]


def _deploy(*args: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """deploy.sh with this interpreter's venv and a tiny test subset (never the whole suite)."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("HYBRID_DEPLOY")}
    full_env.update(HYBRID_VENV=sys.prefix, **env)
    return subprocess.run(["bash", str(DEPLOY), *args], cwd=tmp_path, env=full_env, capture_output=True,
                          text=True, timeout=300)


def test_deploy_sh_is_shellcheck_clean() -> None:
    if shutil.which("shellcheck") is None:
        pytest.fail("shellcheck is not installed; install it: apt-get install -y shellcheck")
    result = subprocess.run(["shellcheck", str(DEPLOY)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert os.access(DEPLOY, os.X_OK)


def test_deploy_help_and_unknown_option(tmp_path: Path) -> None:
    shown = _deploy("--help", tmp_path=tmp_path)
    assert shown.returncode == 0
    for flag in ("--no-restart", "--test-only", "--help", "HYBRID_DEPLOY_PYTEST_ARGS"):
        assert flag in shown.stdout
    bad = _deploy("--frobnicate", tmp_path=tmp_path)
    assert bad.returncode == 2 and "unknown option --frobnicate" in bad.stderr


def test_deploy_test_only_runs_tests_and_type_check_only(tmp_path: Path) -> None:
    result = _deploy("--test-only", tmp_path=tmp_path,
                     HYBRID_DEPLOY_PYTEST_ARGS="tests/ops/test_ops_lock.py -q -p no:cacheprovider",
                     HYBRID_DEPLOY_MYPY_TARGETS="src/hybrid_core/ops/lock.py")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 passed" in result.stdout
    if importlib.util.find_spec("mypy") is not None:
        assert "Success: no issues found" in result.stdout
    else:  # the test environment (extras test) may lack the lint tools
        assert "WARNING: mypy is not installed" in result.stderr
    assert "git pull" not in result.stdout and "restart" not in result.stdout.replace("not restarted", "")


def test_deploy_aborts_when_a_test_fails(tmp_path: Path) -> None:
    failing = tmp_path / "test_broken.py"
    failing.write_text("def test_broken():\n    assert 1 + 1 == 3\n")
    result = _deploy("--test-only", tmp_path=tmp_path,
                     HYBRID_DEPLOY_PYTEST_ARGS=f"{failing} -q -p no:cacheprovider",
                     HYBRID_DEPLOY_MYPY_TARGETS="src/hybrid_core/ops/lock.py")
    assert result.returncode == 1
    assert "tests failed: aborting the deploy" in result.stderr
    assert "type check" not in result.stdout  # nothing after the failing step ran


def test_type_check_problems_are_only_a_warning(tmp_path: Path) -> None:
    bad = tmp_path / "badtypes.py"
    bad.write_text("count: int = 'three'\n")
    result = _deploy("--test-only", tmp_path=tmp_path,
                     HYBRID_DEPLOY_PYTEST_ARGS="tests/ops/test_ops_lock.py -q -p no:cacheprovider",
                     HYBRID_DEPLOY_MYPY_TARGETS=str(bad))
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"WARNING: (the type check reported problems|mypy is not installed)", result.stderr)


def test_nested_full_suite_is_refused(tmp_path: Path) -> None:
    result = _deploy("--test-only", tmp_path=tmp_path, HYBRID_DEPLOY_RUNNING="1")
    assert result.returncode == 1 and "would recurse" in result.stderr


def _unit_sections(text: str) -> dict[str, dict[str, list[str]]]:
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        assert current is not None and _, f"bad unit line: {raw}"
        current.setdefault(key, []).append(value)
    return sections


def test_systemd_unit() -> None:
    unit = _unit_sections((REPO / "deploy" / "hybrid-trader.service").read_text())
    service = unit["Service"]
    assert service["ExecStart"][0].split()[1:] == RUN_ARGS
    assert service["ExecStart"][0].split()[0].endswith("/bin/hybrid")
    assert service["Restart"] == ["on-failure"] and service["EnvironmentFile"]
    assert unit["Install"]["WantedBy"] == ["multi-user.target"]
    env = dict(e.split("=", 1) for e in service["Environment"])
    # `hybrid health` must look where the run writes, inside the writable paths
    assert env["HYBRID_HEALTH_FILE"].startswith(service["ReadWritePaths"][0])


def _dockerfile() -> list[tuple[str, str]]:
    text = (REPO / "Dockerfile").read_text().replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            instr, _, rest = line.partition(" ")
            out.append((instr.upper(), rest.strip()))
    return out


def test_dockerfile() -> None:
    instrs = _dockerfile()
    assert instrs[0] == ("FROM", "python:3.11-slim")
    for instr, rest in instrs:
        if instr == "COPY":
            for src in rest.split()[:-1]:
                assert (REPO / src).exists(), f"Dockerfile copies {src}, which is not in the repository"
    pip = next(rest for instr, rest in instrs if instr == "RUN" and "pip install" in rest)
    installed = set(re.findall(r"\./plugins/(\w+)", pip))
    assert installed == PLUGINS
    for plugin in installed:
        assert (REPO / "plugins" / plugin / "pyproject.toml").exists()
    health = next(rest for instr, rest in instrs if instr == "HEALTHCHECK")
    assert json.loads(health.split("CMD", 1)[1].strip())[:2] == ["hybrid", "health"]
    assert json.loads(next(rest for instr, rest in instrs if instr == "CMD")) == RUN_ARGS
    assert any(instr == "USER" and rest != "root" for instr, rest in instrs)
    ignored = (REPO / ".dockerignore").read_text().split()
    assert {".env", ".venv", ".git"} <= set(ignored)


def test_deploy_sh_installs_the_same_plugins_as_the_image() -> None:
    match = re.search(r"^PLUGINS=\(([^)]*)\)", DEPLOY.read_text(), re.M)
    assert match and set(match.group(1).split()) == PLUGINS


def _k8s() -> dict[str, dict]:
    docs = [d for d in yaml.safe_load_all((REPO / "deploy" / "k8s.yaml").read_text()) if d]
    return {d["kind"]: d for d in docs}


def test_k8s_manifest() -> None:
    docs = _k8s()
    assert "Secret" not in docs, "credentials must come from a Secret created outside the repository"
    deployment = docs["Deployment"]["spec"]
    assert deployment["replicas"] == 1 and deployment["strategy"]["type"] == "Recreate"
    pod = deployment["template"]["spec"]
    (container,) = pod["containers"]
    assert container["args"][:3] == RUN_ARGS
    port = container["args"][container["args"].index("--metrics-port") + 1]
    annotations = deployment["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true" and annotations["prometheus.io/path"] == "/metrics"
    assert annotations["prometheus.io/port"] == port == str(container["ports"][0]["containerPort"])
    assert container["resources"]["limits"] == {"memory": "512Mi", "cpu": "500m"}
    probe = container["livenessProbe"]["exec"]["command"]
    assert probe[:2] == ["hybrid", "health"]
    assert any("secretRef" in src for src in container["envFrom"])
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert "configMap" in volumes[mounts["/etc/hybrid"]]
    claim = volumes[mounts["/data"]]["persistentVolumeClaim"]["claimName"]
    assert claim == docs["PersistentVolumeClaim"]["metadata"]["name"]
    profile = yaml.safe_load(docs["ConfigMap"]["data"]["profile.yaml"])
    env = {e["name"]: e["value"] for e in container["env"]}
    assert profile["outputs"]["health_file"] == env["HYBRID_HEALTH_FILE"] == probe[probe.index("--file") + 1]
    assert profile["outputs"]["state_db"].startswith("/data/")


def test_k8s_profile_validates(tmp_path: Path) -> None:
    profile = tmp_path / "profile.yaml"
    profile.write_text(_k8s()["ConfigMap"]["data"]["profile.yaml"])
    # the pod gets its Alpaca keys from a Secret: validate checks they are set (paper keys here)
    env = {**os.environ, "ALPACA_API_KEY": "PKTESTKEY", "ALPACA_SECRET_KEY": "secret"}
    result = subprocess.run([sys.executable, "-m", "hybrid_core.cli", "validate", str(profile)],
                            capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
