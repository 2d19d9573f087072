"""Text outputs: BIND query log of resolver B, syslog lines, URL feeds, the open-resolver list."""
from __future__ import annotations

import csv
import time
import zlib
from pathlib import Path

from necoma.testbed.model import DnsTxn, FeedUrl, SyslogMsg

_QTYPES = {1: "A", 2: "NS", 5: "CNAME", 12: "PTR", 15: "MX", 16: "TXT", 28: "AAAA", 33: "SRV", 46: "RRSIG", 255: "ANY"}


def bind_line(tx: DnsTxn) -> str:
    """One BIND 9 querylog line (print-time, print-category, print-severity on)."""
    g = time.gmtime(tx.time)
    stamp = time.strftime("%d-%b-%Y %H:%M:%S", g) + f".{int(tx.time * 1000) % 1000:03d}"
    qtype = _QTYPES.get(tx.qtype, f"TYPE{tx.qtype}")
    handle = f"@0x7f3a{zlib.crc32(tx.client.encode()) & 0xFFFFFF:06x}0"  # stable per client, like a reused client object
    return (f"{stamp} queries: info: client {handle} {tx.client}#{tx.client_port} ({tx.qname}): "
            f"query: {tx.qname} IN {qtype} +E(0) ({tx.server})")


def write_querylog(path: Path, txns: list[DnsTxn]) -> int:
    lines = [bind_line(t) for t in sorted(txns, key=lambda t: t.time)]
    path.write_text("\n".join(lines) + ("\n" if lines else ""))
    return len(lines)


def write_syslog(path: Path, msgs: list[SyslogMsg]) -> int:
    ordered = sorted(msgs, key=lambda m: m.time)
    path.write_text("".join(m.line + "\n" for m in ordered))
    return len(ordered)


def write_feeds(directory: Path, feeds: list[FeedUrl]) -> tuple[int, int]:
    """urls.csv (PhishTank's dump layout) and spam.txt (one URL per line, as spam feeds publish)."""
    phish = sorted((f for f in feeds if f.kind == "phishing"), key=lambda f: (f.time, f.url))
    with open(directory / "urls.csv", "w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["phish_id", "url", "submission_time", "target"])
        for n, f in enumerate(phish):
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(f.time))
            w.writerow([9_000_000 + n, f.url, stamp, f.target or "Other"])
    spam = sorted((f for f in feeds if f.kind == "spam"), key=lambda f: (f.time, f.url))
    (directory / "spam.txt").write_text("".join(f.url + "\n" for f in spam))
    return len(phish), len(spam)


def write_resolvers(path: Path, resolvers: list[str], day: str) -> int:
    body = "".join(r + "\n" for r in sorted(set(resolvers), key=lambda a: tuple(int(x) for x in a.split("."))))
    path.write_text(f"# open DNS resolvers answering recursive queries from anywhere, scanned {day}\n" + body)
    return len(set(resolvers))


_MONTHS = {m: i for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
                                       "Dec"), 1)}


def read_syslog(path: Path, year: int) -> list[tuple[float, bytes]]:
    """(send time, message) for each line of a scenario's syslog.log; the time is read back from the line.

    RFC 5424 lines carry a full timestamp; RFC 3164 lines carry no year, which
    the scenario's day supplies. A line without a readable time keeps the
    previous line's time, so order is preserved.
    """
    import calendar
    import re

    out: list[tuple[float, bytes]] = []
    last = 0.0
    iso = re.compile(r"^<\d+>1 (\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d+))?Z")
    bsd = re.compile(r"^<\d+>([A-Z][a-z]{2}) ([ \d]\d) (\d\d):(\d\d):(\d\d) ")
    for line in path.read_text().splitlines():
        if not line:
            continue
        if m := iso.match(line):
            y, mo, d, h, mi, s = (int(x) for x in m.groups()[:6])
            last = calendar.timegm((y, mo, d, h, mi, s)) + (int(m.group(7)) / 10 ** len(m.group(7)) if m.group(7) else 0)
        elif (m := bsd.match(line)) and m.group(1) in _MONTHS:
            last = float(calendar.timegm((year, _MONTHS[m.group(1)], int(m.group(2)), int(m.group(3)),
                                          int(m.group(4)), int(m.group(5)))))
        out.append((last, line.encode()))
    return out
