"""Read a policy file: YAML with line numbers, version check, model, every problem at once."""

from __future__ import annotations

import difflib
import sys
import types
import typing
from collections.abc import Mapping
from importlib import resources
from pathlib import Path as FilePath
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from .model import API_VERSION, Policy
from .problems import Path, PolicyError, Problem
from .validate import semantic_problems
from .yamlsafe import compose_and_load

DEFAULT_POLICY_NAME = "<built-in default policy>"


def default_policy_text() -> str:
    """Return the annotated built-in default policy, exactly as `memwarden init` writes it."""
    return resources.files("memwarden.policy").joinpath("default.yaml").read_text(encoding="utf-8")


def _walk_lines(node: yaml.Node, path: Path, lines: dict[Path, int], problems: list[Problem]) -> None:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = key_node.value
            if key in seen:
                problems.append(
                    Problem(path + (key,), "is given twice; the second would silently win", line=key_node.start_mark.line + 1)
                )
            seen.add(key)
            lines[path + (key,)] = key_node.start_mark.line + 1
            _walk_lines(value_node, path + (key,), lines, problems)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk_lines(item, path + (index,), lines, problems)


def parse_yaml(text: str) -> tuple[Any, dict[Path, int], list[Problem]]:
    """Return the document, the line of every path in it, and syntax problems."""
    try:
        root, data = compose_and_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        reason = getattr(error, "problem", None) or str(error)
        return None, {}, [Problem((), f"not valid YAML: {reason}", line=line)]
    lines: dict[Path, int] = {}
    problems: list[Problem] = []
    if root is not None:
        _walk_lines(root, (), lines, problems)
    return data, lines, problems


def _unwrap(annotation: Any) -> Any:
    """Strip Optional/Annotated so we can see which model sits at a path."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            inner = _unwrap(arg)
            if isinstance(inner, type) and issubclass(inner, BaseModel) or typing.get_origin(inner) in (list, dict):
                return inner
    return annotation


def _model_at(path: Path) -> Any:
    current: Any = Policy
    for part in path:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel) and isinstance(part, str):
            field = next((info for name, info in current.model_fields.items() if (info.alias or name) == part), None)
            if field is None:
                return None
            current = field.annotation
        elif typing.get_origin(current) is list and isinstance(part, int):
            current = typing.get_args(current)[0]
        elif typing.get_origin(current) is dict:
            current = typing.get_args(current)[1]
        else:
            return None
    return _unwrap(current)


def _allowed_keys(path: Path) -> list[str]:
    model = _model_at(path)
    if isinstance(model, type) and issubclass(model, BaseModel):
        return [info.alias or name for name, info in model.model_fields.items()]
    return []


def _clean_loc(loc: tuple[Any, ...], data: Any) -> Path:
    """Drop pydantic's union/validator tags from an error location, keeping real keys."""
    path: list[str | int] = []
    node = data
    for part in loc:
        if isinstance(node, dict) and isinstance(part, str) and part in node:
            path.append(part)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            path.append(part)
            node = node[part]
        elif isinstance(node, dict) and isinstance(part, str) and "[" not in part and "(" not in part:
            path.append(part)  # a missing key: name it, then stop descending
            node = None
    return tuple(path)


def _describe(error: Mapping[str, Any], path: Path) -> str:
    kind = error["type"]
    given = error.get("input")
    if kind == "extra_forbidden":
        allowed = _allowed_keys(path[:-1])
        close = difflib.get_close_matches(str(path[-1]), allowed, n=1)
        hint = f"did you mean '{close[0]}'?" if close else f"allowed here: {', '.join(allowed)}"
        return f"unknown key ({hint})"
    if kind == "missing":
        return "is required"
    message = error["msg"]
    for prefix in ("Value error, ", "Assertion failed, "):
        if message.startswith(prefix):
            message = message[len(prefix) :]
    message = message.replace("Input should be", "must be")
    if kind.startswith(("float", "int", "bool", "string", "literal", "list", "dict", "model")):
        return f"{given!r} {message}" if not isinstance(given, (dict, list)) else message
    return message


