"""Small PromQL builders: selectors from the policy, numbers written exactly."""

from __future__ import annotations

from decimal import Decimal

from ..policy import parse_selector


def matchers(selector: str, *extra: str) -> str:
    """Return `{a="b",c=""}`: the policy selector's matchers plus extra ones, deduplicated."""
    parts = [f'{label}{operator}"{value}"' for label, operator, value in parse_selector(selector)]
    for matcher in extra:
        if matcher and matcher not in parts:
            parts.append(matcher)
    return "{" + ", ".join(parts) + "}"


def series(metric: str, selector: str, *extra: str) -> str:
    return metric + matchers(selector, *extra)


def by(labels: tuple[str, ...]) -> str:
    return f"by ({', '.join(labels)})"


def without(labels: tuple[str, ...]) -> str:
    return f"without ({', '.join(labels)})"


def ignoring(labels: tuple[str, ...]) -> str:
    return f"ignoring ({', '.join(labels)})"


def on(labels: tuple[str, ...]) -> str:
    return f"on ({', '.join(labels)})"


def ratio(percent: float) -> str:
    """Return a percentage as an exact decimal ratio: 90 -> `0.9`, 33.3 -> `0.333`."""
    value = (Decimal(str(percent)) / 100).normalize()
    text = format(value, "f")
    return text if "." in text or text in ("0", "1") else text


def number(value: float) -> str:
    """Return a number without float noise: 256.0 -> `256`, 14.4 -> `14.4`."""
    text = format(Decimal(str(value)).normalize(), "f")
    return text


def regex_alternatives(values: list[str]) -> str:
    """Return a label regex matching exactly these values (names are [a-zA-Z0-9_.-])."""
    return "|".join(value.replace(".", "\\\\.") for value in values)
