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
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from memwarden.policy import human_bytes

AUDIT_FILE = "audit.jsonl"
DEFAULT_MAX_BYTES = 64 * 1024 * 1024


def _timestamp(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class AuditLog:
    """Appends decisions as JSON lines: flushed at once, fsynced in the same event-loop turn."""

    def __init__(self, path: str | Path, *, fsync: bool = True, max_bytes: int = DEFAULT_MAX_BYTES, clock=time.time):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fsync = fsync
        self._max_bytes = max_bytes
        self._clock = clock
        self._lock = threading.Lock()  # actions finish in worker threads as well as the loop
        self._handle = open(self.path, "a", encoding="utf-8")
        self._sync_scheduled = False
        # Why the last write failed (disk full, I/O error); None once a write succeeds again.
        # The engine claims no step while it is set: nothing may run that is not on record.
        self.failure: str | None = None

    def write(self, event: str, **fields: Any) -> dict[str, Any]:
        """Record one decision; fields that are None are left out."""
        record = {"time": _timestamp(self._clock()), "event": event}
        record.update((key, value) for key, value in fields.items() if value is not None)
        line = json.dumps(record, sort_keys=False, default=str, ensure_ascii=False) + "\n"
        with self._lock:
            try:
                self._handle.write(line)
                self._handle.flush()
                if self._handle.tell() > self._max_bytes:
                    self._rotate()
            except OSError as error:
                self.failure = f"cannot write {self.path}: {error.strerror or error}"
                raise
            self.failure = None
        if self._fsync:
            self._schedule_sync()
        return record

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
            if not self._handle.closed:
                try:
                    os.fsync(self._handle.fileno())
                except OSError as error:
                    self.failure = f"cannot sync {self.path}: {error.strerror or error}"
                    raise

    def _rotate(self) -> None:
        os.fsync(self._handle.fileno())
        self._handle.close()
        os.replace(self.path, self.path.with_name(self.path.name + ".1"))
        self._handle = open(self.path, "a", encoding="utf-8")

    def close(self) -> None:
        with self._lock:
            if not self._handle.closed:
                os.fsync(self._handle.fileno())
                self._handle.close()


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
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows)
