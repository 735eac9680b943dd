"""Start real Prometheus and Alertmanager on loopback for a test, and stop them after."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from memwarden import binaries
from memwarden.stack.processes import free_port  # the tests import it from here too


def program(kind: str) -> str:
    """Return a real program's path; skip without it, but fail in CI where it must exist."""
    path = binaries.find(kind)
    if path is None:
        message = f"{kind} is not installed (run `make test`, which installs it)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


def wait_until(check: Callable[[], Any], timeout: float = 20.0, interval: float = 0.1, what: str = "condition") -> Any:
    """Poll `check` until it returns something truthy; fail the test after `timeout`."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except Exception as error:  # polling: remember and retry
            last_error = error
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}" + (f": {last_error}" if last_error else ""))


def http_get(url: str, timeout: float = 5.0, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


class RealProcess:
    """A child process with its log in a file; stopped with SIGTERM, then SIGKILL."""

    def __init__(
        self,
        argv: list[str],
        log_path: Path,
        ready_url: str | None = None,
        timeout: float = 30.0,
        ready_headers: dict[str, str] | None = None,
    ):
        self.argv = argv
        self._ready_headers = ready_headers
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.process = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        if ready_url:
            try:
                wait_until(lambda: self._ready(ready_url), timeout=timeout, what=f"{argv[0]} to be ready")
            except AssertionError:
                self.stop()
                raise AssertionError(f"{argv[0]} did not become ready; log:\n{self.log()}") from None

    def _ready(self, url: str) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"{self.argv[0]} exited with {self.process.returncode}:\n{self.log()}")
        status, _ = http_get(url, timeout=1.0, headers=self._ready_headers)
        return status == 200

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


class Prometheus(RealProcess):
    """A real Prometheus with a config and rule files of the test's making (`headers`: its web config's credentials)."""

    def __init__(
        self, workdir: Path, config: dict[str, Any], extra_args: list[str] | None = None, headers: dict[str, str] | None = None
    ):
        self.headers = headers or {}
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config_path = workdir / "prometheus.yml"
        config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        argv = [
            program("prometheus"),
            f"--config.file={config_path}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--web.enable-lifecycle",
            *(extra_args or []),
        ]
        super().__init__(argv, workdir / "prometheus.log", ready_url=f"{self.url}/-/ready", ready_headers=self.headers)

    def api(self, path: str, **params: str) -> Any:
        query = urllib.parse.urlencode(params)
        status, body = http_get(f"{self.url}/api/v1/{path}?{query}", headers=self.headers)
        payload = json.loads(body)
        if status != 200 or payload.get("status") != "success":
            raise AssertionError(f"Prometheus {path} {params} failed: {status} {payload}")
        return payload["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        return self.api("query", query=expr)["result"]

    def targets(self) -> list[dict[str, Any]]:
        return self.api("targets")["activeTargets"]


class Alertmanager(RealProcess):
    """A real Alertmanager with the given config file; clustering off unless `cluster` gives its flags."""

    def __init__(
        self,
        workdir: Path,
        config_path: Path,
        extra_args: list[str] | None = None,
        *,
        cluster: list[str] | None = None,
        ready_auth: tuple[str, str] | None = None,
        port: int | None = None,
    ):
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        argv = [
            program("alertmanager"),
            f"--config.file={config_path}",
            f"--storage.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            *(cluster if cluster is not None else ["--cluster.listen-address="]),
            *(extra_args or []),
        ]
        headers = None
        if ready_auth is not None:
            token = base64.b64encode(f"{ready_auth[0]}:{ready_auth[1]}".encode()).decode()
            headers = {"Authorization": f"Basic {token}"}
        super().__init__(argv, workdir / "alertmanager.log", ready_url=f"{self.url}/-/ready", ready_headers=headers)

    def post_alerts(self, alerts: list[dict[str, Any]]) -> None:
        request = urllib.request.Request(
            f"{self.url}/api/v2/alerts",
            data=json.dumps(alerts).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 200

    def alerts(self, **filters: str) -> list[dict[str, Any]]:
        query = urllib.parse.urlencode(filters)
        status, body = http_get(f"{self.url}/api/v2/alerts?{query}")
        assert status == 200, body
        return json.loads(body)
