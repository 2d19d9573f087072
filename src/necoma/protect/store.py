"""The actions store: every action with its state, and the append-only audit log of its transitions.

SQLite through the standard library's sqlite3 (one small file, no server; the
store is local state, not shared data like the exchange). The audit table is
append-only in two ways: this module has no code that updates or deletes its
rows, and triggers make SQLite itself abort any UPDATE or DELETE on it, so
even a hand-written statement cannot rewrite history.

State changes go through `transition`, which checks them against
`TRANSITIONS` and writes the new state and the audit row in one transaction.
"""
from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from necoma.protect.model import Action

# from-state -> states it may move to
TRANSITIONS: dict[str, frozenset[str]] = {
    "proposed": frozenset({"approved", "rejected"}),
    "approved": frozenset({"applied", "failed", "withdrawn"}),
    "applied": frozenset({"expired", "withdrawn", "failed"}),
    "rejected": frozenset(),
    "expired": frozenset(),
    "withdrawn": frozenset(),
    "failed": frozenset(),
}
ACTIVE = ("proposed", "approved", "applied")
# ended by time or by a failure, not by a person's "no": the same action may be proposed again (a new one)
ENDED = ("expired", "withdrawn", "failed")

SCHEMA = """
CREATE TABLE IF NOT EXISTS actions (
    id TEXT PRIMARY KEY,
    point TEXT NOT NULL,
    state TEXT NOT NULL,
    body TEXT NOT NULL,          -- the Action as JSON
    policy TEXT,                 -- the policy that matched at proposal
    preview TEXT,                -- blast-radius preview as JSON
    note TEXT NOT NULL DEFAULT '',  -- why it stands where it stands (e.g. why auto-apply was refused)
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS actions_state ON actions(state);
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    action_id TEXT NOT NULL,
    at TEXT NOT NULL,
    who TEXT NOT NULL,
    from_state TEXT,             -- NULL for the creation row
    to_state TEXT NOT NULL,
    why TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_action ON audit(action_id);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
"""


class TransitionError(Exception):
    """A state change the lifecycle does not allow, or an unknown action."""


@dataclass
class Record:
    action: Action
    policy: str | None
    preview: dict[str, Any] | None
    note: str


@dataclass(frozen=True)
class AuditRow:
    seq: int
    action_id: str
    at: datetime
    who: str
    from_state: str | None
    to_state: str
    why: str


def _now() -> datetime:
    return datetime.now(timezone.utc)


