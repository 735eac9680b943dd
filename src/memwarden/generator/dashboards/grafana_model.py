"""Dashboard JSON in Grafana's current model, as grafana-foundation-sdk's Dashboard.from_json reads it.

grafanalib writes keys for every Grafana since 4: `"datasource": null` on rows, null
options, the pre-7 table's `columns` and `fontSize`, `rows`, `hideControls`. Grafana
ignores them, but tools built on its schema refuse a null where an object belongs, so
what Grafana no longer reads is left out here (tests/unit/test_dashboards_model.py keeps
every key we write one that the SDK's model knows).
"""

from __future__ import annotations

from typing import Any

_DASHBOARD = {"__inputs", "hideControls", "rows", "sharedCrosshair"}
_PANEL = {"editable", "error", "hideTimeOverride"}
# A row panel in Grafana's schema: it shows a title, folds, and holds no query.
_ROW = {"collapsed", "datasource", "gridPos", "id", "panels", "repeat", "title", "type"}
# The pre-7 table's settings; the table panel reads options and fieldConfig now.
_OLD_TABLE = {"color", "columns", "fontSize", "mappings", "styles"}
# Tag-based variables were removed in Grafana 8.
_VARIABLE = {"tagsQuery", "tagValuesQuery", "useTags"}


def _without_nulls(node: Any, key: str = "") -> Any:
    """Return node with null values left out, but a threshold step's: null is its -Infinity base."""
    if isinstance(node, dict):
        return {k: _without_nulls(v, k) for k, v in node.items() if v is not None or (key == "steps" and k == "value")}
    if isinstance(node, list):
        return [_without_nulls(item, key) for item in node]
    return node


def _panel(panel: dict[str, Any]) -> dict[str, Any]:
    if panel["type"] == "row":
        return {key: value for key, value in panel.items() if key in _ROW}
    dropped = _PANEL | (_OLD_TABLE if panel["type"] == "table" else set())
    return {key: value for key, value in panel.items() if key not in dropped}


def _variable(variable: dict[str, Any]) -> dict[str, Any]:
    kept = {key: value for key, value in variable.items() if key not in _VARIABLE}
    if "current" in kept:
        kept["current"] = {key: value for key, value in kept["current"].items() if key != "tags"}
    return kept


def current_model(dashboard: dict[str, Any]) -> dict[str, Any]:
    """Return grafanalib's dashboard JSON with only what Grafana's current model has."""
    data = _without_nulls(dashboard)
    data = {key: value for key, value in data.items() if key not in _DASHBOARD}
    data["panels"] = [_panel(panel) for panel in data.get("panels", [])]
    if "templating" in data:
        data["templating"] = {**data["templating"], "list": [_variable(v) for v in data["templating"]["list"]]}
    return data
