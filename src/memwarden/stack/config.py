"""What `memwarden up` writes into its run folder: the effective policy, the bundle, Prometheus' config."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..fileio import write_atomic
from ..generator import render_bundle
from ..generator.writer import BundleError, replace_bundle
from ..policy import Duration, Policy, selector_job
from .processes import StackError


@dataclass(frozen=True)
class Ports:
    exporter: int
    responder: int
    prometheus: int
    alertmanager: int
    node_exporter: int


@dataclass(frozen=True)
class Layout:
    """Where everything of one run lives, so it can be inspected afterwards."""

    root: Path

    @property
    def bundle(self) -> Path:
        return self.root / "bundle"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def policy(self) -> Path:
        return self.root / "policy.yaml"

    @property
    def prometheus_config(self) -> Path:
        return self.root / "prometheus.yml"

    @property
    def prometheus_data(self) -> Path:
        return self.root / "data" / "prometheus"

    @property
    def alertmanager_data(self) -> Path:
        return self.root / "data" / "alertmanager"

    @property
    def alertmanager_config(self) -> Path:
        return self.bundle / "alertmanager" / "alertmanager.yml"

    @property
    def token(self) -> Path:
        return self.root / "responder.token"

    @property
    def responder_state(self) -> Path:
        return self.root / "responder"

    @property
    def earlier_runs(self) -> Path:
        return self.root / "previous"

    def run_files(self) -> list[Path]:
        """What one run writes at the top of its folder (everything but earlier runs)."""
        paths = [self.bundle, self.logs, self.policy, self.prometheus_config, self.token, self.responder_state]
        return paths + [self.root / "data"]


def set_aside_earlier_run(layout: Layout) -> Path | None:
    """Move an earlier run's files out of the way into previous/<time>/; return where, if any.

    Prometheus' and Alertmanager's data must start empty (a new run's rules would read
    old samples, and old alerts would reach the new responder); the earlier run's logs,
    state and audit stay whole beside it for inspection. Other files are left alone.
    """
    present = [path for path in layout.run_files() if path.exists()]
    if not present:
        return None
    started = min(path.stat().st_mtime for path in present)
    target = layout.earlier_runs / time.strftime("%Y%m%d-%H%M%S", time.localtime(started))
    suffix = 1
    while target.exists():
        suffix += 1
        target = target.with_name(f"{target.name.split('.')[0]}.{suffix}")
    target.mkdir(parents=True)
    for path in present:
        path.rename(target / path.name)
    return target


def runs_exporter(policy: Policy) -> bool:
    """memwarden's exporter runs for its own profile, and beside node_exporter only to publish components."""
    return policy.source.profile == "memwarden" or bool(policy.components)


def scrape_interval(policy: Policy) -> Duration:
    """A single host wants quick feedback: scrape at the policy's interval, at most every 5s."""
    return Duration.of_seconds(min(policy.source.scrape_interval.seconds, 5.0))


def job_of(selector: str, fallback: str) -> str:
    """The `job` a selector asks for (`{job="node"}` -> node), so our scrape job matches it."""
    return selector_job(selector) or fallback


def wire_policy(policy: Policy, ports: Ports, layout: Layout) -> Policy:
    """Point the policy at this run: the responder's webhook and token, and this Alertmanager.

    The wired policy is validated again from plain data, so what runs is a policy that
    `memwarden check` would accept.
    """
    data = policy.model_dump(mode="json", by_alias=True)
    data["alertmanager"]["responder"].update(
        {"url": f"http://127.0.0.1:{ports.responder}/alerts", "credentials_file": str(layout.token)}
    )
    data["responses"]["auth"].update({"mode": "bearer", "token_file": str(layout.token)})
    # A local run lasts minutes: day-long SLO windows recorded every 5m would leave their
    # dashboard panels empty for most of it.
    data["slo"]["long_window_interval"] = str(policy.source.evaluation_interval or scrape_interval(policy))
    # Everything of a local run is scraped on 127.0.0.1, which names no host in particular:
    # its responder serves this one host, so alerts about loopback are its own.
    data["responses"]["identity"]["single_host"] = True
    if data["responses"].get("alertmanager_url") is None and data["responses"].get("alertmanagers") is None:
        # Escalation asks this Alertmanager whether an alert is still firing.
        data["responses"]["alertmanager_url"] = f"http://127.0.0.1:{ports.alertmanager}"
    return Policy.model_validate(data)