def _structural_problems(data: Any, lines: dict[Path, int]) -> list[Problem]:
    try:
        Policy.model_validate(data)
    except ValidationError as error:
        problems: dict[Path, Problem] = {}
        for detail in error.errors():
            path = _clean_loc(detail["loc"], data)
            message = _describe(detail, path)
            if path in problems:
                # Several union branches failing on one value read best as one line.
                if message not in problems[path].message:
                    previous = problems[path]
                    problems[path] = Problem(path, f"{previous.message}; or {message}", line=previous.line)
                continue
            problems[path] = Problem(path, message, line=_line_of(path, lines))
        return list(problems.values())
    return []


def _line_of(path: Path, lines: dict[Path, int]) -> int | None:
    for length in range(len(path), -1, -1):
        if path[:length] in lines:
            return lines[path[:length]]
    return None


def check_text(text: str, filename: str) -> tuple[Policy | None, list[Problem]]:
    """Return the policy (None when it has errors) and every problem, errors and warnings."""
    data, lines, problems = parse_yaml(text)
    if problems and data is None:
        return None, problems
    if not isinstance(data, dict):
        return None, problems + [Problem((), f"the policy must be a mapping that starts with `version: {API_VERSION}`", line=1)]
    version = data.get("version")
    if version != API_VERSION:
        found = "no version" if version is None else f"version {version!r}"
        problems.append(
            Problem(("version",), f"{found}; this memwarden reads `version: {API_VERSION}`", line=_line_of(("version",), lines))
        )
        return None, problems
    problems += _structural_problems(data, lines)
    for problem in semantic_problems(data):
        problems.append(Problem(problem.path, problem.message, problem.level, _line_of(problem.path, lines)))
    problems.sort(key=lambda problem: (problem.line or 0, problem.level != "error"))
    if any(problem.level == "error" for problem in problems):
        return None, problems
    return Policy.model_validate(data), problems


def load_policy(path: str | FilePath | None = None) -> tuple[Policy, list[Problem], str]:
    """Load a policy file, or the built-in default when `path` is None.

    Returns the policy, its warnings and the name to show for it; raises PolicyError
    carrying every problem when there is any error.
    """
    if path is None:
        text, filename = default_policy_text(), DEFAULT_POLICY_NAME
    else:
        filename = str(path)
        try:
            text = FilePath(path).read_text(encoding="utf-8")
        except OSError as error:
            raise PolicyError(filename, [Problem((), f"cannot read the policy: {error.strerror or error}")]) from None
        except UnicodeDecodeError:
            raise PolicyError(filename, [Problem((), "the policy is not UTF-8 text")]) from None
    policy, problems = check_text(text, filename)
    if policy is None:
        raise PolicyError(filename, problems)
    return policy, problems, filename


def load_or_report(path: str | FilePath | None, consequence: str) -> tuple[Policy, str] | None:
    """Load a policy for a command; print its problems to stderr and return None when it has errors.

    `consequence` finishes the error line, e.g. "nothing was written". Warnings are printed
    and the policy is returned with the name to show for it.
    """
    try:
        policy, warnings, name = load_policy(path)
    except PolicyError as error:
        report_errors(error, consequence)
        return None
    report_warnings(warnings, name)
    return policy, name


def report_errors(error: PolicyError, consequence: str) -> None:
    """Print every problem of a policy that did not load, then one line saying what did not happen."""
    count = sum(problem.level == "error" for problem in error.problems)
    print(error.render(), file=sys.stderr)
    print(f"error: {error.filename}: {count} error(s); {consequence}", file=sys.stderr)


def report_warnings(warnings: list[Problem], name: str) -> None:
    for warning in warnings:
        print(warning.render(name), file=sys.stderr)
