"""The docs' examples work as written: every policy they show passes `memwarden check`, every
memwarden command line and options list they show names options the command has, every
shell block sets the variables it uses, and every panel they send you to is on a dashboard.

The documents are README.md, deploy/README.md and docs/*.md.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import shlex
from functools import cache
from pathlib import Path

import pytest
import yaml

from memwarden.cli import SUBCOMMANDS, main
from memwarden.cli.policy import policy_schema
from memwarden.generator import render_bundle
from memwarden.policy import check_text
from support import fastyaml

REPO = Path(__file__).resolve().parents[2]
DOCUMENTS = sorted(
    str(path.relative_to(REPO)) for path in [REPO / "README.md", REPO / "deploy" / "README.md", *(REPO / "docs").glob("*.md")]
)
SCHEMA = policy_schema()
# Each section of the policy, with the keys its mapping takes (none for a list or a scalar).
SECTIONS = {
    name: set(SCHEMA["$defs"][field["$ref"].split("/")[-1]]["properties"]) if "$ref" in field else set()
    for name, field in SCHEMA["properties"].items()
}
# The subcommands that have subcommands of their own.
NESTED = {"responder": {"audit", "release"}, "alertmanager": {"merge"}}


def _blocks(document: str, *languages: str) -> list[tuple[int, str]]:
    """(line, body) of each fenced block in one of these languages."""
    text = (REPO / document).read_text()
    return [
        (text[: found.start()].count("\n") + 1, found.group(2))
        for found in re.finditer(r"^```(\w*)\n(.*?)^```", text, re.S | re.M)
        if found.group(1) in languages
    ]


def _fleet_blocks(document: str) -> list[str]:
    return [block for _, block in _blocks(document, "yaml") if "alertmanagers:" in block]


@pytest.mark.parametrize("document", ["docs/responder.md", "deploy/README.md"])
def test_the_documented_fleet_policy_passes_check(document: str) -> None:
    (block,) = _fleet_blocks(document)
    data = {"version": "memwarden/v1", **fastyaml.load(block)}
    policy, problems = check_text(yaml.safe_dump(data), document)
    assert policy is not None, [problem.render(document) for problem in problems]
    cluster = policy.responses.alertmanagers
    assert cluster is not None and cluster.pull and len(cluster.urls) == 3
    assert not policy.alertmanager.responder.enabled


def _policy_examples() -> list[tuple[str, int, str]]:
    """Every YAML block that is a policy, a section's content or a rule's actions, as a whole policy."""
    examples = []
    for document in DOCUMENTS:
        for line, block in _blocks(document, "yaml", "yml"):
            data = yaml.safe_load(block)
            section = next((name for name, keys in SECTIONS.items() if isinstance(data, dict) and set(data) & keys), None)
            if isinstance(data, list) and all(isinstance(item, dict) and "kind" in item for item in data):
                component = {"name": "api", "match": {"cmdline": "gunicorn"}, "budget": "1GiB"}
                rule = {"name": "example", "match": {"alertname": "MemoryComponentHigh"}, "actions": data}
                text = yaml.safe_dump({"components": [component], "responses": {"rules": [rule]}})
            elif isinstance(data, dict) and set(data) <= set(SECTIONS):
                text = block
            elif section is not None:  # a section's keys without the section: shown as if it were there
                text = yaml.safe_dump({section: data})
            else:
                continue  # a Prometheus, Alertmanager or web config: checked by their own tests
            examples.append((document, line, text if "version:" in text else "version: memwarden/v1\n" + text))
    return examples


@pytest.mark.parametrize(("document", "line", "text"), _policy_examples(), ids=lambda value: str(value)[:40])
def test_every_policy_the_docs_show_passes_check_and_renders(document: str, line: int, text: str) -> None:
    name = f"{document}:{line}"
    policy, problems = check_text(text, name)
    assert policy is not None, [problem.render(name) for problem in problems]
    bundle = render_bundle(policy, name, ["rules", "alertmanager"])
    assert "rules/memwarden.alerts.yaml" in bundle and "alertmanager/alertmanager.yml" in bundle


def _shell_commands(block: str) -> list[list[str]]:
    """The simple commands of a shell block: continuations joined, comments, sudo and env assignments dropped."""
    commands = []
    for line in block.replace("\\\n", " ").splitlines():
        try:
            words = shlex.split(line, comments=True)
        except ValueError:
            continue
        command: list[str] = []
        for word in [*words, "&&"]:
            if word in ("&&", "||", "|", ";", "(", ")"):
                while command and (command[0] in ("sudo", "nice", "-n", "10", "exec") or re.match(r"^\w+=", command[0])):
                    command.pop(0)
                if command:
                    commands.append(command)
                command = []
            else:
                command.append(word.lstrip("(").rstrip(")"))
    return commands


def _memwarden_commands() -> list[tuple[str, str, list[str]]]:
    """(where, the command as written, its words after `memwarden`) from shell blocks and `inline code`."""
    found = []
    for document in DOCUMENTS:
        for line, block in _blocks(document, "sh", ""):
            for command in _shell_commands(block):
                if command[0] == "memwarden" or command[0].endswith("/bin/memwarden"):
                    found.append((f"{document}:{line}", " ".join(command), command[1:]))
        text = (REPO / document).read_text()
        for span in re.finditer(r"(?<!`)`(memwarden [a-z][^`]*)`(?!`)", text):
            line = text[: span.start()].count("\n") + 1
            found.append((f"{document}:{line}", span.group(1), span.group(1).split()[1:]))
    return [pytest.param(where, written, words) for where, written, words in found]


@cache
def _help(*command: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out), contextlib.suppress(SystemExit):
        main([*command, "--help"])
    return out.getvalue()


@pytest.mark.parametrize(("where", "written", "words"), _memwarden_commands(), ids=lambda value: str(value)[:60])
def test_every_memwarden_command_the_docs_show_has_the_options_it_names(where: str, written: str, words: list[str]) -> None:
    assert words and words[0] in SUBCOMMANDS, f"{where}: `{written}`: no such command"
    command = words[:2] if len(words) > 1 and words[1] in NESTED.get(words[0], ()) else words[:1]
    usage = _help(*command)
    assert usage.startswith("usage: memwarden " + " ".join(command)), f"{where}: `{written}`: {usage[:200]}"
    options = {match.split("=")[0] for word in words for match in re.findall(r"(?<![\w-])(--?[a-z][\w.-]*)", word)}
    missing = sorted(o for o in options if not re.search(rf"(?<![\w-]){re.escape(o)}(?![\w.-])", usage))
    assert not missing, f"{where}: `{written}`: `memwarden {' '.join(command)}` has no {missing}"


# The documents whose option lists (an `| option |` table's first column, an "Options:" paragraph) are one command's.
OPTION_LISTS = {"docs/exporter.md": ("exporter",), "docs/responder.md": ("responder",), "docs/prediction.md": ("backtest",)}


@pytest.mark.parametrize("document", sorted(OPTION_LISTS))
def test_every_option_an_options_list_names_is_one_the_command_has(document: str) -> None:
    text = (REPO / document).read_text()
    tables = re.findall(r"^\| option \|.*\n\|[-| ]+\|\n((?:\|.*\n)+)", text, re.M)
    listed = [row.split("|")[1] for table in tables for row in table.splitlines()]
    listed += re.findall(r"^Options: (.*?)\n\n", text, re.M | re.S)
    options = {o for item in listed for o in re.findall(r"(?<![\w-])(--?[a-z][\w.-]*)", item)}
    assert options, f"{document} lists no options any more: update OPTION_LISTS"
    usage = _help(*OPTION_LISTS[document])
    missing = sorted(o for o in options if not re.search(rf"(?<![\w-]){re.escape(o)}(?![\w.-])", usage))
    assert not missing, f"{document}: `memwarden {' '.join(OPTION_LISTS[document])}` has no {missing}"


def _benchmark_invocations() -> list[tuple[str, str, list[str]]]:
    """(where, script, options) for each `benchmarks/<name>.py --option ...` the docs show."""
    found = []
    for document in DOCUMENTS:
        text = (REPO / document).read_text()
        for match in re.finditer(r"benchmarks/(\w+\.py)((?: +(?:--?[\w.-]+|[\w.:/]+))*)", text):
            options = re.findall(r"(?<![\w-])--[\w.-]+", match.group(2))
            if options:
                found.append((f"{document}:{text[: match.start()].count(chr(10)) + 1}", match.group(1), options))
    return found


@pytest.mark.parametrize(("where", "script", "options"), _benchmark_invocations(), ids=lambda value: str(value)[:40])
def test_every_benchmark_option_the_docs_show_is_one_the_script_takes(where: str, script: str, options: list[str]) -> None:
    source = (REPO / "benchmarks" / script).read_text()
    missing = [option for option in options if f'"{option}"' not in source]
    assert not missing, f"{where}: benchmarks/{script} takes no {missing}"


@pytest.mark.parametrize("document", DOCUMENTS)
def test_every_shell_block_sets_the_variables_it_uses(document: str) -> None:
    for line, block in _blocks(document, "sh"):
        code = re.sub(r"'[^']*'", "''", re.sub(r"(?m)^\s*#.*$|\s#\s.*$", "", block))  # no comments, no '...'
        assigned = set(re.findall(r"(?:^|[\s;&|(])(?:export\s+)?([A-Za-z_]\w*)=", code)) | {"HOME", "PATH", "USER"}
        used = set(re.findall(r"\$\{?([A-Za-z_]\w*)", code))
        assert used <= assigned, f"{document}:{line}: the block uses ${sorted(used - assigned)} without setting it"


@cache
def _panel_titles() -> set[str]:
    def titles(panels: list[dict]) -> set[str]:
        return {title for panel in panels for title in [panel.get("title", ""), *titles(panel.get("panels", []))]}

    return {t for path in (REPO / "dashboards").glob("*.json") for t in titles(json.loads(path.read_text())["panels"])}


@pytest.mark.parametrize("document", DOCUMENTS)
def test_every_panel_the_docs_name_is_on_a_dashboard(document: str) -> None:
    text = (REPO / document).read_text()
    named = re.findall(r'"([^"\n]+)"(?: and [\w-]+)? panels?\b', text)
    missing = sorted(set(named) - _panel_titles())
    assert not missing, f"{document} names panels the dashboards do not have: {missing}"
