"""The audit trail: one JSON line per decision, written and flushed as the decision is made.

Each line reaches the kernel at once (it survives a crash of the responder) and is
fsynced to disk before the event loop turns again; lines written in one turn share one
fsync, so a burst of notifications does not pay for one each.

Reading it back (`memwarden responder audit`) turns the lines into a table. The file is
rotated once it passes `max_bytes`, keeping one previous file, so a flood of rejected
requests cannot fill the disk.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from memwarden.policy import human_bytes

AUDIT_FILE = "audit.jsonl"
DEFAULT_MAX_BYTES = 64 * 1024 * 1024


def _timestamp(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class AuditLog:
    """Appends decisions as JSON lines: one write() each, fsynced in the same event-loop turn.

    Unbuffered on purpose: a line the disk refused (ENOSPC) must not linger in a buffer and
    land later, half or twice; a line cut short by a full disk is cut back off.
    """

    def __init__(self, path: str | Path, *, fsync: bool = True, max_bytes: int = DEFAULT_MAX_BYTES, clock=time.time):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fsync = fsync
        self._max_bytes = max_bytes
        self._clock = clock
        self._lock = threading.Lock()  # actions finish in worker threads as well as the loop
        self._fd: int | None = self._open()
        self._sync_scheduled = False
        # Why the last write failed (disk full, I/O error); None once a write succeeds again.
        # The engine claims no step while it is set: nothing may run that is not on record.
        self.failure: str | None = None

    def _open(self) -> int:
        return os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)

    def write(self, event: str, **fields: Any) -> dict[str, Any]:
        """Record one decision; fields that are None are left out."""
        record = {"time": _timestamp(self._clock()), "event": event}
        record.update((key, value) for key, value in fields.items() if value is not None)
        line = (json.dumps(record, sort_keys=False, default=str, ensure_ascii=False) + "\n").encode("utf-8", "replace")
        with self._lock:
            try:
                self._append(line)
            except OSError as error:
                self.failure = f"cannot write {self.path}: {error.strerror or error}"
                raise
            self.failure = None
        if self._fsync:
            self._schedule_sync()
        return record

    def _append(self, line: bytes) -> None:
        if self._fd is None:
            raise OSError(9, "the audit log is closed")
        size = os.fstat(self._fd).st_size
        try:
            written = os.write(self._fd, line)
            if written != len(line):
                raise OSError(28, "No space left on device (the line was cut short)")
        except OSError:
            try:
                os.ftruncate(self._fd, size)  # no half line for the next one to follow
            except OSError:
                pass
            raise
        if size + len(line) > self._max_bytes:
            self._rotate()

    def _schedule_sync(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.sync()  # no event loop (the CLI): sync now
            return
        if not self._sync_scheduled:
            self._sync_scheduled = True
            loop.call_soon(self.sync)

    def sync(self) -> None:
        """fsync what has been written."""
        with self._lock:
            self._sync_scheduled = False
            if self._fd is not None:
                try:
                    os.fsync(self._fd)
                except OSError as error:
                    self.failure = f"cannot sync {self.path}: {error.strerror or error}"
                    raise

    def _rotate(self) -> None:
        assert self._fd is not None
        os.fsync(self._fd)
        os.replace(self.path, self.path.with_name(self.path.name + ".1"))
        os.close(self._fd)
        self._fd = self._open()

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                try:
                    os.fsync(self._fd)
                except OSError:
                    pass  # a failing disk: what reached the kernel stays there
                os.close(self._fd)
                self._fd = None


def read_audit(path: str | Path, since: float | None = None) -> Iterator[dict[str, Any]]:
    """Yield the records of the audit file (and its rotated predecessor), oldest first."""
    path = Path(path)
    for candidate in (path.with_name(path.name + ".1"), path):
        try:
            handle = open(candidate, encoding="utf-8")
        except FileNotFoundError:
            continue
        with handle:
            for line in handle:
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut short by a crash
                if since is not None and _seconds(record.get("time")) < since:
                    continue
                yield record


def _seconds(text: Any) -> float:
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


COLUMNS = (
    ("time", "TIME"),
    ("event", "EVENT"),
    ("alertname", "ALERT"),
    ("status", "STATUS"),
    ("rule", "RULE"),
    ("action", "ACTION"),
    ("target", "TARGET"),
    ("result", "RESULT"),
    ("reclaimed_bytes", "RECLAIMED"),
    ("reason", "DETAIL"),
)


def _cell(record: dict[str, Any], key: str) -> str:
    if key == "reason":
        value = record.get("reason") or record.get("detail") or ""
    elif key == "time":
        value = str(record.get("time", ""))[:19].replace("T", " ")
    elif key == "reclaimed_bytes" and isinstance(record.get(key), int):
        value = human_bytes(record[key])
    else:
        value = record.get(key, "")
    text = str(value if value is not None else "").replace("\n", " ")
    return text if len(text) <= 60 else text[:57] + "..."


def format_table(records: Iterable[dict[str, Any]]) -> str:
    """Return the records as an aligned text table, one row per decision."""
    rows = [[title for _, title in COLUMNS]] + [[_cell(record, key) for key, _ in COLUMNS] for record in records]
    widths = [max(len(row[column]) for row in rows) for column in range(len(COLUMNS))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows)
