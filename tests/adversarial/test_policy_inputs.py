"""Policy files that try to hang, crash or exhaust `check`, the exporter and the responder.

The hostile cases run the real `memwarden` command in a child with an address-space
limit and a deadline, so a regression shows as a failed test, not a wedged suite.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from memwarden.policy import check_text
from memwarden.policy.yamlsafe import MAX_BYTES, MAX_DEPTH, MAX_NODES, safe_load
from support.servers import free_port

MEMWARDEN = [sys.executable, "-m", "memwarden.cli"]
HEADER = "version: memwarden/v1\n"


def _bomb(levels: int) -> str:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, levels + 1)]
    return HEADER + "\n".join(lines) + f"\nlabels: {{team: *a{levels}}}\n"


HOSTILE = {
    "an alias bomb of 6 levels": (_bomb(6), f"expands to more than {MAX_NODES} values"),
    "an alias bomb of 9 levels": (_bomb(9), f"expands to more than {MAX_NODES} values"),
    "a recursive alias": (HEADER + "labels: &a {team: *a}\n", "an alias refers to a node that contains it"),
    "lists nested 500 deep": (HEADER + "labels: " + "[" * 500 + "]" * 500 + "\n", f"nested more than {MAX_DEPTH}"),
    "mappings nested 500 deep": (HEADER + "labels: " + "{a: " * 500 + "1" + "}" * 500 + "\n", f"nested more than {MAX_DEPTH}"),
    "a number of 5,000 digits": (HEADER + "labels: " + "7" * 5000 + "\n", "a value cannot be read"),
    "a list of 300,000 items": (HEADER + "labels: [" + "a, " * 300_000 + "]\n", f"has more than {MAX_NODES} values"),
    "over the size limit": (HEADER + "# " + "x" * MAX_BYTES + "\n", "the limit is"),
}


def _run_limited(argv: list[str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run a memwarden command under 1 GiB of address space (the 6-level bomb took 1.1 GB)."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=timeout, preexec_fn=limit, env=env, stdin=subprocess.DEVNULL
    )


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_check_names_each_hostile_yaml_and_stops(case: str, tmp_path: Path) -> None:
    text, reason = HOSTILE[case]
    policy = tmp_path / "policy.yaml"
    policy.write_text(text)
    result = _run_limited([*MEMWARDEN, "check", str(policy)])
    assert result.returncode == 1, result.stderr[-2000:]
    assert "Traceback" not in result.stderr and "MemoryError" not in result.stderr
    assert f"{policy}" in result.stderr and reason in result.stderr, result.stderr[-2000:]


@pytest.mark.parametrize(
    "command",
    [["exporter", "--listen", "PORT", "-p"], ["responder", "--listen", "PORT", "--no-auth", "--state-dir", "STATE", "-p"]],
)
def test_the_exporter_and_the_responder_refuse_an_alias_bomb_too(command: list[str], tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(_bomb(9))
    fill = {"STATE": str(tmp_path / "state"), "PORT": f"127.0.0.1:{free_port()}"}
    argv = [*MEMWARDEN, *[fill.get(part, part) for part in command], str(policy)]
    result = _run_limited(argv)
    assert result.returncode == 1, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert "expands to more than" in result.stderr


def test_anchors_and_aliases_within_the_limits_still_work() -> None:
    policy, problems = check_text(
        HEADER
        + "components:\n"
        + "  - {name: api, match: {cmdline: api}, budget: 1GiB, thresholds: &tight {warning: 60, high: 70}}\n"
        + "  - {name: web, match: {cmdline: web}, budget: 1GiB, thresholds: *tight}\n",
        "policy.yaml",
    )
    assert policy is not None, problems
    assert policy.components[1].thresholds.warning == 60


def test_the_bounded_loader_keeps_shared_values_shared_and_reads_plain_yaml() -> None:
    assert safe_load("a: &x [1, 2]\nb: *x\n") == {"a": [1, 2], "b": [1, 2]}
    assert safe_load("") is None


# -- catastrophic cmdline patterns -----------------------------------------------------------

EVIL = r"^(\w+\s?)+$"


def test_a_catastrophic_pattern_is_matched_in_linear_time_against_a_hostile_command_line(tmp_path: Path) -> None:
    """`^(\\w+\\s?)+$` against `aaa…a!` doubled per character under backtracking (2 s at 25)."""
    proc = tmp_path / "proc"
    for pid, line in ((101, b"a" * 5000 + b"!"), (102, b"aaaa bbbb\x00")):
        (proc / str(pid)).mkdir(parents=True)
        (proc / str(pid) / "cmdline").write_bytes(line)
        (proc / str(pid) / "stat").write_text(f"{pid} (x) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 100 0 0\n")
    (proc / "stat").write_text("btime 1700000000\n")
    (proc / "self").symlink_to("1")
    script = (
        "import sys\n"
        "from memwarden.system import ComponentSpec, Resolver\n"
        f"resolver = Resolver([ComponentSpec('evil', 'cmdline', {EVIL!r}, budget='1GiB')], proc_root={str(proc)!r},"
        " cgroup_root='/nonexistent', exclude_pids=())\n"
        "print(resolver.resolve_all()['evil'].pids)\n"
    )
    # Under backtracking this never finishes; linear matching takes milliseconds.
    result = _run_limited([sys.executable, "-c", script], timeout=30)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "(102,)"


@pytest.mark.parametrize("pattern", [r"(api)\1", r"api(?=-worker)", r"(?<!test-)api"])
def test_check_rejects_patterns_only_backtracking_can_match_and_says_why(pattern: str) -> None:
    policy, problems = check_text(
        HEADER + f"components:\n  - {{name: api, match: {{cmdline: '{pattern}'}}, budget: 1GiB}}\n", "policy.yaml"
    )
    assert policy is None
    rendered = [problem.render("policy.yaml") for problem in problems]
    assert any(
        line.startswith("policy.yaml:3 components[0].match.cmdline: uses what RE2 cannot match in bounded time")
        for line in rendered
    ), rendered