# The target's address without its port: host-1.example:9105, [::1]:9100 -> host-1.example, ::1.
HOST_FROM_ADDRESS = r";\[?(.*?)\]?(?::\d+)?"


def host_relabeling(policy: Policy) -> list[dict[str, Any]]:
    """Give a target the policy's host label (its address without the port) unless it has one.

    Every job scraped from one host gets the same value, so node_exporter's target and
    memwarden's exporter on it are one host to the rules, inhibitions and responders.
    """
    label = policy.source.host_label
    return [{"source_labels": [label, "__address__"], "regex": HOST_FROM_ADDRESS, "target_label": label}]


def prometheus_config(policy: Policy, ports: Ports, layout: Layout) -> dict[str, Any]:
    interval = str(scrape_interval(policy))
    evaluation = str(policy.source.evaluation_interval or scrape_interval(policy))
    memwarden_job = job_of(policy.source.component_selector, "memwarden")
    scrape_configs: list[dict[str, Any]] = [
        {"job_name": "memwarden-responder", "static_configs": [{"targets": [f"127.0.0.1:{ports.responder}"]}]},
        {"job_name": "prometheus", "static_configs": [{"targets": [f"127.0.0.1:{ports.prometheus}"]}]},
        {"job_name": "alertmanager", "static_configs": [{"targets": [f"127.0.0.1:{ports.alertmanager}"]}]},
    ]
    relabel = host_relabeling(policy)
    if runs_exporter(policy):
        exporter = {"targets": [f"127.0.0.1:{ports.exporter}"]}
        scrape_configs.insert(0, {"job_name": memwarden_job, "static_configs": [exporter], "relabel_configs": relabel})
    if policy.source.profile == "node_exporter":
        node_job = job_of(policy.source.effective_selector(), "node")
        node = {"targets": [f"127.0.0.1:{ports.node_exporter}"]}
        scrape_configs.insert(0, {"job_name": node_job, "static_configs": [node], "relabel_configs": relabel})
    return {
        "global": {"scrape_interval": interval, "scrape_timeout": interval, "evaluation_interval": evaluation},
        "rule_files": [str(layout.bundle / "rules" / "*.yaml")],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{ports.alertmanager}"]}]}]},
        "scrape_configs": scrape_configs,
    }


def policy_yaml(policy: Policy) -> str:
    """The effective policy as YAML, as it was loaded and wired for this run."""
    data = policy.model_dump(mode="json", by_alias=True)
    return "# the effective policy of this run (defaults filled in, wired to this run's ports)\n" + yaml.safe_dump(
        data, sort_keys=False
    )


def write_run_folder(policy: Policy, policy_name: str, ports: Ports, layout: Layout) -> Policy:
    """Write the token, the wired policy, the bundle and prometheus.yml; return the wired policy."""
    layout.root.mkdir(parents=True, exist_ok=True)
    if not layout.token.exists():
        write_atomic(layout.token, secrets.token_urlsafe(32) + "\n", mode=0o600)
    wired = wire_policy(policy, ports, layout)
    write_atomic(layout.policy, policy_yaml(wired))
    try:
        replace_bundle(layout.bundle, render_bundle(wired, policy_name))
    except BundleError as error:
        raise StackError(str(error)) from None
    write_atomic(layout.prometheus_config, yaml.safe_dump(prometheus_config(wired, ports, layout), sort_keys=False))
    layout.responder_state.mkdir(parents=True, exist_ok=True)
    return wired
