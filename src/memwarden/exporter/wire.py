"""HTTP/1.1 as the exporter's server reads and writes it: request heads in, response heads out.

No I/O here. What is read follows RFC 9112 where a scraper may lean on it (a bare LF as a
line end, the absolute form of a target); request bodies are refused, since /metrics and
/ take none.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterable
from urllib.parse import parse_qs, urlsplit

HEAD_END = re.compile(rb"\r?\n\r?\n")  # RFC 9112 2.2: accept a bare LF as a line end
_LINE_END = re.compile(r"\r?\n")
REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class Refusal(Exception):
    """A request answered with `status` and `body`, and then the connection closed."""

    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(status, body)
        self.status = status
        self.body = body


class Request:
    __slots__ = ("method", "path", "headers", "keep", "names")

    def __init__(self, method: str, path: str, headers: dict[str, str], keep: bool, names: frozenset[str]) -> None:
        self.method = method
        self.path = path
        self.headers = headers
        self.keep = keep
        self.names = names  # ?name[]=... : only these metrics


def split_head(head: str) -> tuple[tuple[str, str, str], list[str]]:
    """Return a head's request line as (method, target, version) and its header lines; raise Refusal."""
    request_line, *header_lines = _LINE_END.split(head)
    parts = request_line.split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise Refusal(400, b"malformed request line\n")
    method, target, version = parts
    return (method, target, version), header_lines


def parse_request(request_line: tuple[str, str, str], header_lines: list[str]) -> Request:
    """Read the headers and the target of a request whose line `split_head` accepted; raise Refusal."""
    method, target, version = request_line
    headers: dict[str, str] = {}
    for line in header_lines:
        name, colon, value = line.partition(":")
        if not colon:
            raise Refusal(400, b"malformed header line\n")
        headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding") or headers.get("content-length", "0") not in ("", "0"):
        raise Refusal(400, b"request bodies are not accepted\n")
    connection = headers.get("connection", "").lower()
    keep = "close" not in connection if version == "HTTP/1.1" else "keep-alive" in connection
    if not target.startswith("/"):
        # absolute form ("http://host:port/metrics", RFC 9112 3.2.2: a server must accept it)
        split = urlsplit(target)
        if split.scheme.lower() not in ("http", "https") or not split.netloc:
            raise Refusal(400, b"malformed request target\n")
        target = (split.path or "/") + (f"?{split.query}" if split.query else "")
    path, _, query = target.partition("?")
    names = frozenset(parse_qs(query).get("name[]", ())) if query else frozenset()
    return Request(method, path, headers, keep, names)


def response_head(
    status: int, *, content_type: str, length: int, date: str, headers: Iterable[tuple[str, str]], closing: bool
) -> bytes:
    """Return the status line and headers of an answer, blank line included."""
    lines = [
        f"HTTP/1.1 {status} {REASONS[status]}",
        f"Content-Type: {content_type}",
        f"Content-Length: {length}",
        f"Date: {date}",
    ]
    lines += [f"{name}: {value}" for name, value in headers]
    if closing:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def gzipped(body: bytes) -> bytes:
    """Return `body` gzip-compressed at level 1, the fastest: every scrape pays for it."""
    compressor = zlib.compressobj(1, zlib.DEFLATED, 31)  # 31: gzip container
    return compressor.compress(body) + compressor.flush()


def accepts_gzip(header: str) -> bool:
    """True when an Accept-Encoding value allows gzip: listed (or "*") with a q-value above 0."""
    star: bool | None = None
    for item in header.split(","):
        coding, *parameters = item.split(";")
        coding = coding.strip().lower()
        quality = 1.0
        for parameter in parameters:
            key, _, value = parameter.partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if coding in ("gzip", "x-gzip"):
            return quality > 0
        if coding == "*":
            star = quality > 0
    return bool(star)
