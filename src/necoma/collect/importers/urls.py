"""URL feeds (phishing, spam, malware): one URL per line, or CSV with a header.

CSV is recognised by a header line naming a `url` column (or the one given
with `column`); PhishTank's `phish_id,url,submission_time,target` dump maps
submission_time to first_seen and target to target.
"""
from __future__ import annotations

import csv
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit

from necoma.collect.importers._text import BATCH, open_text
from necoma.collect.importing import ImportFailed
from necoma.collect.rejects import Rejects
from necoma.lake.writer import LakeWriter

_TIME_COLUMNS = ("submission_time", "first_seen", "date_added", "dateadded", "timestamp")
_TARGET_COLUMNS = ("target", "brand", "threat")


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        t = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def normalize_url(raw: str) -> tuple[str, str] | None:
    """(url, lower-case host) or None when it names no host."""
    url = raw.strip().strip('"')
    if not url or any(c.isspace() for c in url):
        return None
    if "://" not in url:
        url = "http://" + url
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return None
    if not host or ("." not in host and ":" not in host):
        return None  # a bare word ("localhost", "not") is no feed entry
    return url, host.rstrip(".").lower()


def import_file(path: Path, writer: LakeWriter, rejects: Rejects, *, url_kind: str = "phishing",
                feed: str | None = None, column: str | None = None, **_) -> list[str]:
    feed = feed or path.name
    now = datetime.now(timezone.utc)
    with open_text(path) as fh:
        first = fh.readline()
        header = next(csv.reader([first]), [])
        names = [h.strip().lower() for h in header]
        wanted = (column or "url").lower()
        is_csv = wanted in names
        if column and not is_csv:
            raise ImportFailed(f"{path}: no column {column!r} in the header {header}")
        rows: list[dict] = []

        def add(raw: str, where: str, first_seen=None, target=None) -> None:
            parsed = normalize_url(raw)
            if parsed is None:
                rejects.add("not a URL with a host", f"{where}: {raw[:80]!r}")
                return
            seen = first_seen or now
            rows.append({"url": parsed[0], "host": parsed[1], "kind": url_kind, "feed": feed,
                         "target": target, "first_seen": seen, "last_seen": seen})
            if len(rows) >= BATCH:
                writer.write("urls", rows)
                rows.clear()

        if is_csv:
            idx = names.index(wanted)
            t_idx = next((names.index(c) for c in _TIME_COLUMNS if c in names), None)
            g_idx = next((names.index(c) for c in _TARGET_COLUMNS if c in names), None)
            for n, rec in enumerate(csv.reader(fh), 2):
                if not rec:
                    continue
                if len(rec) != len(names):
                    rejects.add(f"CSV row has {len(rec)} fields, header has {len(names)}", f"row {n}")
                    continue
                add(rec[idx], f"row {n}",
                    _parse_time(rec[t_idx]) if t_idx is not None else None,
                    (rec[g_idx] or None) if g_idx is not None else None)
        else:
            for n, line in enumerate([first, *fh], 1):
                text = line.strip()
                if text and not text.startswith("#"):
                    add(text, f"line {n}")
        writer.write("urls", rows)
    return []
