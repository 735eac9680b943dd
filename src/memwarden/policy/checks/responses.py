"""The responses section's checks: targets that exist and are not protected, commands that are no shell, rules reachable."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..problems import Path, Problem
from ..responses import ResponsesSection
from .common import error, parsed, warning

# Programs that would read an argument as shell code; a `command` must not start with one.
SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "csh", "tcsh", "fish", "busybox"})
# Actions that stop or shrink a component; `protected: true` components never get them.
FORCEFUL_ACTIONS = ("freeze", "throttle", "kill")


def component_flags(raw: Any) -> dict[str, bool]:
    """Return each component's name and whether it is protected (read raw: a broken budget keeps its name)."""
    if not isinstance(raw, list):
        return {}
    return {
        item["name"]: item.get("protected") is True
        for item in raw
        if isinstance(item, dict) and isinstance(item.get("name"), str)
    }


def check_response_targets(raw: Any, components: dict[str, bool]) -> Iterator[Problem]:
    """Every component a rule or action names exists, and no protected one is forced."""
    responses = parsed(ResponsesSection, raw)
    if responses is None:
        return
    for index, rule in enumerate(responses.rules):
        path: Path = ("responses", "rules", index)
        for position, name in enumerate(rule.match.component):
            if name not in components:
                yield error(path + ("match", "component", position), _unknown_component(name, components))
        for number, action in enumerate(rule.actions):
            name = action.component_name
            where = path + ("actions", number)
            if name is not None and name not in components:
                yield error(where + ("component",), _unknown_component(name, components))
            if action.kind not in FORCEFUL_ACTIONS:
                continue
            # Without its own component the action takes the alert's, i.e. any the rule matches.
            candidates = [name] if name is not None else rule.match.component
            for protected in (target for target in candidates if components.get(target)):
                yield error(
                    where + ("component",) if name is not None else where,
                    f"{action.kind} would act on '{protected}', which is protected: true; "
                    "use log, http or signal for it, or drop `protected`",
                )


def _unknown_component(name: str, components: dict[str, bool]) -> str:
    known = ", ".join(components) or "none are defined"
    return f"'{name}' is not a component in `components` (known: {known})"


def check_response_commands(raw: Any) -> Iterator[Problem]:
    """A `command` is a program and its arguments, never a shell or a command line."""
    responses = parsed(ResponsesSection, raw)
    if responses is None:
        return
    for index, rule in enumerate(responses.rules):
        for number, action in enumerate(rule.actions):
            if action.kind != "command":
                continue
            path: Path = ("responses", "rules", index, "actions", number, "argv")
            program = action.argv[0]
            if len(action.argv) == 1 and any(space in program for space in " \t"):
                yield error(
                    path,
                    f"{program!r} is one string with spaces; give the program and each argument "
                    f"as its own item: [{', '.join(program.split())}]",
                )
            elif _runs_shell(action.argv):
                yield error(
                    path + (0,),
                    f"{program!r} is a shell or runs one; alert data must never reach a shell. Point argv at the program itself",
                )
            elif not program.startswith("/"):
                yield warning(path + (0,), f"{program!r} is looked up in PATH; an absolute path cannot be swapped")


def _runs_shell(argv: list[str]) -> bool:
    """Whether argv starts a shell, directly or through `env [-i] [NAME=value ...]`."""
    words = list(argv)
    if words and words[0].rsplit("/", 1)[-1] == "env":
        words = [word for word in words[1:] if not word.startswith("-") and "=" not in word]
    return bool(words) and words[0].rsplit("/", 1)[-1] in SHELLS


def check_response_rules(raw: Any) -> Iterator[Problem]:
    """Rule names are unique and every rule can be reached."""
    responses = parsed(ResponsesSection, raw)
    if responses is None:
        return
    seen: dict[str, int] = {}
    for index, rule in enumerate(responses.rules):
        path: Path = ("responses", "rules", index)
        if rule.name in seen:
            yield error(path + ("name",), f"'{rule.name}' is already used by responses.rules[{seen[rule.name]}]")
        seen.setdefault(rule.name, index)
        shadow = next(
            (
                earlier
                for earlier, before in enumerate(responses.rules[:index])
                if not before.continue_ and _covers(before.match, rule.match)
            ),
            None,
        )
        if shadow is not None:
            yield warning(
                path,
                f"is never reached: responses.rules[{shadow}] takes every alert it would and has no "
                "`continue: true`; move this rule above it",
            )


def _covers(earlier: Any, later: Any) -> bool:
    """Whether `earlier` surely takes every alert `later` takes (same name pattern, broader lists)."""
    return earlier.alertname == later.alertname and all(
        not getattr(earlier, field) or (getattr(later, field) and set(getattr(later, field)) <= set(getattr(earlier, field)))
        for field in ("severity", "tier", "component")
    )
