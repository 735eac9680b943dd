"""The generated rules pass `promtool check rules`, and their generated unit tests pass `promtool test rules`."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from memwarden.generator import render_bundle
from memwarden.policy import load_policy

POLICIES = Path(__file__).resolve().parent.parent / "fixtures" / "policies"
# Running the generated tests takes promtool 30-50 s a policy (the components policy about as
# long as the other three together): the quick part runs the small tight.yaml policy (all
# but its prediction tests, below); CI runs all of it.
_SLOW = pytest.mark.slow
CASES = [
    pytest.param(None, marks=_SLOW),
    pytest.param("components.yaml", marks=_SLOW),
    pytest.param("node-exporter.yaml", marks=_SLOW),
    "tight.yaml",
]


@pytest.fixture(scope="module", params=CASES, ids=lambda case: case or "default")
def rendered(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = None if request.param is None else POLICIES / request.param
    policy, _, _ = load_policy(path)
    out = tmp_path_factory.mktemp("bundle")
    for relative, text in render_bundle(policy, "test", ["rules"]).items():
        (out / relative).parent.mkdir(parents=True, exist_ok=True)
        (out / relative).write_text(text)
    return out


def _run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=300)


def test_promtool_check_rules_passes_without_lint_findings(rendered: Path, promtool: str) -> None:
    files = sorted(str(path) for path in (rendered / "rules").glob("*.yaml"))
    result = _run([promtool, "check", "rules", "--lint=all", "--lint-fatal", *files], rendered)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


# The prediction family is most of a policy's run (tight.yaml's: 28 s of promtool's 40 s; it
# plays each leak out one evaluation at a time): the quick part runs the other families of
# tight.yaml, CI runs both parts of every policy.
@pytest.mark.parametrize("part", [pytest.param("prediction", marks=_SLOW), "other-families"])
def test_generated_promtool_unit_tests_pass(rendered: Path, promtool: str, part: str) -> None:
    tests = sorted((rendered / "rules" / "tests").glob("*.yaml"))
    assert {path.name for path in tests} >= {"tiers.yaml", "recording.yaml", "source.yaml", "prediction.yaml"}
    tests = [path for path in tests if (path.name == "prediction.yaml") == (part == "prediction")]
    result = _run([promtool, "test", "rules", *[str(path) for path in tests]], tests[0].parent)
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-2000:]


def test_a_broken_rule_makes_the_generated_tests_fail(rendered: Path, promtool: str) -> None:
    """The generated tests can fail: shift the critical threshold in the rules and they must."""
    alerts = rendered / "rules" / "memwarden.alerts.yaml"
    original = alerts.read_text()
    try:
        # Raise the first tier's threshold by a point: "fires at the threshold" must now fail.
        broken = re.sub(
            r"(instance:memwarden_memory_usage:ratio >= )([0-9.]+)\n",
            lambda match: f"{match.group(1)}{float(match.group(2)) + 0.01:g}\n",
            original,
            count=1,
        )
        assert broken != original
        alerts.write_text(broken)
        result = _run([promtool, "test", "rules", str(rendered / "rules" / "tests" / "tiers.yaml")], rendered)
        assert result.returncode != 0
    finally:
        alerts.write_text(original)


def test_tier_tests_expect_a_for_that_is_no_whole_number_of_evaluations_on_the_next_one(tmp_path: Path, promtool: str) -> None:
    """`for: 20s` evaluated every 30s fires 30s after the crossing; the generated tests said 20s, and failed."""
    policy_file = tmp_path / "coarse.yaml"
    policy_file.write_text(
        "version: memwarden/v1\n"
        "source: {scrape_interval: 30s, evaluation_interval: 30s}\n"
        "thresholds: {for: {warning: 45s, high: 20s, critical: 10s, emergency: 0s}, hysteresis: 0, keep_firing_for: 0s}\n"
    )
    policy, warnings, name = load_policy(policy_file)
    said = "\n".join(problem.render(name) for problem in warnings)
    for tier, wait in (("warning", "45s"), ("high", "20s"), ("critical", "10s")):
        assert f"thresholds.for.{tier}: {wait} is not a multiple of the rules' evaluation interval (30s)" in said, said
    assert "thresholds.for.emergency" not in said  # 0s fires at the crossing: nothing to round
    for relative, text in render_bundle(policy, "test", ["rules"]).items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(text)
    tests = tmp_path / "rules" / "tests"
    result = _run([promtool, "test", "rules", str(tests / "tiers.yaml")], tests)
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-2000:]


@_SLOW
def test_flap_damping_holds_a_tier_that_fires_again_and_its_test_fails_without_it(tmp_path: Path, promtool: str) -> None:
    """The generated flapping case passes on the rules, and fails once the ALERTS_FOR_STATE branch can never hold;
    a component's `flap_window: 0s` leaves its tiers without the branch (and without the case)."""
    policy_file = tmp_path / "flap.yaml"
    policy_file.write_text(
        "version: memwarden/v1\n"
        "thresholds: {keep_firing_for: 2m, flap_window: 30m}\n"
        "components:\n"
        "  - {name: web, match: {cmdline: nginx}, budget: 512MiB, thresholds: {flap_window: 0s}}\n"
    )
    policy, _, _ = load_policy(policy_file)
    for relative, text in render_bundle(policy, "test", ["rules"]).items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(text)
    alerts = tmp_path / "rules" / "memwarden.alerts.yaml"
    text = alerts.read_text()
    assert 'changes(ALERTS_FOR_STATE{alertname="MemoryUsageWarning"}[30m]) > 0' in text
    web = [
        rule["expr"] for group in yaml.safe_load(text)["groups"] for rule in group["rules"] if 'component="web"' in rule["expr"]
    ]
    assert web and not any("ALERTS_FOR_STATE" in expr for expr in web), web
    tests = tmp_path / "rules" / "tests"
    assert "instance tiers that fire again within flap_window 30m" in (tests / "tiers.yaml").read_text()
    result = _run([promtool, "test", "rules", str(tests / "tiers.yaml")], tests)
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-2000:]
    alerts.write_text(re.sub(r"(changes\(ALERTS_FOR_STATE\{[^}]*\}\[30m\]\)) > 0", r"\1 > 1e9", text))
    result = _run([promtool, "test", "rules", str(tests / "tiers.yaml")], tests)
    assert result.returncode == 1, result.stdout[-3000:]
    assert "instance tiers that fire again within flap_window 30m" in result.stdout + result.stderr
