"""The memwarden exporter: raw memory facts of the host, its cgroups and the policy's components.

    registry = build_registry(policy.components)       # every collector, nothing else
    TextRenderer(registry).render()                    # the /metrics body (== generate_latest)

`memwarden exporter` (cli.main) serves it over HTTP/1.1 with keep-alive, TLS and basic auth.
"""

from .exposition import CONTENT_TYPE, TextRenderer
from .registry import ExporterCollector, build_registry, build_sources
from .scope import MemoryScope
from .webconfig import WebConfig, WebConfigError, load_web_config

__all__ = [
    "CONTENT_TYPE",
    "ExporterCollector",
    "MemoryScope",
    "TextRenderer",
    "WebConfig",
    "WebConfigError",
    "build_registry",
    "build_sources",
    "load_web_config",
]
