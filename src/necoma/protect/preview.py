"""Blast-radius preview: what a rule would have matched in the lake's recent legitimate-looking traffic.

Before anyone approves, we run the rule as SQL over the last `preview_hours`
of the lake (ending at the newest data, or now if older): `flows` for
traffic rules (flows, bytes scaled by sampling, distinct destination hosts,
distinct sources), `dns` for domain blocks (queries, distinct clients).
"Legitimate-looking" = everything except the incident's own attack traffic:
rows inside the incident's window that involve one of its subject addresses
(or, for DNS, one of its bots/clients). Isolation is the exception: it cuts
everything the host does, so only its traffic with the incident's other
subjects (its C&C, say) counts as the attack; the rest is what its user loses.

Flow records carry per-flow aggregates, so the packet-length component is
tested on the flow's mean packet size and the fragment component on its
fragment count: the preview is an estimate, and says so in `basis`.

Prefix tests are written by hand because DuckDB's `inet` extension must be
downloaded (no network here): IPv4 as integer ranges in SQL (fast), IPv6 by a
small Python function DuckDB calls only for rows holding a ':'.
"""
from __future__ import annotations

import ipaddress
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

import duckdb

from necoma.config import ProtectSettings
from necoma.protect.model import Action, Match

TRAFFIC_KINDS = frozenset({"drop", "rate_limit", "blackhole", "isolate"})
TCP_BITS = {"F": 1, "S": 2, "R": 4, "P": 8, "A": 16, "U": 32, "E": 64, "C": 128}

_IP4 = """CREATE OR REPLACE TEMP MACRO necoma_ip4(ip) AS CASE WHEN ip LIKE '%.%.%.%' AND ip NOT LIKE '%:%' THEN
 TRY_CAST(split_part(ip, '.', 1) AS BIGINT) * 16777216 + TRY_CAST(split_part(ip, '.', 2) AS BIGINT) * 65536
 + TRY_CAST(split_part(ip, '.', 3) AS BIGINT) * 256 + TRY_CAST(split_part(ip, '.', 4) AS BIGINT) END"""


@lru_cache(maxsize=4096)
def _net6(text: str) -> ipaddress.IPv6Network:
    return ipaddress.IPv6Network(text)


def _in6(ip: str, net: str) -> bool:
    try:
        return ipaddress.IPv6Address(ip) in _net6(net)
    except ValueError:
        return False


def _connect(lake: Path) -> duckdb.DuckDBPyConnection:
    from necoma.lake import connect

    con = connect(lake)
    con.execute(_IP4)
    con.create_function("necoma_in6", _in6, ["VARCHAR", "VARCHAR"], "BOOLEAN", side_effects=False)
    return con


def in_prefixes(col: str, prefixes: tuple[str, ...] | list[str]) -> str:
    """SQL: the address column lies in one of the prefixes (literal, validated CIDR text)."""
    parts = []
    for p in prefixes:
        net = ipaddress.ip_network(p)
        if net.version == 4:
            lo, hi = int(net.network_address), int(net.broadcast_address)
            parts.append(f"necoma_ip4({col}) BETWEEN {lo} AND {hi}")
        else:
            parts.append(f"({col} LIKE '%:%' AND necoma_in6({col}, '{net}'))")
    return "(" + " OR ".join(parts) + ")" if parts else "TRUE"


def _ports(col: str, ranges) -> str:
    return "(" + " OR ".join(f"{col} BETWEEN {r.lo} AND {r.hi}" for r in ranges) + ")"


def tcp_flags_sql(spec: str) -> str:
    """'S/SA': SYN set, ACK clear (bits before / must be set, the rest of the mask clear); 'S': SYN set."""
    want, _, mask = spec.upper().partition("/")
    bits = lambda s: sum(TCP_BITS[c] for c in s if c in TCP_BITS)  # noqa: E731
    w, m = bits(want), bits(mask or want)
    return f"(tcp_flags & {m | w}) = {w}"


def flow_where(action: Action) -> str:
    """SQL over `flows` for what the action would match."""
    m: Match = action.match
    if action.kind == "blackhole":
        return in_prefixes("dst_ip", m.dst_prefixes)
    if action.kind == "isolate":
        hosts = (*m.src_prefixes, *m.dst_prefixes)
        allow = action.params.get("allow") or []
        cond = f"({in_prefixes('src_ip', hosts)} OR {in_prefixes('dst_ip', hosts)})"
        if allow:
            cond += f" AND NOT ({in_prefixes('src_ip', allow)} OR {in_prefixes('dst_ip', allow)})"
        return cond
    conds = []
    if m.dst_prefixes:
        conds.append(in_prefixes("dst_ip", m.dst_prefixes))
    if m.src_prefixes:
        conds.append(in_prefixes("src_ip", m.src_prefixes))
    if m.protocol is not None:
        conds.append(f"protocol = {int(m.protocol)}")
    if m.src_ports:
        conds.append(_ports("src_port", m.src_ports))
    if m.dst_ports:
        conds.append(_ports("dst_port", m.dst_ports))
    if m.packet_length:
        lo, hi = m.packet_length
        conds.append(f"(bytes::DOUBLE / greatest(packets, 1)) BETWEEN {int(lo)} AND {int(hi)}")
    if m.fragment == "not-a-fragment":
        conds.append("coalesce(fragments, 0) = 0")
    elif m.fragment in ("is-fragment", "first-fragment", "last-fragment"):
        conds.append("coalesce(fragments, 0) > 0")
    if m.tcp_flags:
        conds.append(tcp_flags_sql(m.tcp_flags))
    return " AND ".join(conds) or "TRUE"


