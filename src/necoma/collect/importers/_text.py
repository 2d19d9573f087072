"""Helpers shared by the line-oriented importers (query logs, URL feeds, IP lists)."""
from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path

BATCH = 50_000


def open_text(path: Path):
    """Open a text file, gzipped or not; undecodable bytes are replaced, never fatal."""
    with open(path, "rb") as fh:
        gz = fh.read(2) == b"\x1f\x8b"
    if gz:
        return gzip.open(path, "rt", encoding="utf-8", errors="replace", newline="")
    return open(path, "r", encoding="utf-8", errors="replace", newline="")


def numbered_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, line without its newline) for every line, gzip read errors turning into a stop."""
    with open_text(path) as fh:
        for n, line in enumerate(fh, 1):
            yield n, line.rstrip("\r\n")
