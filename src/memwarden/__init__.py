"""memwarden: keep hosts and services from running out of memory, the Prometheus way."""

from __future__ import annotations


def __getattr__(name: str) -> str:
    # Resolved lazily: importlib.metadata costs the exporter's serving process ~7 MB of RSS.
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("memwarden")
        except PackageNotFoundError:  # running from a source tree without an install
            return "0.0.0+unknown"
    raise AttributeError(f"module 'memwarden' has no attribute {name!r}")
