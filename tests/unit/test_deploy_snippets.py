"""The Prometheus snippets under deploy/ are valid configuration for the real Prometheus."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from memwarden.generator import render_bundle
from memwarden.policy import load_policy
from support import fastyaml


@pytest.mark.parametrize("snippet", ["memwarden-scrape.yml", "memwarden-node-exporter.yml"])
def test_deploy_snippet_passes_promtool_check_config(snippet: str, repo_root: Path, tmp_path: Path, promtool: str) -> None:
    policy, _, _ = load_policy()
    for relative, text in render_bundle(policy, "test", ["rules"]).items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(text)
    config = fastyaml.load((repo_root / "deploy" / "prometheus" / snippet).read_text())
    # The snippet names /etc/prometheus/memwarden; point it at this render instead.
    config["rule_files"] = [path.replace("/etc/prometheus/memwarden", str(tmp_path)) for path in config["rule_files"]]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    result = subprocess.run([promtool, "check", "config", str(tmp_path / "prometheus.yml")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def _unit(path: Path) -> dict[str, list[str]]:
    """A systemd unit's settings, each key with every value it is given."""
    settings: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.startswith(("#", ";", "[")):
            key, value = line.split("=", 1)
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


UNITS = ["memwarden-exporter.service", "memwarden-responder.service"]


@pytest.mark.parametrize("name", UNITS)
def test_units_run_memwarden_from_its_venv_with_a_tight_sandbox(name: str, repo_root: Path) -> None:
    unit = _unit(repo_root / "deploy" / "systemd" / name)
    # pip cannot install into Debian 12's system Python (PEP 668): the units run the venv's.
    assert unit["ExecStart"][0].startswith("/opt/memwarden/venv/bin/memwarden "), unit["ExecStart"]
    for key, value in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectKernelLogs": "yes",
        "ProtectKernelModules": "yes",
        "ProtectKernelTunables": "yes",
        "RestrictNamespaces": "yes",
        "LockPersonality": "yes",
        "SystemCallArchitectures": "native",
        "ProtectProc": "default",  # components are found among every process
    }.items():
        assert unit.get(key) == [value], (key, unit.get(key))
    assert "@system-service" in unit["SystemCallFilter"]
    assert unit["CapabilityBoundingSet"], "an explicit, short capability set"


def test_the_exporter_is_no_root_and_only_reads(repo_root: Path) -> None:
    unit = _unit(repo_root / "deploy" / "systemd" / "memwarden-exporter.service")
    assert unit["DynamicUser"] == ["yes"] and "User" not in unit
    assert set(unit["CapabilityBoundingSet"][0].split()) == {"CAP_DAC_READ_SEARCH", "CAP_SYS_PTRACE"}
    assert unit["AmbientCapabilities"] == unit["CapabilityBoundingSet"]
    assert unit["ProtectControlGroups"] == ["yes"]
    assert unit["IPAddressDeny"] == ["any"] and unit["IPAddressAllow"], "scrapes only from allowed networks"


def test_the_responder_keeps_cgroups_writable_and_only_the_capabilities_its_actions_use(repo_root: Path) -> None:
    unit = _unit(repo_root / "deploy" / "systemd" / "memwarden-responder.service")
    assert "ProtectControlGroups" not in unit, "freeze and throttle write /sys/fs/cgroup"
    assert set(unit["CapabilityBoundingSet"][0].split()) == {
        "CAP_KILL", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_SYS_PTRACE"
    }  # fmt: skip
    # Every address, so a remote Prometheus can scrape it; the webhook still needs the token.
    assert " --listen :9106 " in unit["ExecStart"][0]
    assert load_policy()[0].responses.auth.mode == "bearer"
    assert unit["StateDirectory"] == ["memwarden/responder"]


