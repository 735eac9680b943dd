"""The whole bundle as {relative path: text}, rendered in memory before anything is written.

The one place that knows every renderer: they return content (generator.content), and
this module turns it into file text through the writer, which adds the banner. No
renderer imports this module, so the generator has no import cycle.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from ..policy import Policy
from . import alertmanager, dashboards, kubernetes, rule_tests, rules
from .content import Content
from .writer.format import as_text

Renderer = Callable[[Policy], dict[str, Content]]


def _rules(policy: Policy) -> dict[str, Content]:
    """rules/ and rules/tests/: the rule files and the promtool tests that prove them."""
    return {**rules.render(policy), **rule_tests.render(policy)}


PARTS: dict[str, Renderer] = {
    "rules": _rules,
    "alertmanager": alertmanager.render,
    "dashboards": dashboards.render,
    "kubernetes": kubernetes.render,
}


def render_bundle(policy: Policy, source_name: str, parts: Iterable[str] | None = None) -> dict[str, str]:
    """Render the chosen parts (all by default) as file texts; paths are relative to the output folder."""
    files: dict[str, str] = {}
    for name in parts or PARTS:
        files.update({path: as_text(content, source_name) for path, content in PARTS[name](policy).items()})
    return dict(sorted(files.items()))