class ActionStore:
    def __init__(self, path: Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.db = sqlite3.connect(path, timeout=30, isolation_level=None)  # explicit transactions below
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        self.db.close()

    # -- reading
    def _record(self, row) -> Record:
        body, policy, preview, note = row
        return Record(Action.model_validate_json(body), policy, json.loads(preview) if preview else None, note)

    def get(self, action_id: str) -> Record:
        """By id or unique id prefix."""
        rows = self.db.execute("SELECT body, policy, preview, note FROM actions WHERE id = ? OR id LIKE ? ORDER BY id",
                               (action_id, action_id.replace("%", "") + "%")).fetchall()
        exact = [r for r in rows if json.loads(r[0])["id"] == action_id]
        if exact:
            rows = exact
        if not rows:
            raise TransitionError(f"no action {action_id!r}")
        if len(rows) > 1:
            raise TransitionError(f"{action_id!r} names {len(rows)} actions; give more of the id")
        return self._record(rows[0])

    def lookup(self, action_id: str) -> Record | None:
        """By exact id; None when there is none."""
        row = self.db.execute("SELECT body, policy, preview, note FROM actions WHERE id = ?", (action_id,)).fetchone()
        return self._record(row) if row else None

    def find(self, states: tuple[str, ...] | None = None, point: str | None = None,
             incident: str | None = None) -> list[Record]:
        sql, args = "SELECT body, policy, preview, note FROM actions WHERE 1=1", []
        if states:
            sql += f" AND state IN ({','.join('?' * len(states))})"
            args += list(states)
        if point:
            sql += " AND point = ?"
            args.append(point)
        recs = [self._record(r) for r in self.db.execute(sql + " ORDER BY updated_at, id", args)]
        return [r for r in recs if incident is None or r.action.incident_id == incident]

    def count_applied(self, point: str) -> int:
        return self.db.execute("SELECT count(*) FROM actions WHERE point = ? AND state = 'applied'", (point,)).fetchone()[0]

    def audit(self, action_id: str | None = None) -> list[AuditRow]:
        sql = "SELECT seq, action_id, at, who, from_state, to_state, why FROM audit"
        rows = self.db.execute(sql + (" WHERE action_id = ?" if action_id else "") + " ORDER BY seq",
                               (action_id,) if action_id else ()).fetchall()
        return [AuditRow(r[0], r[1], datetime.fromisoformat(r[2]), *r[3:]) for r in rows]

    # -- writing
    def _log(self, action_id: str, who: str, frm: str | None, to: str, why: str) -> None:
        self.db.execute("INSERT INTO audit(action_id, at, who, from_state, to_state, why) VALUES (?,?,?,?,?,?)",
                        (action_id, _now().isoformat(), who, frm, to, why))

    def add(self, action: Action, who: str, why: str, policy: str | None = None,
            preview: dict | None = None, note: str = "") -> bool:
        """Store a new proposal; False (and nothing written) when an action with its id exists already."""
        action = action.with_id()
        if action.state != "proposed":
            raise TransitionError("new actions start as proposed")
        with self._tx():
            cur = self.db.execute(
                "INSERT OR IGNORE INTO actions(id, point, state, body, policy, preview, note, updated_at) VALUES (?,?,?,?,?,?,?,?)",
                (action.id, action.point, action.state, action.model_dump_json(), policy,
                 json.dumps(preview) if preview is not None else None, note, _now().isoformat()))
            if cur.rowcount == 0:
                return False
            self._log(action.id, who, None, "proposed", why)
        return True

    def transition(self, action_id: str, to: str, who: str, why: str, **changes: Any) -> Action:
        """Move an action to state `to` (checked against TRANSITIONS), with field changes, audited."""
        with self._tx():
            rec = self.get(action_id)
            frm = rec.action.state
            if to not in TRANSITIONS[frm]:
                raise TransitionError(f"{rec.action.id} is {frm}; it cannot become {to}")
            action = rec.action.model_copy(update={"state": to, **changes})
            # the note says why the action stands where it stands: after a move, that is the move's reason
            self.db.execute("UPDATE actions SET state = ?, body = ?, note = ?, updated_at = ? WHERE id = ?",
                            (to, action.model_dump_json(), why, _now().isoformat(), action.id))
            self._log(action.id, who, frm, to, why)
        return action

    def remark(self, action_id: str, who: str, why: str, note: str | None = None) -> None:
        """An audited event that changes no state (a refused approval, a reconcile repair)."""
        with self._tx():
            rec = self.get(action_id)
            if note is not None:
                self.db.execute("UPDATE actions SET note = ? WHERE id = ?", (note, rec.action.id))
            self._log(rec.action.id, who, rec.action.state, rec.action.state, why)

    def set_preview(self, action_id: str, preview: dict | None) -> None:
        self.db.execute("UPDATE actions SET preview = ? WHERE id = ?", (json.dumps(preview), action_id))

    class _Tx:
        def __init__(self, db: sqlite3.Connection) -> None:
            self.db = db

        def __enter__(self) -> None:
            if not self.db.in_transaction:
                self.db.execute("BEGIN IMMEDIATE")
                self.owner = True
            else:
                self.owner = False

        def __exit__(self, exc_type, *_) -> None:
            if self.owner:
                self.db.execute("ROLLBACK" if exc_type else "COMMIT")

    def _tx(self) -> "_Tx":
        return self._Tx(self.db)

    def __iter__(self) -> Iterator[Record]:
        return iter(self.find())
