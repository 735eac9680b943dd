"""A problem found in a policy: where it is, what is wrong, and whether it stops us."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Path = tuple[str | int, ...]


def format_path(path: Path) -> str:
    """Return `components[2].match` for ('components', 2, 'match')."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text or "(top level)"


@dataclass(frozen=True, order=True)
class Problem:
    """One finding of the validator; errors stop every command, warnings only inform."""

    path: Path
    message: str
    level: Literal["error", "warning"] = "error"
    line: int | None = None

    def render(self, filename: str) -> str:
        where = f"{filename}:{self.line}" if self.line else filename
        prefix = "" if self.level == "error" else "warning: "
        return f"{prefix}{where} {format_path(self.path)}: {self.message}"


class PolicyError(Exception):
    """Raised when a policy has errors; carries every problem found, warnings included."""

    def __init__(self, filename: str, problems: list[Problem]):
        self.filename = filename
        self.problems = problems
        errors = [problem for problem in problems if problem.level == "error"]
        super().__init__(f"{filename}: {len(errors)} error(s)")

    def render(self) -> str:
        return "\n".join(problem.render(self.filename) for problem in self.problems)
