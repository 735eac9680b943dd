"""The PromQL shape of each rule kind, as a named Jinja2 template (templates/promql/).

As Sloth keeps its query shapes as named templates, the layout of every expression —
where it breaks lines, how it nests `or`/`and`/`unless` — is read in one file per rule
kind rather than pieced together from f-strings. The rule functions in `rules` decide
the values (series, thresholds, windows); `render` fills a shape and tidies it here, in
one place. StrictUndefined: a value a shape names but a caller forgot is an error at
generate time, never an empty string in a rule.
"""

from __future__ import annotations

from functools import cache

import jinja2

from .promql import number, ratio

SUFFIX = ".promql.j2"


@cache
def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("memwarden.generator", "templates/promql"),
        undefined=jinja2.StrictUndefined,
        # PromQL is not HTML: nothing is escaped.
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    environment.filters["ratio"] = ratio
    environment.filters["number"] = number
    return environment


def render(shape: str, **values: object) -> str:
    """Fill the named shape; lines lose trailing blanks and the expression its outer blank lines."""
    text = _environment().get_template(shape + SUFFIX).render(**values)
    return "\n".join(line.rstrip() for line in text.strip("\n").splitlines())


def shape_names() -> list[str]:
    """Every shape there is (for the test that renders each one)."""
    return sorted(name.removesuffix(SUFFIX) for name in _environment().list_templates() if name.endswith(SUFFIX))
