"""Find damage in a state file when it is opened, and name it, rather than fail later.

A page of garbage, a table dropped by hand, a zero-length file or a row that no longer
parses would otherwise surface as a 503 on every notification, a traceback at start, or —
worst — a responder that starts afresh and silently forgets the freezes it holds.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

# Each table and the columns the code reads; a table of schema 1 lacks steps.attempts
# (added on open), and command_groups came with schema 3 (created on open).
TABLES: dict[str, tuple[str, ...]] = {
    "episodes": ("key", "fingerprint", "alertname", "labels", "first_seen", "last_firing", "resolved_at", "resolved_by"),
    "steps": ("episode", "rule", "step", "kind", "target", "at", "result"),
    "runs": ("key", "at"),
    "undo": ("kind", "target", "restore", "since", "deadline"),
    "holds": ("kind", "target", "episode"),
}
LATER_TABLES = ("command_groups",)
UNDO_METHODS = {"freeze": ("cgroup2", "cgroup1", "sigstop"), "throttle": ("cgroup2", "cgroup1", "systemd")}
MAX_REPORTED = 5


def damage(db: sqlite3.Connection) -> list[str]:
    """Return what is wrong with an opened memwarden state file; [] when it is sound."""
    problems = _integrity(db)
    if problems:
        return problems  # rows of a damaged file are not worth reading
    problems += _tables(db)
    if not problems:
        problems += _undo_rows(db) + _json_rows(db, "episodes", "key", "labels", dict)
    return problems[:MAX_REPORTED] + ([f"and {len(problems) - MAX_REPORTED} more"] if len(problems) > MAX_REPORTED else [])


def is_damage(error: sqlite3.Error) -> bool:
    """Whether SQLite says the file is broken (rather than the disk full, read-only or failing)."""
    name = getattr(error, "sqlite_errorname", "")
    return name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")) or not isinstance(error, sqlite3.OperationalError)


def _integrity(db: sqlite3.Connection) -> list[str]:
    try:
        rows = [row[0] for row in db.execute("PRAGMA quick_check(10)")]
    except sqlite3.DatabaseError as error:
        if not is_damage(error):
            raise  # the disk, not the file: full, read-only, failing
        return [f"the integrity check cannot run: {error}"]
    return [] if rows == ["ok"] else [f"integrity check: {row}" for row in rows]


def _tables(db: sqlite3.Connection) -> list[str]:
    problems = []
    for table, needed in TABLES.items():
        columns = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
        if not columns:
            problems.append(f"table {table} is missing")
        elif missing := [column for column in needed if column not in columns]:
            problems.append(f"table {table} lacks the column(s) {', '.join(missing)}")
    return problems


def _undo_rows(db: sqlite3.Connection) -> list[str]:
    problems = []
    for kind, target, restore in db.execute("SELECT kind, target, restore FROM undo"):
        where = f"undo row {kind} {target!r}"
        if kind not in UNDO_METHODS:
            problems.append(f"{where}: unknown kind")
            continue
        record = _json(restore)
        if not isinstance(record, dict):
            problems.append(f"{where}: its restore record is not a JSON object")
        elif record.get("method") not in UNDO_METHODS[kind]:
            problems.append(f"{where}: unknown method {str(record.get('method'))[:40]!r}")
        elif not _complete(record):
            problems.append(f"{where}: its restore record lacks what the {record['method']} undo needs")
    return problems


def _complete(record: dict[str, Any]) -> bool:
    method = record["method"]
    if method == "sigstop":
        processes = record.get("processes")
        return isinstance(processes, list) and all(
            isinstance(item, list) and len(item) == 2 and all(isinstance(n, int) for n in item) for item in processes
        )
    if "previous" in record or "where" in record:  # a throttle
        return all(isinstance(record.get(key), str) for key in ("where", "previous"))
    return isinstance(record.get("path"), str)


def _json_rows(db: sqlite3.Connection, table: str, key: str, column: str, kind: type) -> list[str]:
    return [
        f"{table} row {str(name)[:60]!r}: {column} is not a JSON {kind.__name__}"
        for name, text in db.execute(f"SELECT {key}, {column} FROM {table}")
        if not isinstance(_json(text), kind)
    ]


def _json(text: Any) -> Any:
    try:
        return json.loads(text)
    except (TypeError, ValueError, RecursionError):
        return None
