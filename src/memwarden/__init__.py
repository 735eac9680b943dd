"""memwarden: keep hosts and services from running out of memory, the Prometheus way."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("memwarden")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0+unknown"
