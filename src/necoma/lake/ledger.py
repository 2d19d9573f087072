"""Import ledger: which files were imported, by content hash, and what they wrote.

Re-importing the same content is a no-op, so the same file never duplicates
rows. With `force`, the new files are written first and the old ones removed
after, so a failed re-import never loses what was stored.
"""
from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path


def file_digest(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


@dataclass
class LedgerEntry:
    digest: str
    kind: str
    path: str
    imported_at: float
    rows: dict[str, int]
    rejected: int
    files: list[str]


class ImportLedger:
    def __init__(self, db_path: Path) -> None:
        db_path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(db_path)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS imports (digest TEXT, kind TEXT, path TEXT, imported_at REAL,"
            " rows TEXT, rejected INTEGER, files TEXT, PRIMARY KEY (digest, kind))"
        )
        self._db.commit()

    def get(self, digest: str, kind: str) -> LedgerEntry | None:
        row = self._db.execute(
            "SELECT digest, kind, path, imported_at, rows, rejected, files FROM imports WHERE digest=? AND kind=?",
            (digest, kind),
        ).fetchone()
        if row is None:
            return None
        return LedgerEntry(row[0], row[1], row[2], row[3], json.loads(row[4]), row[5], json.loads(row[6]))

    def record(self, entry: LedgerEntry) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO imports VALUES (?,?,?,?,?,?,?)",
            (entry.digest, entry.kind, entry.path, entry.imported_at or time.time(),
             json.dumps(entry.rows), entry.rejected, json.dumps(entry.files)),
        )
        self._db.commit()

    def close(self) -> None:
        self._db.close()
