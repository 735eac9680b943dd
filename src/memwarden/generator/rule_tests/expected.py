"""The expected annotations: the few Prometheus template forms memwarden's rules use, rendered here."""

from __future__ import annotations

import re
import urllib.parse

# --- expected annotations: the few template forms the rules use -------------------------

# `or $labels.x ""` renders as the label, empty when the alert lacks it (as vmalert needs it spelled).
_TEMPLATE = re.compile(r'\{\{ (?:or (?=\$labels))?(\$labels\.(\w+)|\$value)(?: "")?( \| (\w+))? \}\}')
_CONDITION = re.compile(r"\{\{ if \$labels\.(\w+) \}\}(.*?)(?:\{\{ else \}\}(.*?))?\{\{ end \}\}", re.S)
# A `query` lookup; the tier tests keep it empty, so its `else` branch is what renders.
_EMPTY_QUERY = re.compile(r"\{\{ with printf .*? \| query \}\}.*?\{\{ else \}\}(.*?)\{\{ end \}\}", re.S)


def _humanize_percentage(value: float) -> str:
    return _go_g(value * 100) + "%"


def _go_g(value: float) -> str:
    """Go's %.4g, which Prometheus' humanize functions use."""
    text = f"{value:.4g}"
    return text


def expand(template: str, labels: dict[str, str], value: float) -> str:
    """Render the Prometheus template forms memwarden's annotations use."""

    def replace(match: re.Match[str]) -> str:
        if match.group(2):
            text = labels.get(match.group(2), "")
        else:
            text = value  # type: ignore[assignment]
        function = match.group(4)
        if function is None:
            return str(text)
        if function == "urlquery":
            return urllib.parse.quote_plus(str(text))
        if function == "humanizePercentage":
            return _humanize_percentage(float(text))
        if function == "humanize":
            return _go_g(float(text))
        raise ValueError(f"no expected rendering for template function {function!r}")

    def choose(match: re.Match[str]) -> str:
        return match.group(2) if labels.get(match.group(1)) else (match.group(3) or "")

    return _TEMPLATE.sub(replace, _CONDITION.sub(choose, _EMPTY_QUERY.sub(r"\1", template)))
