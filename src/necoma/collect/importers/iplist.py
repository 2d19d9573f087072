"""IP lists (open resolvers, allow/deny lists): one address or CIDR per line.

Comments start with '#' or ';' (Spamhaus DROP style) anywhere on the line.
A network with host bits set (10.0.0.1/24) is stored as its network
(10.0.0.0/24) and counted in the notes, because that is what such lists mean.
"""
from __future__ import annotations

import ipaddress
import re
from datetime import datetime, timezone
from pathlib import Path

from necoma.collect.importers._text import BATCH, numbered_lines
from necoma.collect.rejects import Rejects
from necoma.lake.writer import LakeWriter

_COMMENT = re.compile(r"[#;].*")


def import_file(path: Path, writer: LakeWriter, rejects: Rejects, *, list_name: str, **_) -> list[str]:
    now = datetime.now(timezone.utc)
    rows: list[dict] = []
    host_bits = 0
    for lineno, line in numbered_lines(path):
        text = _COMMENT.sub("", line).strip()
        if not text:
            continue
        token = text.split()[0]
        try:
            net = ipaddress.ip_network(token, strict=False)
        except ValueError:
            rejects.add("not an IP address or CIDR", f"line {lineno}: {token[:60]!r}")
            continue
        if "/" in token and str(net) != token and net.with_prefixlen != token:
            host_bits += 1
        rows.append({"network": net.with_prefixlen, "list_name": list_name, "first_seen": now, "last_seen": now})
        if len(rows) >= BATCH:
            writer.write("iplists", rows)
            rows = []
    writer.write("iplists", rows)
    return [f"{host_bits} networks had host bits set and were stored as their network"] if host_bits else []
