"""Hostile clients for server tests and benchmarks: a slowloris, bounded in sockets and time.

Loopback only. Each helper runs in a thread of its own and stops when asked (or when its
time is up), closing every socket it opened.
"""

from __future__ import annotations

import errno
import resource
import selectors
import socket
import threading
import time
import urllib.error
import urllib.request

SLOWLORIS_HEAD = b"POST /alerts HTTP/1.1\r\nHost: x\r\n"  # what the attacker sent first


def raise_open_files(wanted: int) -> int:
    """Raise this process' soft open-file limit towards `wanted` (within the hard limit); return it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class Slowloris:
    """Keeps `count` connections to 127.0.0.1:`port`, each sending an unfinished request head.

    Every connection sends `head` once connected, then `line` every `every` seconds, and
    never ends its head. A connection the server closes is opened again (at most
    `max_opens` in all), so evicting one only helps if real clients get their turn.
    """

    def __init__(
        self,
        port: int,
        count: int,
        *,
        head: bytes = SLOWLORIS_HEAD,
        line: bytes = b"X-a: b\r\n",
        every: float = 10.0,
        max_opens: int = 50_000,
        max_seconds: float = 300.0,
    ) -> None:
        self.address = ("127.0.0.1", port)
        self.count, self.head, self.line, self.every = count, head, line, every
        self.max_opens, self.max_seconds = max_opens, max_seconds
        self.opened = 0  # connections opened in all
        self.connected = 0  # connections that got as far as sending the head, now
        self.closed_by_server = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="slowloris", daemon=True)

    def start(self) -> Slowloris:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def __enter__(self) -> Slowloris:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def _run(self) -> None:
        selector = selectors.DefaultSelector()
        sockets: dict[socket.socket, bool] = {}  # socket -> its head was sent
        deadline = time.monotonic() + self.max_seconds
        next_line = time.monotonic() + self.every

        def drop(sock: socket.socket) -> None:
            if sockets.pop(sock, False):
                self.connected -= 1
            selector.unregister(sock)
            sock.close()

        try:
            while not self._stop.is_set() and time.monotonic() < deadline:
                for _ in range(min(200, self.count - len(sockets), self.max_opens - self.opened)):
                    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                    sock.setblocking(False)
                    if sock.connect_ex(self.address) not in (0, errno.EINPROGRESS):
                        sock.close()
                        break
                    selector.register(sock, selectors.EVENT_WRITE)
                    sockets[sock] = False
                    self.opened += 1
                for key, _ in selector.select(timeout=0.1):
                    sock = key.fileobj  # type: ignore[assignment]
                    if not sockets[sock]:  # the connect finished, or failed
                        try:
                            if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) != 0:
                                raise OSError
                            sock.send(self.head)
                        except OSError:
                            drop(sock)
                            continue
                        sockets[sock] = True
                        self.connected += 1
                        selector.modify(sock, selectors.EVENT_READ)
                        continue
                    try:
                        data = sock.recv(65536)
                    except OSError:
                        data = b""
                    if not data:  # the server closed it (an answer such as 408 is read, then EOF)
                        self.closed_by_server += 1
                        drop(sock)
                if time.monotonic() >= next_line:
                    next_line += self.every
                    for sock, sent in list(sockets.items()):
                        if sent:
                            try:
                                sock.send(self.line)
                            except OSError:
                                self.closed_by_server += 1
                                drop(sock)
        finally:
            for sock in list(sockets):
                drop(sock)
            selector.close()


def post_alerts(url: str, body: bytes, token: str, timeout: float) -> int:
    """POST a notification to a responder as Alertmanager would; return the status, 0 for none.

    The real client beside a flood: timed out, refused or reset all count as 0, not as errors.
    """
    request = urllib.request.Request(
        f"{url}/alerts", data=body, method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return 0
