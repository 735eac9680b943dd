"""What a renderer returns: a file's content as data, without the banner the writer adds.

Renderers never build a banner or dump YAML themselves; `writer.as_text` turns each of
these into the file's text, so every generated file says the same thing the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal


@dataclass(frozen=True)
class Yaml:
    """YAML documents dumped under the banner, `---` between them; `note` is comment lines after the banner."""

    documents: tuple[Any, ...]
    note: str = ""


@dataclass(frozen=True)
class Text:
    """Text in a format memwarden does not dump; `banner` says how the banner is put into it.

    `comment`: `#` lines first. `shebang`: `#` lines after the script's first line.
    `go-template`: a `{{/* … */}}` comment first, as Alertmanager templates take it.
    """

    body: str
    banner: Literal["comment", "shebang", "go-template"] = "comment"


@dataclass(frozen=True)
class Dashboard:
    """A Grafana dashboard's JSON model; JSON has no comments, so the banner is its description."""

    model: dict[str, Any]


Content = Yaml | Text | Dashboard
