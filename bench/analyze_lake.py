"""A realistic one-day lake of N flow rows for the analysis benchmark, generated fast and reproducibly.

Written with necoma's own `LakeWriter` (defaults: zstd, files of 250k rows,
row groups of 256k, `dt=YYYYMMDD/hr=HH` partitions), in time order as a
collector writes, so the engines read exactly what a real lake holds.

Background (seeded numpy, vectorized; per row):
- flows: 60,000 internal clients (Zipf s=0.8) talking to 100,000 external
  servers (Zipf s=1.1); web TCP both directions (flags with ACK), DNS to 4
  internal resolvers, NTP, QUIC, a little SNMP/SSDP/ICMP and rare fragments;
  lognormal packets and packet sizes; a diurnal curve (trough 03:00 UTC,
  peak 15:00, ratio about 1:4); two NetFlow v9 exporters, unsampled.
- packets: sFlow samples (1 in 1024) of the same traffic mix, 5 % of the flow rows.
- dns: a resolver's query/response log, 10 % of the flow rows: names from the
  shared top-sites list with Zipf popularity, A/AAAA/MX/TXT, 3 % NXDOMAIN on
  one-off typos, 1 % SERVFAIL, and the usual wpad/isatap search-suffix failures.

Attacks (fixed size, whatever N; each detector has real work and real findings):
NTP amplification (10:00), DNS amplification with fragments (13:00), SSDP
reflection (16:00), a TLS SYN scan of 5,000 addresses (03:00), a UDP fragment
flood (20:05–20:10), a new heavy host pair with ~15 % of the hour's bytes
(18:00), a GameOver ZeuS botnet (DGA NXDOMAINs, its C&C, flows to it), and a
spam-bot group failing MX lookups on dead domains.
"""
from __future__ import annotations

import datetime as dt
import json
import math
import shutil
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

from necoma.analyze.dga import gameover_zeus
from necoma.lake.writer import LakeWriter
from necoma.schemas import DNS, DNS_ANSWER, TS

VERSION = 1  # bump when the generated data changes, so cached lakes are rebuilt
DAY = dt.datetime(2026, 3, 2, tzinfo=dt.timezone.utc)
CHUNK = 250_000  # rows per generated chunk = LakeWriter's default file size
TOP_SITES = Path(__file__).resolve().parents[2] / "shared" / "data" / "domains" / "top-50k-2025.csv"
US_PER_HOUR = 3_600_000_000
N_CLIENTS, N_SERVERS, N_NTP = 60_000, 100_000, 200
RESOLVERS = [f"10.255.0.{i}" for i in (1, 2, 3, 4)]
SUFFIX_FAILURES = np.array(["wpad.corp.lan", "isatap.corp.lan", "_ldap._tcp.corp.lan", "wpad.home.arpa"], object)

# background flow kinds: probability, protocol, direction (0 client->server, 1 back), server pool,
# server ports with weights, median packets, mean IP bytes per packet, TCP flags
KINDS = [
    (0.50, 6, 0, "ext", ((443, 0.7), (80, 0.2), (22, 0.03), (25, 0.03), (993, 0.02), (8080, 0.02)), 12, 110, 0x1B),
    (0.26, 6, 1, "ext", ((443, 0.7), (80, 0.2), (22, 0.03), (25, 0.03), (993, 0.02), (8080, 0.02)), 16, 1100, 0x1B),
    (0.08, 17, 0, "dns", ((53, 1.0),), 1, 72, 0),
    (0.08, 17, 1, "dns", ((53, 1.0),), 1, 160, 0),
    (0.01, 17, 0, "ntp", ((123, 1.0),), 1, 76, 0),
    (0.01, 17, 1, "ntp", ((123, 1.0),), 1, 76, 0),
    (0.05, 17, 1, "ext", ((443, 1.0),), 20, 1200, 0),  # QUIC downloads
    (0.005, 17, 0, "ext", ((161, 0.5), (1900, 0.5)), 1, 120, 0),
    (0.005, 1, 0, "ext", ((0, 1.0),), 2, 84, 0),
]