def _quote(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _newest(con, table: str, col: str) -> datetime | None:
    t = con.execute(f"SELECT max({col}) FROM {table}").fetchone()[0]
    return None if t is None else t.astimezone(timezone.utc)


def exclusion(window: tuple[datetime, datetime] | None, addresses: list[str]) -> dict[str, Any] | None:
    """What the preview leaves out as the attack itself: the incident window x its subject addresses."""
    addrs = []
    for a in addresses:
        try:
            addrs.append(str(ipaddress.ip_address(a)))
        except ValueError:
            continue
    if window is None or not addrs:
        return None
    return {"window": [window[0].isoformat(), window[1].isoformat()], "addresses": sorted(set(addrs))}


def _exclude_sql(ex: dict | None, time_col: str, cols: tuple[str, ...], both: bool = False) -> str:
    """Leave out the attack: rows in the window involving a subject (`both`: between two subjects)."""
    if not ex:
        return "TRUE"
    s, e = ex["window"]
    addrs = ", ".join(_quote(a) for a in ex["addresses"])
    involved = (" AND " if both else " OR ").join(f"{c} IN ({addrs})" for c in cols)
    return f"NOT ({time_col} >= {_quote(s)}::TIMESTAMPTZ AND {time_col} < {_quote(e)}::TIMESTAMPTZ AND ({involved}))"


def preview(action: Action, lake: Path, cfg: ProtectSettings, excluded: dict | None = None,
            now: datetime | None = None) -> dict[str, Any]:
    """The preview as a dict: kind of basis, range, counts, and `over` (the thresholds exceeded, in words)."""
    out: dict[str, Any] = {"applies": action.kind in TRAFFIC_KINDS or action.kind == "block_domain", "over": [],
                           "excluded": excluded}
    if not out["applies"]:
        out["basis"] = f"{action.kind} blocks no traffic"
        return out
    now = now or datetime.now(timezone.utc)
    con = _connect(lake)
    try:
        if action.kind == "block_domain":
            table, col = "dns", "time"
        else:
            table, col = "flows", "start_time"
        end = min(now, _newest(con, table, col) or now)
        start = end - timedelta(hours=cfg.preview_hours)
        out["range"] = [start.isoformat(), end.isoformat()]
        rng = f"{col} >= {_quote(start.isoformat())}::TIMESTAMPTZ AND {col} <= {_quote(end.isoformat())}::TIMESTAMPTZ"
        if action.kind == "block_domain":
            names = " OR ".join(f"qname = {_quote(d)} OR qname LIKE {_quote('%.' + d)}" for d in action.match.domains)
            sql = (f"SELECT count(*), count(DISTINCT client_ip) FROM dns WHERE {rng} AND NOT coalesce(is_response, false) "
                   f"AND ({names or 'FALSE'}) AND {_exclude_sql(excluded, 'time', ('client_ip',))}")
            q, c = con.execute(sql).fetchone()
            out.update(basis="dns queries", queries=int(q), clients=int(c))
            limits = (("queries", cfg.preview_max_queries), ("clients", cfg.preview_max_clients))
        else:
            sql = (f"SELECT count(*), coalesce(sum(bytes * greatest(sampling_rate, 1)), 0), count(DISTINCT dst_ip), "
                   f"count(DISTINCT src_ip) FROM flows WHERE {rng} AND ({flow_where(action)}) "
                   f"AND {_exclude_sql(excluded, 'start_time', ('src_ip', 'dst_ip'), both=action.kind == 'isolate')}")
            f, b, h, s = con.execute(sql).fetchone()
            out.update(basis="flows (packet length and fragments estimated per flow)", flows=int(f), bytes=int(b),
                       hosts=int(h), sources=int(s))
            limits = (("flows", cfg.preview_max_flows), ("bytes", cfg.preview_max_bytes), ("hosts", cfg.preview_max_hosts))
    finally:
        con.close()
    out["over"] = [f"{name} {out[name]} > {limit}" for name, limit in limits if out[name] > limit]
    return out


def summary(p: dict[str, Any] | None) -> str:
    """One line for tables."""
    if not p:
        return "-"
    if not p.get("applies"):
        return "n/a"
    if "queries" in p:
        text = f"{p['queries']} queries, {p['clients']} clients"
    else:
        text = f"{p['flows']} flows, {p['bytes']:,} B, {p['hosts']} hosts, {p['sources']} sources"
    return text + (" [OVER: " + "; ".join(p["over"]) + "]" if p.get("over") else "")
