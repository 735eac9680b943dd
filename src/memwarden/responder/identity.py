"""Which alerts are about this host: the responder's identity, and its verdict on an alert.

A responder in a fleet hears of every host's alerts (one Alertmanager, or a cluster, in
front of many hosts). It acts only on an alert whose host labels all name this host; an
alert about another host, one whose labels disagree, and one that names no host at all
(unless the policy says this responder serves a single host) are left alone and recorded.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import psutil

from memwarden.policy import Policy
from memwarden.policy.fleet import is_loopback_name

OWN = "own"
OTHER_HOST = "other_host"
NO_IDENTITY = "no_identity"
CONFLICT = "conflict"
# Interfaces whose addresses many hosts share (the same docker0 172.17.0.1 on every docker
# host, Kubernetes service addresses on kube-ipvs0 of every node): never this host's alone.
SHARED_INTERFACES = re.compile(r"^(docker|br-|cni|virbr|podman|lxcbr|lxdbr|flannel|cali|veth|vxlan|cilium|kube-ipvs|weave|tunl)")


@dataclass(frozen=True)
class Verdict:
    """Whether an alert is this host's, and the reason the audit records."""

    kind: str  # own | other_host | no_identity | conflict
    reason: str

    @property
    def own(self) -> bool:
        return self.kind == OWN


def host_part(value: str) -> str:
    """Return the host a label value names: no port, brackets, scheme or path; lower case.

    host-1.example:9105 -> host-1.example; [fd00::2]:9105 -> fd00::2;
    https://host-1.example:8443/healthz (a blackbox probe's instance) -> host-1.example.
    """
    text = value.strip()
    if "://" in text:
        text = urllib.parse.urlsplit(text).netloc.rsplit("@", 1)[-1]
    if text.startswith("["):
        text = text[1:].split("]", 1)[0]
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    return _normal(text)


def _normal(name: str) -> str:
    text = name.strip().strip("[]").lower().rstrip(".")
    try:
        return str(ipaddress.ip_address(text.split("%", 1)[0]))  # one spelling per IPv6 address
    except ValueError:
        return text


def discover_names() -> set[str]:
    """Return this host's hostname, FQDN and own addresses, leaving out those other hosts share too."""
    names = {socket.gethostname(), socket.getfqdn()}
    try:
        interfaces = psutil.net_if_addrs()
    except OSError:
        interfaces = {}
    for interface, addresses in interfaces.items():
        if SHARED_INTERFACES.match(interface):
            continue
        for address in addresses:
            if address.family not in (socket.AF_INET, socket.AF_INET6):
                continue
            try:
                ip = ipaddress.ip_address(address.address.split("%", 1)[0])
            except ValueError:
                continue
            if not ip.is_link_local:  # fe80::/10 and 169.254/16 repeat on every host
                names.add(str(ip))
    return {name for name in (_normal(name) for name in names) if name and not is_loopback_name(name)}


class HostIdentity:
    """This host's names and the labels compared with them; `judge(labels)` says whose an alert is."""

    def __init__(
        self, labels: Iterable[str], names: Iterable[str], patterns: Iterable[str] = (), *, single_host: bool = False
    ) -> None:
        self.labels = tuple(labels)
        self.names = frozenset(_normal(name) for name in names)
        self.patterns = tuple(re.compile(pattern, re.IGNORECASE) for pattern in patterns)
        self.single_host = single_host

    @classmethod
    def of_policy(cls, policy: Policy, *, discover: Callable[[], set[str]] = discover_names) -> HostIdentity:
        section = policy.responses.identity
        labels = section.labels or [policy.source.host_label, "instance"]
        names = set(section.names) | (discover() if section.discover else set())
        return cls(dict.fromkeys(labels), sorted(names), section.patterns, single_host=section.single_host)

    def is_mine(self, host: str) -> bool:
        return host in self.names or any(pattern.fullmatch(host) for pattern in self.patterns)

    def describe(self) -> str:
        shown = sorted(self.names)
        text = ", ".join(shown[:8]) + (f" and {len(shown) - 8} more" if len(shown) > 8 else "")
        if self.patterns:
            text += (", " if text else "") + "patterns " + ", ".join(p.pattern for p in self.patterns)
        return text or "no names"

    def judge(self, labels: dict[str, str]) -> Verdict:
        """Return whether an alert with these labels is about this host, and why."""
        usable = [
            (label, labels[label])
            for label in self.labels
            if labels.get(label) and not is_loopback_name(host_part(labels[label]))
        ]
        if not usable:
            if self.single_host:
                return Verdict(OWN, "no label names a host and this responder serves a single host")
            present = [f"{label}={labels[label]!r}" for label in self.labels if label in labels]
            found = f"only {', '.join(present)}, which names no host in particular" if present else "none of them"
            return Verdict(
                NO_IDENTITY,
                f"cannot tell whose alert it is: it should name its host by {', '.join(self.labels)}, and has {found}; "
                "set responses.identity.single_host: true if this responder serves a single host",
            )
        mine = [(label, value) for label, value in usable if self.is_mine(host_part(value))]
        if len(mine) == len(usable):
            label, value = mine[0]
            return Verdict(OWN, f"{label}={value!r} is this host")
        other = next((label, value) for label, value in usable if (label, value) not in mine)
        if not mine:
            return Verdict(
                OTHER_HOST,
                f"about another host: {other[0]}={other[1]!r} is not this host ({self.describe()}); "
                "that host's responder acts on it",
            )
        return Verdict(
            CONFLICT,
            f"its labels disagree: {mine[0][0]}={mine[0][1]!r} is this host but {other[0]}={other[1]!r} is not; "
            "cannot tell whose alert it is, so nothing acts on it",
        )

    def matchers(self) -> list[str]:
        """Return one Alertmanager filter per label, each taking the values that name this host.

        Alertmanager ANDs the filters of one request, so the puller asks once per label;
        `judge` then applies the whole identity to what comes back.
        """
        names = sorted(self.names, key=lambda name: (len(name), name))
        choices = [re.escape(name) for name in names] + [f"(?:{p.pattern})" for p in self.patterns]
        if not choices:
            return []
        # An instance carries a port, a bracketed IPv6 address or a probe's URL around the name.
        host = "(?i:" + "|".join(choices) + ")"
        regex = rf"(?:[a-z][a-z0-9+.-]*://)?\[?{host}\]?(?::[0-9]+)?(?:/.*)?"
        return [f"{label}=~{_quoted(regex)}" for label in self.labels]


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
