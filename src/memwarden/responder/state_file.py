"""Open the responder's SQLite state file: create or migrate its schema, and refuse a damaged one by name.

What the file holds is state.py's and state_holds.py's; this module is about the file
itself — WAL and sync settings, the schema and its version, the damage (state_check.py)
that must stop a start rather than surface later as a 503 on every notification — and
StateTables, the one-transaction-per-call base both build on.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .state_check import damage, is_damage

SCHEMA_VERSION = 3  # 2: steps.attempts; 3: command_groups
_SCHEMA = """
CREATE TABLE IF NOT EXISTS episodes (
    key TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    alertname TEXT NOT NULL,
    labels TEXT NOT NULL,
    first_seen REAL NOT NULL,
    last_firing REAL NOT NULL,
    resolved_at REAL,
    resolved_by TEXT
);
CREATE INDEX IF NOT EXISTS episodes_open ON episodes (resolved_at, last_firing);
CREATE TABLE IF NOT EXISTS steps (
    episode TEXT NOT NULL,
    rule TEXT NOT NULL,
    step INTEGER NOT NULL,
    kind TEXT NOT NULL,
    target TEXT NOT NULL,
    at REAL NOT NULL,
    result TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (episode, rule, step)
);
CREATE TABLE IF NOT EXISTS runs (key TEXT NOT NULL, at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS runs_by_key ON runs (key, at);
CREATE TABLE IF NOT EXISTS undo (
    kind TEXT NOT NULL,
    target TEXT NOT NULL,
    restore TEXT NOT NULL,
    since REAL NOT NULL,
    deadline REAL NOT NULL,
    PRIMARY KEY (kind, target)
);
CREATE TABLE IF NOT EXISTS command_groups (
    pgid INTEGER PRIMARY KEY,
    started INTEGER NOT NULL,
    argv TEXT NOT NULL,
    episode TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS holds (
    kind TEXT NOT NULL,
    target TEXT NOT NULL,
    episode TEXT NOT NULL,
    PRIMARY KEY (kind, target, episode)
);
"""


class StateError(Exception):
    """The state file cannot be opened; `str()` names it and says what to do."""


def open_state(path: Path, *, read_only: bool = False) -> sqlite3.Connection:
    """Open (or create) the state file at path; `read_only` for a state a full disk will not let us write."""
    existed = path.exists()
    if existed and path.stat().st_size == 0 and not _has_content(Path(f"{path}-wal")):
        raise StateError(
            f"the state file {path} cannot be used: it is empty (0 bytes), so what it held (cooldowns, caps, "
            f"episodes, what is frozen or throttled) is lost. {_AFTER_DAMAGE}"
        )
    try:
        db = _connect(path, read_only)
    except (OSError, sqlite3.Error) as error:
        raise StateError(f"cannot open the state file {path}: {_why(error)}") from None
    try:
        problems = damage(db) if existed else []
        if problems:
            raise StateError(f"the state file {path} cannot be used: {'; '.join(problems)}. {_AFTER_DAMAGE}")
        if not read_only:
            _create_schema(db)
    except sqlite3.DatabaseError as error:
        db.close()
        if not is_damage(error):
            raise StateError(f"cannot open the state file {path}: {error}") from None
        raise StateError(f"the state file {path} cannot be used: {error}. {_AFTER_DAMAGE}") from None
    except StateError:
        db.close()
        raise
    return db


def _connect(path: Path, read_only: bool) -> sqlite3.Connection:
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
        return sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None, check_same_thread=False)
    try:
        db.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return db
    except sqlite3.OperationalError:
        # mode=ro still needs a -shm file; on a full disk read the file as it is
        db.close()
        return sqlite3.connect(f"file:{path}?immutable=1", uri=True, isolation_level=None, check_same_thread=False)


def _create_schema(db: sqlite3.Connection) -> None:
    db.execute("PRAGMA journal_mode=WAL")
    # WAL with synchronous=NORMAL: a committed claim survives a crash of the responder
    # (so a restarted responder never runs a step twice); only a power cut may lose the
    # last commits, and after a reboot the processes and alert episodes are new anyway.
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("PRAGMA busy_timeout=5000")
    db.executescript(_SCHEMA)
    columns = {row[1] for row in db.execute("PRAGMA table_info(steps)")}
    if "attempts" not in columns:  # a state file of schema 1
        db.execute("ALTER TABLE steps ADD COLUMN attempts INTEGER NOT NULL DEFAULT 1")
    if db.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")  # not rewritten: a full disk refuses it


_AFTER_DAMAGE = (
    "If it is damaged, move it aside: the responder then starts afresh (cooldowns, caps and episodes are forgotten; what it "
    "holds frozen or throttled must be released by hand: look for stopped processes with `ps -eo pid,stat,cmd`) "
    "or restore it from a backup"
)


def _has_content(path: Path) -> bool:
    try:
        return path.stat().st_size > 0
    except OSError:
        return False


def _why(error: BaseException) -> str:
    return getattr(error, "strerror", None) or str(error)


class StateTables:
    """Base of the state's parts: one open state file, one short transaction per call."""

    _db: sqlite3.Connection

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")
