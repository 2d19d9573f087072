"""DNS server query logs into the `dns` table: BIND querylog and Unbound log-queries / log-replies.

Recognised line shapes (the timestamp may also be a syslog prefix):
  BIND 9.x   03-Dec-2026 10:00:00.123 queries: info: client @0x7f.. 192.0.2.1#53012 (a.example): query: a.example IN A +E(0)K (198.51.100.1)
  Unbound    [1764756000] unbound[123:0] info: 192.0.2.1 a.example. A IN
  Unbound    [1764756000] unbound[123:0] info: 192.0.2.1 a.example. A IN NXDOMAIN 0.000123 0 45   (log-replies)
Query lines become rows with is_response=false; Unbound reply lines become
rows with is_response=true, rcode and response_size. Any other line is
counted as rejected ("not a DNS query or reply line"), never silently dropped.
"""
from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path

import dns.rcode
import dns.rdataclass
import dns.rdatatype

from necoma.collect.importers._text import BATCH, numbered_lines
from necoma.collect.rejects import Rejects
from necoma.lake.writer import LakeWriter

_BIND = re.compile(
    r"client (?:@0x[0-9a-fA-F]+ )?(?P<client>[0-9A-Fa-f:.]+)#(?P<port>\d+)(?: \([^)]*\))?:"
    r"(?: view [^:]+:)? query: (?P<qname>\S+) (?P<qclass>\S+) (?P<qtype>\S+) (?P<flags>\S+)"
    r"(?: \((?P<server>[^)]+)\))?"
)
_UNBOUND = re.compile(
    r"unbound(?:\[\d+:\d+\])?:? (?:\[\d+:\d+\] )?info: (?P<client>[0-9A-Fa-f:.]+) (?P<qname>\S+) "
    r"(?P<qtype>\S+) (?P<qclass>\S+)(?: (?P<rcode>[A-Z]+) (?P<elapsed>[\d.]+) (?P<cached>\d) (?P<size>\d+))?\s*$"
)
_T_BIND = re.compile(r"^(\d{2}-[A-Z][a-z]{2}-\d{4} \d{2}:\d{2}:\d{2}(?:\.\d+)?)")
_T_ISO = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?)")
_T_EPOCH = re.compile(r"^\[(\d{9,11})\]")
_T_SYSLOG = re.compile(r"^([A-Z][a-z]{2} [ \d]\d \d{2}:\d{2}:\d{2})")


def _timestamp(line: str, year: int) -> datetime | None:
    if m := _T_EPOCH.match(line):
        return datetime.fromtimestamp(int(m.group(1)), timezone.utc)
    if m := _T_BIND.match(line):
        fmt = "%d-%b-%Y %H:%M:%S.%f" if "." in m.group(1) else "%d-%b-%Y %H:%M:%S"
        return datetime.strptime(m.group(1), fmt).replace(tzinfo=timezone.utc)
    if m := _T_ISO.match(line):
        t = datetime.fromisoformat(m.group(1).replace("Z", "+00:00"))
        return t if t.tzinfo else t.replace(tzinfo=timezone.utc)
    if m := _T_SYSLOG.match(line):
        text = re.sub(r"\s+", " ", m.group(1))
        return datetime.strptime(f"{year} {text}", "%Y %b %d %H:%M:%S").replace(tzinfo=timezone.utc)
    return None


def _code(parse, text: str) -> int:
    # dnspython knows every mnemonic and the TYPE123/CLASS123 generic forms.
    return int(parse(text))


def parse_line(line: str, year: int) -> dict | str:
    """A `dns` row for a query/reply line, or the reason it is not one."""
    m = _BIND.search(line)
    kind = "bind"
    if m is None:
        m = _UNBOUND.search(line)
        kind = "unbound"
    if m is None:
        return "not a DNS query or reply line"
    try:
        t = _timestamp(line, year)
    except ValueError:
        t = None
    if t is None:
        return "no timestamp"
    g = m.groupdict()
    try:
        qtype = _code(dns.rdatatype.from_text, g["qtype"])
        qclass = _code(dns.rdataclass.from_text, g["qclass"])
        rcode = _code(dns.rcode.from_text, g["rcode"]) if g.get("rcode") else None
    except (dns.exception.DNSException, ValueError):
        return "unknown query type, class or rcode"
    row = {
        "time": t, "client_ip": g["client"], "server_ip": g.get("server"),
        "client_port": int(g["port"]) if g.get("port") else None, "transport": None,
        "qname": g["qname"].rstrip(".").lower(), "qtype": qtype, "qclass": qclass,
        "is_response": rcode is not None, "rcode": rcode, "source": kind,
    }
    if kind == "bind" and "T" in (g.get("flags") or ""):
        row["transport"] = "tcp"
    if g.get("size"):
        row["response_size"] = int(g["size"])
    return row


def import_file(path: Path, writer: LakeWriter, rejects: Rejects, *, year: int | None = None, **_) -> list[str]:
    year = year or datetime.fromtimestamp(path.stat().st_mtime, timezone.utc).year
    rows: list[dict] = []
    for lineno, line in numbered_lines(path):
        if not line.strip():
            continue
        parsed = parse_line(line, year)
        if isinstance(parsed, str):
            rejects.add(parsed, f"line {lineno}")
            continue
        rows.append(parsed)
        if len(rows) >= BATCH:
            writer.write("dns", rows)
            rows = []
    writer.write("dns", rows)
    return []
