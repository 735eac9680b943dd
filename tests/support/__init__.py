"""Shared test support: real Prometheus-family processes on 127.0.0.1."""
