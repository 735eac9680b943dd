"""The responder's own metrics on /metrics, in a registry of its own (tests make several)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# The one series of the responder's that dashboards and the stack read: its name, help and
# labels are the contract's (docs/design.md). The others are the responder's own.
from memwarden.contract import RESPONSES_TOTAL


class ResponderMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.responses = Counter(RESPONSES_TOTAL.family, RESPONSES_TOTAL.help, RESPONSES_TOTAL.labels, registry=self.registry)
        self.duration = Histogram(
            "memwarden_response_duration_seconds",
            "How long actions took to run, by action kind.",
            ["action"],
            buckets=(0.001, 0.005, 0.025, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
            registry=self.registry,
        )
        self.webhook_requests = Counter(
            "memwarden_webhook_requests",
            "Webhook requests received, by HTTP status code returned.",
            ["code"],
            registry=self.registry,
        )
        self.alerts = Counter(
            "memwarden_webhook_alerts",
            "Alerts received in accepted notifications, by status (firing, resolved).",
            ["status"],
            registry=self.registry,
        )
        self.foreign = Counter(
            "memwarden_responder_foreign_alerts",
            "Alerts left alone because they are not this host's, by reason (other_host, conflict, no_identity).",
            ["reason"],
            registry=self.registry,
        )
        self.reclaimed = Counter(
            "memwarden_reclaimed_bytes",
            "Memory reclaimed after actions: the target's working set before minus after.",
            ["action", "component"],
            registry=self.registry,
        )
        self.running = Gauge(
            "memwarden_responder_running_actions",
            "Actions touching processes or cgroups running now.",
            registry=self.registry,
        )
        self.holds = Gauge(
            "memwarden_responder_holds",
            "Targets frozen or throttled now, waiting to be undone.",
            ["action"],
            registry=self.registry,
        )
