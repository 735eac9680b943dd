"""Run every query of the generated dashboards against a live Prometheus.

Panel queries run as range queries over the test's window; the template variables'
`label_values(selector, label)` queries run the way Grafana runs them, through
/api/v1/series, and must yield at least one value of the label.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from pathlib import Path
from typing import Any

from support.servers import http_get

LABEL_VALUES = re.compile(r"^\s*label_values\((?:(?P<selector>.+),\s*)?(?P<label>\w+)\s*\)\s*$", re.S)


def load_dashboards(folder: Path) -> dict[str, Any]:
    return {path.name: json.loads(path.read_text()) for path in sorted(folder.glob("*.json"))}


def host_has_swap() -> bool:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("SwapTotal:"):
            return int(line.split()[1]) > 0
    return False


def substitute(expr: str) -> str:
    """Grafana's variables as a query over everything would see them."""
    # cluster and env as All (.*), which also matches series without those labels.
    return (
        expr.replace("$cluster", ".*")
        .replace("$env", ".*")
        .replace("$instance", ".+")
        .replace("$component", ".+")
        .replace("$__rate_interval", "1m")
        .replace("$__interval", "5s")
        .replace("$__range", "5m")
    )


def panel_queries(dashboards: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(dashboard, panel title, expr) of every panel target, rows' panels included."""
    found = []

    def walk(panels: list[dict[str, Any]], board: str) -> None:
        for panel in panels:
            for target in panel.get("targets", []):
                if target.get("expr"):
                    found.append((board, panel.get("title", ""), target["expr"]))
            walk(panel.get("panels", []), board)

    for board, dashboard in dashboards.items():
        walk(dashboard.get("panels", []), board)
    return found


def variable_queries(dashboards: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(dashboard, variable name, query) of every query-type template variable."""
    found = []
    for board, dashboard in dashboards.items():
        for variable in dashboard.get("templating", {}).get("list", []):
            if variable.get("type") == "query":
                query = variable.get("query")
                text = query.get("query", "") if isinstance(query, dict) else str(query or "")
                found.append((board, variable.get("name", ""), text))
    return found


def _get(prometheus: str, path: str, params: list[tuple[str, str]]) -> Any:
    status, body = http_get(f"{prometheus}{path}?{urllib.parse.urlencode(params)}")
    payload = json.loads(body)
    assert status == 200 and payload["status"] == "success", (path, params, payload)
    return payload["data"]


def empty_panel_queries(prometheus: str, dashboards: dict[str, Any], start: float, end: float) -> list[tuple[str, str, str]]:
    """Panel queries that returned no series over [start, end]; any query error fails at once."""
    empty = []
    for board, title, expr in panel_queries(dashboards):
        params = [("query", substitute(expr)), ("start", str(start)), ("end", str(end)), ("step", "1s")]
        if not _get(prometheus, "/api/v1/query_range", params)["result"]:
            empty.append((board, title, expr))
    return empty


# Values only where the targets carry these labels (many clusters, relabeled environments);
# one Prometheus of `memwarden up` has neither, and their All matches series without them.
SCOPE_VARIABLES = {"cluster", "env"}


def empty_variable_queries(prometheus: str, dashboards: dict[str, Any], start: float, end: float) -> list[tuple[str, str, str]]:
    """Template variables whose label_values() query finds no value; a query that is no label_values() fails.

    cluster and env are checked to be label_values() queries but may be empty.
    """
    empty = []
    for board, name, query in variable_queries(dashboards):
        match = LABEL_VALUES.match(query)
        assert match, f"{board}: variable {name} is not a label_values() query: {query!r}"
        selector, label = substitute(match.group("selector") or '{__name__=~".+"}'), match.group("label")
        params = [("match[]", selector), ("start", str(start)), ("end", str(end))]
        found = _get(prometheus, "/api/v1/series", params)
        if name not in SCOPE_VARIABLES and not any(label in series for series in found):
            empty.append((board, name, query))
    return empty
