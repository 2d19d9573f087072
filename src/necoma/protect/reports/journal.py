"""The sent-journal: what each report/notice point sent, to whom, and what it refused, in SQLite.

It makes sending idempotent (one message per action and recipient, and per
incident and recipient), gives the rate limit its count, and tells `installed`
which actions have messages out that are still within their TTL.
"""
from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sent (
    point TEXT NOT NULL, action_id TEXT NOT NULL, recipient TEXT NOT NULL, incident_id TEXT,
    addresses TEXT NOT NULL, message_id TEXT, went_to TEXT, sent_at TEXT NOT NULL, expires_at TEXT NOT NULL,
    withdrawn_at TEXT, PRIMARY KEY (point, action_id, recipient));
CREATE INDEX IF NOT EXISTS sent_by_recipient ON sent (point, recipient, sent_at);
CREATE TABLE IF NOT EXISTS refused (
    point TEXT NOT NULL, action_id TEXT NOT NULL, subject TEXT NOT NULL, reason TEXT NOT NULL, at TEXT NOT NULL);
"""


def _iso(t: datetime) -> str:
    return t.astimezone(timezone.utc).isoformat()


class Journal:
    def __init__(self, path: Path, point: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.point = point
        self._db = sqlite3.connect(path, isolation_level=None, timeout=30, check_same_thread=False)  # autocommit
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def sent_for(self, action_id: str, recipient: str) -> bool:
        return self._one("SELECT 1 FROM sent WHERE point=? AND action_id=? AND recipient=?", action_id, recipient)

    def incident_reported(self, incident_id: str | None, recipient: str, now: datetime) -> bool:
        """A report on this incident already went to this recipient and is still live (dedup across actions)."""
        return incident_id is not None and self._one(
            "SELECT 1 FROM sent WHERE point=? AND incident_id=? AND recipient=? AND expires_at>? AND withdrawn_at IS NULL",
            incident_id, recipient, _iso(now))

    def count_since(self, recipient: str, since: datetime) -> int:
        # de-duplicated entries sent nothing, so they do not count against the limit
        return self._db.execute("SELECT count(*) FROM sent WHERE point=? AND recipient=? AND sent_at>? "
                                "AND went_to NOT LIKE 'duplicate%'",
                                (self.point, recipient, _iso(since))).fetchone()[0]

    def record_sent(self, action_id: str, recipient: str, incident_id: str | None, addresses: list[str],
                    message_id: str | None, went_to: str, now: datetime, ttl: timedelta) -> None:
        self._db.execute("INSERT OR IGNORE INTO sent VALUES (?,?,?,?,?,?,?,?,?,NULL)",
                         (self.point, action_id, recipient, incident_id, " ".join(addresses), message_id, went_to,
                          _iso(now), _iso(now + ttl)))

    def record_refused(self, action_id: str, subject: str, reason: str, now: datetime) -> None:
        self._db.execute("INSERT INTO refused VALUES (?,?,?,?,?)", (self.point, action_id, subject, reason, _iso(now)))

    def refusals(self, action_id: str) -> list[tuple[str, str]]:
        return self._db.execute("SELECT subject, reason FROM refused WHERE point=? AND action_id=? ORDER BY rowid",
                                (self.point, action_id)).fetchall()

    def withdraw(self, action_id: str, now: datetime) -> None:
        """Nothing can be unsent; the journal notes that the action no longer stands."""
        self._db.execute("UPDATE sent SET withdrawn_at=? WHERE point=? AND action_id=? AND withdrawn_at IS NULL",
                         (_iso(now), self.point, action_id))

    def live(self, now: datetime) -> set[str]:
        return {r[0] for r in self._db.execute(
            "SELECT DISTINCT action_id FROM sent WHERE point=? AND expires_at>? AND withdrawn_at IS NULL",
            (self.point, _iso(now)))}

    def messages(self, action_id: str) -> list[tuple[str, str, str]]:
        """(recipient, addresses, where it went) of each message the action sent."""
        return self._db.execute("SELECT recipient, addresses, went_to FROM sent WHERE point=? AND action_id=? "
                                "ORDER BY recipient", (self.point, action_id)).fetchall()

    def _one(self, sql: str, *args) -> bool:
        return self._db.execute(sql, (self.point, *args)).fetchone() is not None
