"""Render everything a policy implies: rules and their tests, Alertmanager config, dashboards."""

from .bundle import PARTS, header, render_bundle

__all__ = ["PARTS", "header", "render_bundle"]
