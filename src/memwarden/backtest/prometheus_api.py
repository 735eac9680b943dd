"""A small client of Prometheus' HTTP API for the backtest: range queries in pieces, with auth, and a progress bar.

urllib is enough here (one request at a time, JSON back), so the backtest needs nothing
beyond the standard library to read a Prometheus. Every failure becomes a `HistoryError`
whose message names the address and, where Prometheus sent one, its own error text.
"""

from __future__ import annotations

import base64
import json
import math
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Prometheus refuses a range query of more than 11,000 points per series; a request of
# 6 hours keeps each answer small whatever the step and the fleet.
MAX_POINTS = 11_000
PIECE_HOURS = 6

Labels = tuple[tuple[str, str], ...]


class HistoryError(Exception):
    """Reading the history failed; the message says where and why."""


def read_secret(path: str, what: str) -> str:
    """A password or token from a file (its trailing newline dropped), as Prometheus' own *_file options read them."""
    try:
        secret = Path(path).read_text().rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as error:
        raise HistoryError(f"{path}: cannot read the {what}: {error}") from None
    if not secret:
        raise HistoryError(f"{path}: the {what} file is empty")
    return secret


@dataclass(frozen=True)
class Client:
    """Prometheus at `url` (http or https), with an optional Authorization header."""

    url: str
    authorization: str | None = None
    timeout: float = 60.0

    @classmethod
    def create(
        cls, url: str, *, user: str | None, password_file: str | None, bearer_token_file: str | None, timeout: float
    ) -> Client:
        parsed = urllib.parse.urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise HistoryError(f"--prometheus {url!r}: give the address as http://host:9090 (or https://…)")
        if bearer_token_file and (user or password_file):
            raise HistoryError("give either --bearer-token-file or --user/--password-file, not both")
        if password_file and not user:
            raise HistoryError("--password-file needs --user")
        authorization = None
        if bearer_token_file:
            authorization = "Bearer " + read_secret(bearer_token_file, "bearer token")
        elif user:
            password = read_secret(password_file, "password") if password_file else ""
            authorization = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        return cls(url.rstrip("/"), authorization, timeout)

    def get(self, path: str, params: list[tuple[str, str]]) -> Any:
        """GET /api/v1/<path>; the `data` of a successful answer."""
        address = f"{self.url}/api/v1/{path}"
        request = urllib.request.Request(f"{address}?{urllib.parse.urlencode(params)}")
        if self.authorization:
            request.add_header("Authorization", self.authorization)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                body = response.read()
        except urllib.error.HTTPError as error:
            raise HistoryError(self._refusal(address, error.code, error.read())) from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise HistoryError(f"cannot reach Prometheus at {self.url}: {reason}") from None
        try:
            payload = json.loads(body)
        except ValueError:
            raise HistoryError(f"{address} answered with something that is not JSON: is {self.url} a Prometheus?") from None
        if not isinstance(payload, dict) or payload.get("status") != "success":
            raise HistoryError(self._refusal(address, 200, body))
        return payload.get("data")

    def _refusal(self, address: str, status: int, body: bytes) -> str:
        try:
            payload = json.loads(body)
            reason = f"{payload.get('errorType', 'error')}: {payload['error']}"
        except (ValueError, KeyError, TypeError, AttributeError):
            reason = body.decode(errors="replace").strip()[:300] or "no reason given"
        hint = ""
        if status in (401, 403):
            hint = " (give credentials with --user and --password-file, or --bearer-token-file)"
        return f"{address} answered HTTP {status}: {reason}{hint}"

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[tuple[Labels, list[tuple[float, float]]]]:
        """Every series of `expr` from `start` to `end` (both evaluated) as (labels, [(time, value)])."""
        data = self.get("query_range", [("query", expr), ("start", _stamp(start)), ("end", _stamp(end)), ("step", _stamp(step))])
        if not isinstance(data, dict) or data.get("resultType") != "matrix":
            raise HistoryError(f"{self.url}: expected a matrix from query_range, got {str(data)[:200]}")
        result = []
        for item in data.get("result", []):
            labels = tuple(sorted(item.get("metric", {}).items()))
            samples = []
            for stamp, text in item.get("values", []):
                value = float(text)
                if math.isfinite(value):
                    samples.append((float(stamp), value))
            result.append((labels, samples))
        return result

    def series_exist(self, selector: str, start: float, end: float) -> bool:
        """Whether any series matches `selector` between `start` and `end`."""
        data = self.get("series", [("match[]", selector), ("start", _stamp(start)), ("end", _stamp(end))])
        return bool(data)


def pieces(start: float, end: float, step: float, piece: float) -> Iterator[tuple[float, float]]:
    """Cut [start, end] on the step grid into requests of at most `piece` seconds (and MAX_POINTS points), none overlapping."""
    points = max(1, min(MAX_POINTS, int(piece // step)))
    first = start
    while first <= end:
        last = min(end, first + (points - 1) * step)
        yield first, last
        first = last + step


def _stamp(seconds: float) -> str:
    return f"{seconds:.3f}".rstrip("0").rstrip(".")


class Progress:
    """`read 12/28 requests` on stderr, rewritten in place; silent when stderr is not a terminal."""

    def __init__(self, total: int):
        self.total, self.done = total, 0
        self.enabled = sys.stderr.isatty()

    def advance(self, what: str) -> None:
        self.done += 1
        if self.enabled:
            width = 30
            filled = width * self.done // max(1, self.total)
            sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} {what:<40}")
            sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\r" + " " * 90 + "\r")
            sys.stderr.flush()


def read_window(
    client: Client, query: str, start: float, length: int, step: float, progress: Progress
) -> dict[Labels, list[float | None]]:
    """`length` steps of every host from `start`, in requests of PIECE_HOURS."""
    window: dict[Labels, list[float | None]] = {}
    for first, last in pieces(start, start + (length - 1) * step, step, PIECE_HOURS * 3600):
        for labels, samples in client.query_range(query, first, last, step):
            row = window.setdefault(labels, [None] * length)
            for stamp, value in samples:
                index = round((stamp - start) / step)
                if 0 <= index < length:
                    row[index] = value
        progress.advance(f"read up to {time.strftime('%Y-%m-%d %H:%M', time.gmtime(last))} UTC")
    return window
