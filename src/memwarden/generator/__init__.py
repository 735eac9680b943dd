"""Render everything a policy implies: rules and their tests, Alertmanager config, dashboards."""

from .bundle import PARTS, render_bundle
from .writer.format import banner

__all__ = ["PARTS", "banner", "render_bundle"]
