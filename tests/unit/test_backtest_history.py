"""The --prometheus mode's pieces that need no Prometheus: requests, the query, options, names."""

from __future__ import annotations

import http.server
import threading
from itertools import pairwise

import pytest

from memwarden.backtest import history, tallies
from memwarden.backtest.prometheus_api import MAX_POINTS, Client, HistoryError, pieces
from memwarden.policy import load_policy


def test_pieces_cover_the_range_on_the_grid_without_overlap() -> None:
    cut = list(pieces(600, 600 + 86_400, 60, 6 * 3600))
    assert cut[0][0] == 600 and cut[-1][1] == 600 + 86_400
    assert all(b[0] == a[1] + 60 for a, b in pairwise(cut))
    assert all(last - first <= 6 * 3600 for first, last in cut)
    assert len(list(pieces(0, 10 * 86_400, 1, 10 * 86_400))) == -(-(10 * 86_400 + 1) // MAX_POINTS)


def test_the_query_reads_the_profiles_series_under_the_policys_selector_and_match() -> None:
    policy, _, _ = load_policy()
    query, selectors = history.usage_query(policy, 60, '{env=~"prod.*"}')
    assert selectors == [
        'memwarden_memory_total_bytes{job="memwarden", component="", env=~"prod.*"}',
        'memwarden_memory_available_bytes{job="memwarden", component="", env=~"prod.*"}',
    ]
    assert "sum without (" in query and "by (" not in query and "last_over_time(" in query and "[1m]" in query
    with pytest.raises(ValueError):
        history.usage_query(policy, 60, "env=prod")


def test_the_replay_selects_the_replayed_series_and_leaves_the_error_budget_out() -> None:
    policy, _, _ = load_policy()
    custom = policy.model_copy(update={"source": policy.source.model_copy(update={"selector": '{job="node", env="prod"}'})})
    replayed = history.replayable(custom)
    assert replayed.source.effective_selector() == '{job="memwarden"}' and not replayed.slo.enabled


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"url": "127.0.0.1:9090"}, "give the address as http://host:9090"),
        ({"user": "a", "bearer_token_file": "/x"}, "not both"),
        ({"password_file": "/x"}, "--password-file needs --user"),
        ({"bearer_token_file": "/nonexistent/token"}, "/nonexistent/token: cannot read the bearer token"),
    ],
)
def test_bad_options_are_named(options: dict[str, str], message: str) -> None:
    settings = {
        "url": "http://127.0.0.1:9090",
        "user": None,
        "password_file": None,
        "bearer_token_file": None,
        "timeout": 5.0,
    } | options
    with pytest.raises(HistoryError, match=message):
        Client.create(settings.pop("url"), **settings)


def test_the_bearer_token_is_sent_and_a_non_prometheus_answer_is_named(tmp_path) -> None:
    seen: list[str | None] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.headers.get("Authorization"))
            body = b"<html>not prometheus</html>"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        token = tmp_path / "token"
        token.write_text("s3cret\n")
        url = f"http://127.0.0.1:{server.server_port}"
        client = Client.create(url, user=None, password_file=None, bearer_token_file=str(token), timeout=5)
        with pytest.raises(HistoryError, match="not JSON: is .* a Prometheus"):
            client.query_range("up", 0, 60, 60)
    finally:
        server.shutdown()
        server.server_close()
    assert seen == ["Bearer s3cret"]


def test_hosts_are_named_by_instance_unless_two_share_one() -> None:
    keys = [
        (("instance", "a:9100"), ("job", "node")),
        (("instance", "b:9100"), ("job", "node")),
        (("instance", "b:9100"), ("job", "other")),
    ]
    names = tallies.instance_names(keys)
    assert names[keys[0]] == "a:9100"
    assert names[keys[2]] == '{instance="b:9100", job="other"}'


def test_came_true_looks_ahead_through_the_runs_at_97_percent() -> None:
    tally = tallies.Tally(0, hits=[(100, 120)])
    assert tally.came_true(50, 60) and tally.came_true(110, 60) and not tally.came_true(121, 60) and not tally.came_true(30, 60)
