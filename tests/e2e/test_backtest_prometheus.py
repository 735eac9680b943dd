"""`memwarden backtest --prometheus`: the policy replayed over a real Prometheus' backfilled history.

Two days of node_exporter memory for four hosts are written as OpenMetrics, turned into
TSDB blocks by `promtool tsdb create-blocks-from openmetrics`, and served by a real
Prometheus behind basic auth on 127.0.0.1. The backtest reads them back through
/api/v1/query_range and replays them through promtool a day at a time.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import io
import subprocess
from pathlib import Path

import bcrypt
import pytest
import yaml

from memwarden import cli
from memwarden.backtest import history, recorded
from memwarden.backtest.prometheus_api import Client
from memwarden.backtest.traces import Trace
from memwarden.policy import load_policy
from support import servers

pytestmark = pytest.mark.slow

STEP = 60
DAYS = 2
END = 1_796_000_000 // STEP * STEP  # fixed, so the test does not depend on the clock's minute
START = END - DAYS * 86_400
TOTAL = 8 * 2**30
USER, PASSWORD = "sre", "correct horse"


def usage(host: str, t: float) -> float:
    """Percent in use: a leak that reaches 100 % and is restarted, a flat host, a level shift."""
    hours = (t - START) / 3600
    if host in ("leak", "dev-leak"):
        if 36 <= hours < 40:
            return 40 + 60 * (hours - 36) / 4
        return 100.0 if 40 <= hours < 40.5 else 40.0
    if host == "flat":
        return 35.0
    return 70.0 if hours >= 24 else 30.0


HOSTS = {"leak": "prod", "flat": "prod", "step": "prod", "dev-leak": "dev"}


def openmetrics() -> str:
    lines = []
    for name, value in (
        ("node_memory_MemTotal_bytes", lambda h, t: TOTAL),
        ("node_memory_MemAvailable_bytes", lambda h, t: TOTAL * (1 - usage(h, t) / 100)),
    ):
        lines.append(f"# TYPE {name} gauge")
        for host, env in HOSTS.items():
            for t in range(START, END + 1, STEP):
                lines.append(f'{name}{{instance="{host}:9100",job="node",env="{env}"}} {value(host, t):.0f} {t}')
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory, promtool: str) -> servers.Prometheus:
    workdir = tmp_path_factory.mktemp("history")
    source = workdir / "history.om"
    source.write_text(openmetrics())
    subprocess.run(
        [promtool, "tsdb", "create-blocks-from", "openmetrics", str(source), str(workdir / "data")],
        check=True,
        capture_output=True,
        timeout=120,
    )
    web = workdir / "web.yml"
    web.write_text(
        yaml.safe_dump({"basic_auth_users": {USER: bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()}})
    )
    headers = {"Authorization": "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()}
    server = servers.Prometheus(
        workdir,
        {"global": {"scrape_interval": "15s"}},
        [f"--web.config.file={web}", "--storage.tsdb.retention.time=100y"],
        headers=headers,
    )
    yield server
    server.stop()


@pytest.fixture(scope="module")
def policy_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("policy") / "policy.yaml"
    path.write_text(
        "version: memwarden/v1\nsource:\n  profile: node_exporter\n  selector: '{job=\"node\"}'\n  scrape_interval: 60s\n"
    )
    return path


@pytest.fixture(scope="module")
def password_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("secret") / "password"
    path.write_text(PASSWORD + "\n")
    return path


def backtest(capsys: pytest.CaptureFixture[str], policy_file: Path, promtool: str, *argv: str) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser()
    history.add_arguments(parser)
    args = parser.parse_args([*argv, "--until", str(END), "--since", f"{DAYS}d"])
    policy, _, _ = load_policy(policy_file)
    code = history.run(args, policy, promtool)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def report(prometheus: servers.Prometheus, policy_file: Path, password_file: Path, promtool: str) -> str:
    """The whole command, as an operator runs it: `memwarden backtest -p policy.yaml --prometheus …`."""
    argv = ["backtest", "-p", str(policy_file), "--prometheus", prometheus.url, "--match", '{env="prod"}']
    argv += ["--user", USER, "--password-file", str(password_file), "--until", str(END), "--since", f"{DAYS}d"]
    argv += ["--window", "24h"]  # two windows, not the one `auto` picks for three hosts
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli.main(argv) == 0
    return out.getvalue()


def rows(report: str) -> dict[tuple[str, str], list[str]]:
    found = {}
    for line in report.splitlines():
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if line.startswith("| ") and cells[0].endswith(":9100"):
            found[(cells[0], cells[1])] = cells[2:]
    return found


def test_the_leak_is_predicted_and_the_prediction_comes_true(report: str) -> None:
    prediction = rows(report)[("leak:9100", "MemoryExhaustionPredicted")]
    episodes, refires, came_true, false = prediction[:4]
    assert (episodes, came_true, false, refires) == ("1", "1", "0", "0"), report


def test_the_flat_host_fires_nothing_and_the_match_leaves_out_other_hosts(report: str) -> None:
    instances = {instance for instance, _ in rows(report)}
    assert "flat:9100" not in instances
    assert "dev-leak:9100" not in instances
    assert "# " in report and "3 instances" in report


def test_fleet_totals_match_one_replay_of_the_whole_range(
    report: str, prometheus: servers.Prometheus, policy_file: Path, promtool: str
) -> None:
    policy, _, _ = load_policy(policy_file)
    client = Client(prometheus.url, prometheus.headers["Authorization"])
    query, _ = history.usage_query(policy, STEP, '{env="prod"}')
    length = DAYS * 86_400 // STEP  # the steps in (END - 2d, END]
    whole = history.read_window(client, query, END - (length - 1) * STEP, length, STEP, history.Progress(0))
    traces = [Trace(str(labels), STEP, values) for labels, values in whole.items()]
    outcomes = recorded.replay(history.replayable(policy), traces, promtool, chunk_hours=history.CHUNK_HOURS)
    expected = recorded.table(recorded.count(outcomes))
    assert report.split("## fleet\n\n", 1)[1].strip() == expected.strip()
    assert expected.startswith(f"{3 * DAYS:.1f} host-days")


def test_an_address_nothing_listens_on_is_an_error_not_a_traceback(
    capsys: pytest.CaptureFixture[str], policy_file: Path, promtool: str
) -> None:
    url = f"http://127.0.0.1:{servers.free_port()}"
    code, out, err = backtest(capsys, policy_file, promtool, "--prometheus", url)
    assert code == 1 and out == ""
    assert f"error: cannot reach Prometheus at {url}" in err and "Traceback" not in err


def test_missing_or_wrong_credentials_say_so(
    capsys: pytest.CaptureFixture[str], prometheus: servers.Prometheus, policy_file: Path, promtool: str, tmp_path: Path
) -> None:
    code, _, err = backtest(capsys, policy_file, promtool, "--prometheus", prometheus.url)
    assert code == 1 and "answered HTTP 401" in err and "--password-file" in err
    wrong = tmp_path / "wrong"
    wrong.write_text("nope\n")
    code, _, err = backtest(
        capsys, policy_file, promtool, "--prometheus", prometheus.url, "--user", USER, "--password-file", str(wrong)
    )
    assert code == 1 and "answered HTTP 401" in err
    code, _, err = backtest(
        capsys, policy_file, promtool, "--prometheus", prometheus.url, "--bearer-token-file", str(tmp_path / "absent")
    )
    assert code == 1 and f"{tmp_path / 'absent'}: cannot read the bearer token" in err


def test_prometheus_own_error_message_is_shown(
    capsys: pytest.CaptureFixture[str], prometheus: servers.Prometheus, policy_file: Path, password_file: Path, promtool: str
) -> None:
    auth = ["--user", USER, "--password-file", str(password_file)]
    code, _, err = backtest(capsys, policy_file, promtool, "--prometheus", prometheus.url, *auth, "--match", '{env=~"("}')
    assert code == 1 and "answered HTTP 400: bad_data:" in err and "error parsing regexp" in err, err


def test_a_selector_that_matches_nothing_is_named(
    capsys: pytest.CaptureFixture[str], prometheus: servers.Prometheus, policy_file: Path, password_file: Path, promtool: str
) -> None:
    auth = ["--user", USER, "--password-file", str(password_file)]
    code, out, err = backtest(capsys, policy_file, promtool, "--prometheus", prometheus.url, *auth, "--match", '{env="nowhere"}')
    assert code == 1 and out == ""
    assert 'no series matched node_memory_MemTotal_bytes{job="node", env="nowhere"}' in err, err
