"""What the responder remembers across restarts, in one SQLite file.

- episodes: each firing of an alert (fingerprint + startsAt), its labels and whether it resolved;
- steps: which action of which rule ran for an episode, so a re-sent notification runs nothing twice;
- runs: when an action kind last ran on a target (cooldowns and hourly caps);
- undo and holds: what was frozen or throttled, by which episodes, and how to put it back
  (state_holds.py), and the process groups `command` actions left running.

The file itself (schema, version, WAL, damage) is state_file.py's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .state_file import open_state
from .state_holds import HoldTables

STATE_FILE = "state.sqlite"
DRY_RUN_STATE_FILE = "state.dry-run.sqlite"
# Runs older than this cannot matter to any cooldown or hourly cap we allow.
RUN_HISTORY_SECONDS = 7 * 86400
EPISODE_HISTORY_SECONDS = 30 * 86400


@dataclass(frozen=True)
class Step:
    step: int
    kind: str
    target: str
    at: float
    result: str
    attempts: int = 1


@dataclass(frozen=True)
class Episode:
    key: str
    fingerprint: str
    alertname: str
    labels: dict[str, str]
    first_seen: float
    last_firing: float
    resolved_at: float | None


class StateStore(HoldTables):
    """The responder's memory. Every method is one short transaction (holds and undos: HoldTables)."""

    def __init__(self, path: str | Path, *, read_only: bool = False):
        """Open (or create) the state; `read_only` reads a state a full disk will not let us open for writing."""
        self.path = Path(path)
        self._db = open_state(self.path, read_only=read_only)

    def close(self) -> None:
        self._db.close()

    # episodes ---------------------------------------------------------------------------

    def record_firing(self, key: str, fingerprint: str, labels: dict[str, str], now: float) -> Episode:
        """Note a firing notification of an episode; return the episode as stored."""
        with self._transaction() as db:
            db.execute(
                "INSERT INTO episodes (key, fingerprint, alertname, labels, first_seen, last_firing) "
                "VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (key) DO UPDATE SET last_firing = excluded.last_firing, labels = excluded.labels, "
                # An episode we only presumed over (Alertmanager no longer listed it, e.g. after
                # its restart) fires on when it is notified again; a real resolve is final.
                "resolved_at = NULL, resolved_by = NULL "
                "WHERE episodes.resolved_at IS NULL OR episodes.resolved_by = 'presumed'",
                (key, fingerprint, labels.get("alertname", ""), json.dumps(labels, sort_keys=True), now, now),
            )
        episode = self.episode(key)
        assert episode is not None
        return episode

    def record_resolved(self, key: str, fingerprint: str, labels: dict[str, str], now: float, *, presumed: bool = False) -> bool:
        """Mark an episode resolved (`presumed`: not by Alertmanager's word); False when it already was."""
        with self._transaction() as db:
            row = db.execute("SELECT resolved_at FROM episodes WHERE key = ?", (key,)).fetchone()
            if row is not None and row[0] is not None:
                return False
            db.execute(
                "INSERT INTO episodes (key, fingerprint, alertname, labels, first_seen, last_firing, resolved_at, resolved_by) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (key) DO UPDATE SET resolved_at = excluded.resolved_at, resolved_by = excluded.resolved_by",
                (
                    key,
                    fingerprint,
                    labels.get("alertname", ""),
                    json.dumps(labels, sort_keys=True),
                    now,
                    now,
                    now,
                    "presumed" if presumed else "alertmanager",
                ),
            )
        return True

    def episode(self, key: str) -> Episode | None:
        row = self._db.execute(
            "SELECT key, fingerprint, alertname, labels, first_seen, last_firing, resolved_at FROM episodes WHERE key = ?",
            (key,),
        ).fetchone()
        return _episode(row) if row else None

    def open_episodes(self, fired_since: float) -> list[Episode]:
        """Return unresolved episodes whose last firing notification is not older than `fired_since`."""
        rows = self._db.execute(
            "SELECT key, fingerprint, alertname, labels, first_seen, last_firing, resolved_at FROM episodes "
            "WHERE resolved_at IS NULL AND last_firing >= ? ORDER BY first_seen",
            (fired_since,),
        ).fetchall()
        return [_episode(row) for row in rows]

    # steps ------------------------------------------------------------------------------

    def steps(self, episode: str, rule: str) -> list[Step]:
        rows = self._db.execute(
            "SELECT step, kind, target, at, result, attempts FROM steps WHERE episode = ? AND rule = ? ORDER BY step",
            (episode, rule),
        ).fetchall()
        return [Step(*row) for row in rows]

    def claim_step(self, episode: str, rule: str, step: int, kind: str, target: str, now: float, *, run_key: str | None) -> bool:
        """Record that a step starts (and, with run_key, a run for cooldowns); False if it already has."""
        with self._transaction() as db:
            cursor = db.execute(
                "INSERT OR IGNORE INTO steps (episode, rule, step, kind, target, at, result) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (episode, rule, step, kind, target, now, "running"),
            )
            if cursor.rowcount == 0:
                return False
            if run_key is not None:
                db.execute("INSERT INTO runs (key, at) VALUES (?, ?)", (run_key, now))
        return True

    def interrupt_running(self) -> list[tuple[str, str, int, str, str]]:
        """Mark every step still `running` as `interrupted`; return them as (episode, rule, step, kind, target).

        Called when a responder opens the state: no action of an earlier process can still be
        running for it, so a `running` step is one a stop, crash or OOM kill cut off.
        """
        with self._transaction() as db:
            rows = db.execute(
                "SELECT episode, rule, step, kind, target FROM steps WHERE result = 'running' ORDER BY at"
            ).fetchall()
            db.execute("UPDATE steps SET result = 'interrupted' WHERE result = 'running'")
        return [tuple(row) for row in rows]

    def retry_step(self, episode: str, rule: str, step: int, now: float, *, run_key: str | None, after: str) -> bool:
        """Start a step again that ended with `after` (no_target); False if it has moved on meanwhile."""
        with self._transaction() as db:
            cursor = db.execute(
                "UPDATE steps SET result = 'running', at = ?, attempts = attempts + 1 "
                "WHERE episode = ? AND rule = ? AND step = ? AND result = ?",
                (now, episode, rule, step, after),
            )
            if cursor.rowcount == 0:
                return False
            if run_key is not None:
                db.execute("INSERT INTO runs (key, at) VALUES (?, ?)", (run_key, now))
        return True

    def finish_step(self, episode: str, rule: str, step: int, result: str, *, forget_run: str | None = None) -> None:
        """Record how a step ended; forget_run: the run key of a step that did nothing, so it
        counts against no cooldown or hourly cap."""
        with self._transaction() as db:
            if forget_run is not None:
                db.execute(
                    "DELETE FROM runs WHERE key = ? AND at = (SELECT at FROM steps WHERE episode = ? AND rule = ? AND step = ?)",
                    (forget_run, episode, rule, step),
                )
            db.execute("UPDATE steps SET result = ? WHERE episode = ? AND rule = ? AND step = ?", (result, episode, rule, step))

    # cooldowns and caps ---------------------------------------------------------------------

    def last_run(self, key: str) -> float | None:
        row = self._db.execute("SELECT MAX(at) FROM runs WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def runs_since(self, key: str, since: float) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM runs WHERE key = ? AND at >= ?", (key, since)).fetchone()[0])

    # housekeeping ----------------------------------------------------------------------------

    def prune(self, now: float) -> None:
        """Forget runs and finished episodes too old to matter."""
        with self._transaction() as db:
            db.execute("DELETE FROM runs WHERE at < ?", (now - RUN_HISTORY_SECONDS,))
            old = now - EPISODE_HISTORY_SECONDS
            db.execute(
                "DELETE FROM steps WHERE episode IN (SELECT key FROM episodes WHERE last_firing < ? "
                "AND key NOT IN (SELECT episode FROM holds))",
                (old,),
            )
            db.execute("DELETE FROM episodes WHERE last_firing < ? AND key NOT IN (SELECT episode FROM holds)", (old,))


def _episode(row: tuple[Any, ...]) -> Episode:
    key, fingerprint, alertname, labels, first_seen, last_firing, resolved_at = row
    return Episode(key, fingerprint, alertname, json.loads(labels), first_seen, last_firing, resolved_at)