@pytest.mark.parametrize("name", UNITS)
def test_systemd_analyze_verify_accepts_the_unit(name: str, repo_root: Path, tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    # verify checks that ExecStart exists: point it at this checkout's memwarden.
    memwarden = Path(sys.executable).with_name("memwarden")
    assert memwarden.exists(), memwarden
    text = (repo_root / "deploy" / "systemd" / name).read_text()
    (tmp_path / name).write_text(text.replace("/opt/memwarden/venv/bin/memwarden", str(memwarden)))
    result = subprocess.run([analyze, "verify", str(tmp_path / name)], capture_output=True, text=True)
    assert result.returncode == 0 and not result.stderr.strip(), result.stdout + result.stderr


def _listen_ports(repo_root: Path) -> dict[int, str]:
    """Return {port: unit} of the units that listen on every address."""
    ports = {}
    for name in UNITS:
        listen = _unit(repo_root / "deploy" / "systemd" / name)["ExecStart"][0].split("--listen ", 1)[1].split()[0]
        host, _, port = listen.rpartition(":")
        if host in ("", "0.0.0.0", "[::]"):
            ports[int(port)] = name
    return ports


@pytest.mark.parametrize("snippet", ["memwarden-scrape.yml", "memwarden-node-exporter.yml"])
def test_the_snippets_scrape_memwarden_where_its_units_listen(snippet: str, repo_root: Path) -> None:
    config = fastyaml.load((repo_root / "deploy" / "prometheus" / snippet).read_text())
    ports = _listen_ports(repo_root)
    for job in config["scrape_configs"]:
        if not job["job_name"].startswith("memwarden"):
            continue
        for target in (t for group in job["static_configs"] for t in group["targets"]):
            host, _, port = target.rpartition(":")
            assert not host.startswith(("127.", "localhost")), f"{job['job_name']}: a remote Prometheus cannot reach {target}"
            assert int(port) in ports, f"{job['job_name']} scrapes {target}, but no unit listens beyond loopback on {port}"


@pytest.mark.slow  # builds a wheel and a venv
def test_the_documented_install_builds_a_wheel_that_runs(repo_root: Path, tmp_path: Path) -> None:
    """deploy/README.md's `pip wheel` + `pip install` of this checkout, and the Containerfile's copy of it."""
    readme = (repo_root / "deploy" / "README.md").read_text()
    assert "/opt/memwarden/venv/bin/pip wheel --no-deps -w /tmp/memwarden-wheel ." in readme
    assert "pip install memwarden " not in readme and "pip install memwarden\n" not in readme
    # What the Containerfile copies is all a build needs.
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(repo_root / name, checkout / name)
    shutil.copytree(repo_root / "src", checkout / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    containerfile = (repo_root / "deploy" / "kubernetes" / "Containerfile").read_text()
    assert "COPY pyproject.toml README.md /src/" in containerfile and "COPY src /src/src" in containerfile
    pip = [sys.executable, "-m", "pip"]
    built = subprocess.run([*pip, "wheel", "-q", "--no-deps", "-w", str(tmp_path / "wheel"), "."], cwd=checkout,
                           capture_output=True, text=True, timeout=300)  # fmt: skip
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "wheel").glob("memwarden-*.whl")
    target = tmp_path / "installed"
    installed = subprocess.run([*pip, "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
                               capture_output=True, text=True, timeout=300)  # fmt: skip
    assert installed.returncode == 0, installed.stderr
    # The installed copy, not this checkout, renders a whole bundle: templates and the default policy are in it.
    script = (
        "import sys, memwarden; from memwarden.cli import main; "
        f"assert memwarden.__file__.startswith({str(target)!r}), memwarden.__file__; "
        "sys.exit(main(sys.argv[1:]))"
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    for argv in (["init", str(tmp_path / "policy.yaml")], ["check", str(tmp_path / "policy.yaml")],
                 ["generate", "-p", str(tmp_path / "policy.yaml"), "-o", str(tmp_path / "bundle")]):  # fmt: skip
        done = subprocess.run([sys.executable, "-c", script, *argv], env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, (argv, done.stdout, done.stderr)
    assert (tmp_path / "bundle" / "alertmanager" / "memwarden.tmpl").is_file()