def _ipv4(a: np.ndarray) -> pa.Array:
    """uint32 addresses as dotted-quad text."""
    parts = [((a >> s) & 255).astype(str) for s in (24, 16, 8, 0)]
    return pa.array(np.char.add(np.char.add(np.char.add(np.char.add(parts[0], "."), parts[1]), "."),
                                np.char.add(np.char.add(parts[2], "."), parts[3])).tolist(), pa.string())


class Population:
    """Address pools, popularity and names, fixed by the seed."""

    def __init__(self, seed: int = 1) -> None:
        rng = np.random.default_rng(seed)
        i = np.arange(N_CLIENTS, dtype=np.uint32)
        clients = (10 << 24) | ((i // 250) << 8) | (i % 250 + 1)  # 10.0.X.1-250: 240 client /24s
        firsts = np.array([23, 31, 45, 52, 64, 91, 104, 142, 151, 185, 198, 203, 212], dtype=np.uint32)
        servers = (rng.choice(firsts, N_SERVERS) << 24) | rng.integers(0, 1 << 24, N_SERVERS, dtype=np.uint32)
        ntp = (rng.choice(firsts, N_NTP) << 24) | rng.integers(0, 1 << 24, N_NTP, dtype=np.uint32)
        resolvers = np.array([(10 << 24) | (255 << 16) | k for k in (1, 2, 3, 4)], dtype=np.uint32)
        self.addr = np.concatenate([clients, servers, ntp, resolvers])
        self.text = _ipv4(self.addr)  # pool of address strings; rows take() from it
        self.base = {"cli": 0, "ext": N_CLIENTS, "ntp": N_CLIENTS + N_SERVERS, "dns": N_CLIENTS + N_SERVERS + N_NTP}
        self.size = {"cli": N_CLIENTS, "ext": N_SERVERS, "ntp": N_NTP, "dns": 4}
        self.cdf = {k: self._zipf_cdf(self.size[k], s) for k, s in (("cli", 0.8), ("ext", 1.1), ("ntp", 1.0), ("dns", 0.3))}
        self.asn = rng.integers(1000, 64000, len(self.addr), dtype=np.uint32)
        self.asn[:N_CLIENTS] = 64500
        self.names_np = np.array(_site_names(rng), object)
        self.name_cdf = self._zipf_cdf(len(self.names_np), 1.0)

    @staticmethod
    def _zipf_cdf(n: int, s: float) -> np.ndarray:
        w = 1.0 / np.arange(1, n + 1) ** s
        return np.cumsum(w) / w.sum()

    def pick(self, rng: np.random.Generator, pool: str, n: int) -> np.ndarray:
        """Global indices into `addr`/`text` of n Zipf-popular members of `pool`."""
        k = np.searchsorted(self.cdf[pool], rng.random(n))
        # popularity rank is not address order: a fixed shuffle per pool
        return self.base[pool] + _rank_perm(pool, self.size[pool])[np.minimum(k, self.size[pool] - 1)]


_PERMS: dict[str, np.ndarray] = {}


def _rank_perm(pool: str, n: int) -> np.ndarray:
    if pool not in _PERMS:
        _PERMS[pool] = np.random.default_rng(sum(map(ord, pool)) * 7919 + n).permutation(n)
    return _PERMS[pool]


def _site_names(rng: np.random.Generator) -> list[str]:
    if TOP_SITES.exists():
        base = [ln.split(",", 1)[1].strip() for ln in TOP_SITES.read_text().splitlines() if "," in ln]
    else:  # plausible names when the shared list is absent
        base = [f"site{i}.{('com', 'net', 'org', 'jp', 'de')[i % 5]}" for i in range(50_000)]
    prefixes = np.array(["", "www.", "api.", "cdn.", "mail.", "static.", "m.", "login."])
    pick = rng.choice(prefixes, len(base))
    return [p + b for p, b in zip(pick, base)]


def _times(rng, n: int, t0_us: int, t1_us: int) -> np.ndarray:
    return np.sort(rng.integers(t0_us, t1_us, n, dtype=np.int64))


def _ts(us: np.ndarray) -> pa.Array:
    return pa.array(us, pa.int64()).view(TS)


def traffic_chunk(pop: Population, rng, n: int, t0_us: int, t1_us: int) -> dict[str, np.ndarray]:
    """n background flows in [t0, t1): the columns as numpy arrays (addresses as pool indices)."""
    probs = np.array([k[0] for k in KINDS])
    kind = np.searchsorted(np.cumsum(probs / probs.sum()), rng.random(n))
    cli = pop.pick(rng, "cli", n)
    srv = np.empty(n, np.int64)
    sport = np.empty(n, np.int64)
    proto = np.empty(n, np.uint8)
    back = np.empty(n, bool)
    pkts = np.empty(n, np.int64)
    size = np.empty(n, np.float64)
    flags = np.empty(n, np.uint8)
    for k, (_, pr, direction, pool, ports, med, mean, fl) in enumerate(KINDS):
        m = kind == k
        c = int(m.sum())
        if not c:
            continue
        srv[m] = pop.pick(rng, pool, c)
        pv, pw = zip(*ports)
        sport[m] = rng.choice(np.array(pv), c, p=np.array(pw) / sum(pw))
        proto[m], back[m], flags[m] = pr, bool(direction), fl
        pkts[m] = np.maximum(1, np.round(rng.lognormal(math.log(med), 1.0 if med > 1 else 0.3, c)))
        size[m] = np.clip(rng.normal(mean, mean * 0.15, c), 40, 1500)
    eph = rng.integers(32768, 61000, n)
    start = _times(rng, n, t0_us, t1_us)
    frags = np.where((proto == 17) & (rng.random(n) < 0.001), pkts, 0)  # rare: VPN, big EDNS answers
    return {
        "t": start, "dur": (rng.exponential(8e6, n) * (pkts > 1)).astype(np.int64),
        "src": np.where(back, srv, cli), "dst": np.where(back, cli, srv),
        "sport": np.where(back, sport, eph), "dport": np.where(back, eph, sport),
        "proto": proto, "flags": flags, "pkts": pkts, "bytes": (pkts * size).astype(np.int64), "frags": frags,
    }


def flows_table(pop: Population, c: dict[str, np.ndarray], exporter: np.ndarray | None = None) -> pa.Table:
    n = len(c["t"])
    exporters = pa.array(["192.0.2.1", "192.0.2.2"])
    exp_idx = exporter if exporter is not None else (c["src"] % 2)
    return pa.table({
        "start_time": _ts(c["t"]), "end_time": _ts(c["t"] + c["dur"]),
        "exporter": exporters.take(pa.array(exp_idx)), "observation_domain": pa.array(np.zeros(n, np.uint32)),
        "src_ip": pop.text.take(pa.array(c["src"])), "dst_ip": pop.text.take(pa.array(c["dst"])),
        "src_port": pa.array(c["sport"].astype(np.uint16)), "dst_port": pa.array(c["dport"].astype(np.uint16)),
        "protocol": pa.array(c["proto"]), "tcp_flags": pa.array(c["flags"]), "tos": pa.array(np.zeros(n, np.uint8)),
        "packets": pa.array(c["pkts"].astype(np.uint64)), "bytes": pa.array(c["bytes"].astype(np.uint64)),
        "sampling_rate": pa.array(np.ones(n, np.uint32)),
        "input_if": pa.array((1 + c["dst"] % 4).astype(np.uint32)), "output_if": pa.array((1 + c["src"] % 4).astype(np.uint32)),
        "src_as": pa.array(pop.asn[c["src"]]), "dst_as": pa.array(pop.asn[c["dst"]]),
        "fragments": pa.array(c["frags"].astype(np.uint64)), "source": pa.array(np.full(n, "netflow9")),
    })


def packets_table(pop: Population, c: dict[str, np.ndarray]) -> pa.Table:
    """sFlow samples (1 in 1024) of a traffic chunk: one row per sampled packet."""
    n = len(c["t"])
    length = np.clip(c["bytes"] // np.maximum(c["pkts"], 1), 40, 1500)
    return pa.table({
        "time": _ts(c["t"]), "exporter": pa.array(np.full(n, "192.0.2.10")), "sampling_rate": pa.array(np.full(n, 1024, np.uint32)),
        "src_ip": pop.text.take(pa.array(c["src"])), "dst_ip": pop.text.take(pa.array(c["dst"])),
        "src_port": pa.array(c["sport"].astype(np.uint16)), "dst_port": pa.array(c["dport"].astype(np.uint16)),
        "protocol": pa.array(c["proto"]), "ip_version": pa.array(np.full(n, 4, np.uint8)),
        "ip_length": pa.array(length.astype(np.uint16)), "ttl": pa.array(np.full(n, 57, np.uint8)),
        "ip_id": pa.array((c["t"] % 65536).astype(np.uint32)), "fragment_offset": pa.array(np.zeros(n, np.uint16)),
        "more_fragments": pa.array(np.zeros(n, bool)), "tcp_flags": pa.array(c["flags"]),
        "source": pa.array(np.full(n, "sflow")),
    })


def dns_table(pop: Population, rng, n: int, t0_us: int, t1_us: int) -> pa.Table:
    """n resolver log rows in [t0, t1): n/2 lookups, each a query and its response."""
    k = n // 2
    t = _times(rng, k, t0_us, t1_us)
    client = pop.pick(rng, "cli", k)
    server = pop.pick(rng, "dns", k)
    qname = pop.names_np[np.minimum(np.searchsorted(pop.name_cdf, rng.random(k)), len(pop.names_np) - 1)]
    qtype = rng.choice(np.array([1, 28, 15, 16], np.uint16), k, p=[0.7, 0.25, 0.03, 0.02])
    u = rng.random(k)
    rcode = np.where(u < 0.03, 3, np.where(u < 0.04, 2, 0)).astype(np.uint8)
    typos = rcode == 3  # one-off typos (failed by one host: pruned by the failure graph)
    qname[typos] = np.char.add(np.char.add("x", rng.integers(0, 1 << 40, int(typos.sum())).astype(str)), ".com")
    suffix = rng.random(k) < 0.004  # search-suffix failures: many hosts, few names, one registered domain
    qname[suffix] = rng.choice(SUFFIX_FAILURES, int(suffix.sum()))
    rcode[suffix] = 3
    qname = pa.array(qname, pa.string())
    tid = rng.integers(0, 65536, k).astype(np.uint16)
    cport = rng.integers(32768, 61000, k).astype(np.uint16)
    answered = (rcode == 0) & ((qtype == 1) | (qtype == 28))
    data = pop.text.take(pa.array(pop.pick(rng, "ext", k)))
    # rows 0..k-1 queries, k..2k-1 responses; then interleave by time
    order = np.argsort(np.concatenate([t, t + 20_000]), kind="stable")
    both = lambda a: pa.concat_arrays([a, a]).take(pa.array(order))  # noqa: E731
    is_resp = np.concatenate([np.zeros(k, bool), np.ones(k, bool)])
    offsets = np.concatenate([[0], np.cumsum(np.concatenate([np.zeros(k, np.int32), answered.astype(np.int32)]))]).astype(np.int32)
    ans_idx = np.flatnonzero(answered)
    answers_struct = pa.StructArray.from_arrays(
        [qname.take(pa.array(ans_idx)), pa.array(qtype[ans_idx]), pa.array(np.full(len(ans_idx), 300, np.uint32)),
         data.take(pa.array(ans_idx))], fields=list(DNS_ANSWER))
    answers = pa.ListArray.from_arrays(pa.array(offsets), answers_struct, type=pa.list_(DNS_ANSWER)).take(pa.array(order))
    rc = pa.array(np.concatenate([np.zeros(k, np.uint8), rcode]), mask=~is_resp).take(pa.array(order))
    size = np.concatenate([np.zeros(k, np.uint32), (60 + 16 * answered + 20 * rng.random(k)).astype(np.uint32)])
    return pa.table({
        "time": _ts(np.concatenate([t, t + 20_000])[order]), "client_ip": both(pop.text.take(pa.array(client))),
        "server_ip": both(pop.text.take(pa.array(server))), "client_port": both(pa.array(cport)),
        "transport": pa.array(np.full(2 * k, "udp")), "transaction_id": both(pa.array(tid)), "qname": both(qname),
        "qtype": both(pa.array(qtype)), "qclass": pa.array(np.ones(2 * k, np.uint16)), "is_response": pa.array(is_resp[order]),
        "rcode": rc, "answer_count": pa.array(np.diff(offsets).astype(np.uint16)[order]), "answers": answers,
        "response_size": pa.array(np.where(is_resp, size, 0)[order].astype(np.uint32), mask=~is_resp[order]),
        "edns_buffer_size": pa.array(np.full(2 * k, 1232, np.uint16)), "source": pa.array(np.full(2 * k, "unbound")),
    })


def diurnal_rows(n: int) -> np.ndarray:
    """Rows per hour: trough at 03:00 UTC, peak at 15:00, summing to n."""
    h = np.arange(24)
    w = 1.0 + 0.6 * np.cos(2 * np.pi * (h - 15) / 24)
    rows = np.floor(n * w / w.sum()).astype(np.int64)
    rows[15] += n - rows.sum()
    return rows


def generate(root: Path, n_flows: int, seed: int = 1, log=print) -> dict:
    """Write the lake under `root` (flows, packets, dns, iplists); returns row counts."""
    rng = np.random.default_rng(seed)
    pop = Population(seed)
    day_us = int(DAY.timestamp() * 1e6)
    hour_bytes = np.zeros(24)
    t = time.perf_counter()
    with LakeWriter(root, tag="bench") as w:
        for h, rows in enumerate(diurnal_rows(n_flows)):
            chunks = max(1, math.ceil(rows / CHUNK))
            edges = np.linspace(0, rows, chunks + 1).astype(np.int64)
            for j in range(chunks):
                n = int(edges[j + 1] - edges[j])
                t0 = day_us + h * US_PER_HOUR + j * US_PER_HOUR // chunks
                t1 = day_us + h * US_PER_HOUR + (j + 1) * US_PER_HOUR // chunks
                c = traffic_chunk(pop, rng, n, t0, t1)
                hour_bytes[h] += c["bytes"].sum()
                w.write("flows", flows_table(pop, c))
                w.write("packets", packets_table(pop, traffic_chunk(pop, rng, max(1, n // 20), t0, t1)))
                w.write("dns", dns_table(pop, rng, max(2, n // 10), t0, t1))
            log(f"  hour {h:02d}: {rows:,} flows ({time.perf_counter() - t:.0f} s)")
    with LakeWriter(root, tag="attacks") as w:
        attacks(w, pop, np.random.default_rng(seed + 1), day_us, hour_bytes)
    return {"flows": n_flows}


def _burst(rng, pop, t0_us: int, minutes: int, sources: np.ndarray, dst: int, per_source: int, **cols) -> dict:
    """`per_source` flow rows from each source to `dst`, spread over `minutes` from t0."""
    src = np.repeat(sources, per_source)
    n = len(src)
    base = {"t": np.sort(rng.integers(t0_us, t0_us + minutes * 60_000_000, n)), "dur": np.full(n, 55_000_000),
            "src": src, "dst": np.full(n, dst), "flags": np.zeros(n, np.uint8), "frags": np.zeros(n, np.int64)}
    for k, v in cols.items():
        base[k] = np.broadcast_to(np.asarray(v), (n,)).copy() if np.ndim(v) == 0 else v
    return base


def attacks(w: LakeWriter, pop: Population, rng, day_us: int, hour_bytes: np.ndarray) -> None:
    H = lambda h, m=0: day_us + h * US_PER_HOUR + m * 60_000_000  # noqa: E731
    ext, ntp, cli = pop.base["ext"], pop.base["ntp"], pop.base["cli"]
    pick = lambda base, size, k: base + rng.choice(size, k, replace=False)  # noqa: E731
    parts = [
        # NTP monlist amplification at a client: 40 servers, 468-byte responses
        _burst(rng, pop, H(10), 60, pick(ntp, N_NTP, 40), cli + 101, 60, sport=123, dport=50000, proto=17, pkts=200, bytes=200 * 468),
        # DNS amplification: 80 resolvers, fragmented 1,400-byte responses, no queries from the victim
        _burst(rng, pop, H(13), 60, pick(ext, N_SERVERS, 80), cli + 202, 60, sport=53, dport=40000, proto=17, pkts=100,
               bytes=100 * 1400, frags=100),
        # SSDP reflection: 30 reflectors, 300-byte responses
        _burst(rng, pop, H(16), 60, pick(ext, N_SERVERS, 30), cli + 303, 60, sport=1900, dport=30000, proto=17, pkts=100, bytes=100 * 300),
        # UDP fragment flood 20:05-20:10 from 50 sources
        _burst(rng, pop, H(20, 5), 5, pick(ext, N_SERVERS, 50), cli + 404, 5, sport=0, dport=0, proto=17, pkts=10_000,
               bytes=10_000 * 1480, frags=10_000),
    ]
    # TLS SYN scan at 03:00: one source, 5,000 internal addresses, 1 SYN each, 5 % answered
    targets = cli + rng.choice(N_CLIENTS, 5000, replace=False)
    scanner = ext + 777
    parts.append({"t": np.sort(rng.integers(H(3), H(4), 5000)), "dur": np.zeros(5000, np.int64), "src": np.full(5000, scanner),
                  "dst": targets, "sport": rng.integers(32768, 61000, 5000), "dport": np.full(5000, 443), "proto": np.full(5000, 6, np.uint8),
                  "flags": np.full(5000, 2, np.uint8), "pkts": np.ones(5000, np.int64), "bytes": np.full(5000, 60), "frags": np.zeros(5000, np.int64)})
    ans = targets[:250]
    parts.append({"t": np.sort(rng.integers(H(3), H(4), 250)), "dur": np.zeros(250, np.int64), "src": ans, "dst": np.full(250, scanner),
                  "sport": np.full(250, 443), "dport": rng.integers(32768, 61000, 250), "proto": np.full(250, 6, np.uint8),
                  "flags": np.full(250, 0x12, np.uint8), "pkts": np.ones(250, np.int64), "bytes": np.full(250, 60), "frags": np.zeros(250, np.int64)})
    # a new heavy pair at 18:00: ~15 % of the hour's bytes, steady over the hour
    hh_bytes = int(hour_bytes[18] * 0.18 / 60)
    parts.append(_burst(rng, pop, H(18), 60, np.array([cli + 505]), ext + 4242, 60, sport=51515, dport=443, proto=6,
                        flags=0x1B, pkts=hh_bytes // 1400, bytes=hh_bytes))
    # GameOver ZeuS: 20 bots, DGA NXDOMAINs, one name resolves to the C&C; flows bots <-> C&C
    bots = cli + rng.choice(N_CLIENTS, 20, replace=False)
    cnc = ext + 9999
    parts.append(_burst(rng, pop, H(7), 600, bots, cnc, 30, sport=49999, dport=443, proto=6, flags=0x1B, pkts=12, bytes=12 * 400))
    cols = {k: np.concatenate([np.asarray(p[k]) for p in parts]) for k in parts[0]}
    order = np.argsort(cols["t"], kind="stable")
    w.write("flows", flows_table(pop, {k: v[order] for k, v in cols.items()}))
    w.write("dns", attack_dns(pop, rng, H, bots, cnc))
    # the open-resolver list names half the DNS amplifiers
    amps = pop.text.take(pa.array(parts[1]["src"][::60][:40]))
    w.write("iplists", pa.table({"network": pa.array([f"{a}/32" for a in amps.to_pylist()]),
                                 "list_name": pa.array(["open-resolvers"] * len(amps)),
                                 "first_seen": pa.array([DAY] * len(amps), TS), "last_seen": pa.array([DAY] * len(amps), TS)}))


def attack_dns(pop: Population, rng, H, bots: np.ndarray, cnc: int) -> pa.Table:
    rows = []
    dga = gameover_zeus.domains(DAY.date(), 1000)
    cnc_ip = pop.text[int(cnc)].as_py()
    for b in bots:
        host = pop.text[int(b)].as_py()
        for name in rng.choice(dga[1:], 40, replace=False).tolist() + [dga[0]]:
            t = DAY + dt.timedelta(microseconds=int(rng.integers(H(6), H(8)) - H(0)))
            ok = name == dga[0]
            rows.append({"time": t, "client_ip": host, "server_ip": RESOLVERS[0], "qname": name, "qtype": 1, "is_response": True,
                         "rcode": 0 if ok else 3, "answer_count": int(ok), "transport": "udp", "source": "unbound",
                         "answers": [{"name": name, "type": 1, "ttl": 60, "data": cnc_ip}] if ok else []})
    # spam bots: 15 hosts failing MX lookups on 40 dead domains spread over many registered domains
    spam = pop.text.take(pa.array(pop.base["cli"] + rng.choice(N_CLIENTS, 15, replace=False))).to_pylist()
    dead = [f"mail{i}.dead-shop{i}.{('com', 'net', 'biz', 'info')[i % 4]}" for i in range(40)]
    for host in spam:
        for name in rng.choice(dead, 25, replace=False).tolist():
            t = DAY + dt.timedelta(microseconds=int(rng.integers(H(9), H(17)) - H(0)))
            rows.append({"time": t, "client_ip": host, "server_ip": RESOLVERS[1], "qname": name, "qtype": 15, "is_response": True,
                         "rcode": 3, "answer_count": 0, "transport": "udp", "source": "unbound", "answers": []})
    rows.sort(key=lambda r: r["time"])
    return pa.Table.from_pylist(rows, schema=DNS)


def ensure_lake(work: Path, n_flows: int, seed: int = 1, log=print) -> Path:
    """The cached lake of n_flows rows under `work`, generated if absent or stale."""
    root = work / f"lake-{n_flows}-s{seed}"
    marker = root / "bench-lake.json"
    want = {"version": VERSION, "flows": n_flows, "seed": seed}
    if marker.exists() and json.loads(marker.read_text()) == want:
        return root
    tmp = root.with_name(root.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(root, ignore_errors=True)
    t = time.perf_counter()
    log(f"generating {n_flows:,} flow rows into {root} ...")
    generate(tmp, n_flows, seed, log)
    (tmp / "bench-lake.json").write_text(json.dumps(want))
    tmp.rename(root)
    size = sum(f.stat().st_size for f in root.rglob("*.parquet"))
    log(f"generated in {time.perf_counter() - t:.0f} s, {size / 2**30:.2f} GiB of Parquet")
    return root
