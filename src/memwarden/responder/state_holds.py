"""What the responder holds frozen or throttled, for which episodes, and how to put each back.

A target stays frozen or throttled while an episode holds it; the first hold's restore
wins, and when the last hold goes the undo is handed back to be carried out. The process
groups a `command` action leaves running are kept here too, so a restart can find them.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from .state_file import StateTables


@dataclass(frozen=True)
class Undo:
    kind: str
    target: str
    restore: dict[str, Any]
    since: float
    deadline: float


class HoldTables(StateTables):
    """The undo, holds and command_groups tables of the state file."""

    def hold(self, kind: str, target: str, episode: str, restore: dict[str, Any], deadline: float, now: float) -> None:
        """Record that `episode` keeps `target` frozen or throttled; the first hold's restore wins."""
        with self._transaction() as db:
            db.execute(
                "INSERT INTO undo (kind, target, restore, since, deadline) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (kind, target) DO UPDATE SET deadline = MAX(undo.deadline, excluded.deadline)",
                (kind, target, json.dumps(restore, sort_keys=True), now, deadline),
            )
            db.execute("INSERT OR IGNORE INTO holds (kind, target, episode) VALUES (?, ?, ?)", (kind, target, episode))

    def undo_for(self, kind: str, target: str) -> Undo | None:
        row = self._db.execute(
            "SELECT kind, target, restore, since, deadline FROM undo WHERE kind = ? AND target = ?", (kind, target)
        ).fetchone()
        return _undo(row) if row else None

    def release_episode(self, episode: str) -> list[Undo]:
        """Drop an episode's holds; return the undos no other episode holds any more (removed)."""
        with self._transaction() as db:
            held = db.execute("SELECT kind, target FROM holds WHERE episode = ?", (episode,)).fetchall()
            db.execute("DELETE FROM holds WHERE episode = ?", (episode,))
            freed: list[Undo] = []
            for kind, target in held:
                others = db.execute("SELECT COUNT(*) FROM holds WHERE kind = ? AND target = ?", (kind, target)).fetchone()[0]
                if others == 0:
                    freed.extend(self._take_undo(db, kind, target))
            return freed

    def freed_by(self, episode: str, released: frozenset[str] = frozenset()) -> list[Undo]:
        """The undos that releasing `episode` would free, read without writing (for a full disk).

        `released`: episodes already let go of in memory, whose holds the state still lists.
        """
        rows = self._db.execute("SELECT kind, target FROM holds WHERE episode = ?", (episode,)).fetchall()
        freed: list[Undo] = []
        for kind, target in rows:
            others = {holder for holder in self.holders(kind, target) if holder != episode} - released
            undo = self.undo_for(kind, target)
            if not others and undo is not None:
                freed.append(undo)
        return freed

    def release_target(self, kind: str, target: str) -> Undo | None:
        """Drop every hold on a target; return its undo (removed), if there was one."""
        with self._transaction() as db:
            db.execute("DELETE FROM holds WHERE kind = ? AND target = ?", (kind, target))
            taken = self._take_undo(db, kind, target)
        return taken[0] if taken else None

    def _take_undo(self, db: sqlite3.Connection, kind: str, target: str) -> list[Undo]:
        row = db.execute(
            "SELECT kind, target, restore, since, deadline FROM undo WHERE kind = ? AND target = ?", (kind, target)
        ).fetchone()
        db.execute("DELETE FROM undo WHERE kind = ? AND target = ?", (kind, target))
        return [_undo(row)] if row else []

    def undos(self) -> list[Undo]:
        rows = self._db.execute("SELECT kind, target, restore, since, deadline FROM undo ORDER BY since").fetchall()
        return [_undo(row) for row in rows]

    def holders(self, kind: str, target: str) -> list[str]:
        rows = self._db.execute("SELECT episode FROM holds WHERE kind = ? AND target = ?", (kind, target)).fetchall()
        return [row[0] for row in rows]

    # command process groups ------------------------------------------------------------------

    def add_command_group(self, pgid: int, started: int, argv: list[str], episode: str) -> None:
        """Note a `command` action's process group (its session), started at `started` clock ticks since boot."""
        with self._transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO command_groups (pgid, started, argv, episode) VALUES (?, ?, ?, ?)",
                (pgid, started, json.dumps(argv), episode),
            )

    def drop_command_group(self, pgid: int) -> None:
        with self._transaction() as db:
            db.execute("DELETE FROM command_groups WHERE pgid = ?", (pgid,))

    def command_groups(self) -> list[tuple[int, int, list[str], str]]:
        """Every process group a `command` left running: (pgid, started, argv, episode)."""
        rows = self._db.execute("SELECT pgid, started, argv, episode FROM command_groups ORDER BY pgid").fetchall()
        return [(pgid, started, json.loads(argv), episode) for pgid, started, argv, episode in rows]


def _undo(row: tuple[Any, ...]) -> Undo:
    kind, target, restore, since, deadline = row
    return Undo(kind, target, json.loads(restore), since, deadline)
