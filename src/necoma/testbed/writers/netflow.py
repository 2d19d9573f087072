"""NetFlow v9 (RFC 3954) and IPFIX (RFC 7011) export datagrams, with templates and sampling options.

Templates and the options record that states the sampling interval are sent
first and again every `TEMPLATE_REFRESH_S`, as routers do, so a collector
that starts listening mid-replay learns them within a few minutes.
"""
from __future__ import annotations

import ipaddress
import struct
from functools import lru_cache
from pathlib import Path

import numpy as np

from necoma.testbed.network import inside_site
from necoma.testbed.packets import packed
from necoma.testbed.writers.container import DatagramWriter
from necoma.testbed.writers.flowexport import ExporterConfig, export_records, group_datagrams

TEMPLATE_REFRESH_S = 300.0
PER_DATAGRAM = 24
T_V4, T_V6, T_OPT = 256, 257, 258
INSIDE_AS = 64512

_COMMON_V9 = [(7, 2), (11, 2), (4, 1), (6, 1), (5, 1), (2, 4), (1, 4), (22, 4), (21, 4), (10, 2), (14, 2), (16, 4), (17, 4)]
_COMMON_IPFIX = [(7, 2), (11, 2), (4, 1), (6, 2), (5, 1), (2, 8), (1, 8), (152, 8), (153, 8), (10, 4), (14, 4), (16, 4), (17, 4)]
_REC_V9 = struct.Struct("!HHBBBIIIIHHII")
_REC_IPFIX = struct.Struct("!HHBHBQQQQIIII")


@lru_cache(maxsize=1 << 16)
def _as_of(addr: str) -> int:
    if inside_site(addr):
        return INSIDE_AS
    ip = ipaddress.ip_address(addr)
    return 64600 + (int(ip) >> (16 if ip.version == 4 else 96)) % 300  # one private AS per /16


def _pad(body: bytes) -> bytes:
    return body + b"\0" * (-len(body) % 4)


def _templates(cfg: ExporterConfig) -> bytes:
    ipfix = cfg.format == "ipfix"
    common = _COMMON_IPFIX if ipfix else _COMMON_V9
    sets = b""
    for tid, addr in ((T_V4, [(8, 4), (12, 4)]), (T_V6, [(27, 16), (28, 16)])):
        fields = addr + common
        sets += struct.pack("!HH", tid, len(fields)) + b"".join(struct.pack("!HH", *f) for f in fields)
    tmpl = struct.pack("!HH", 2 if ipfix else 0, 4 + len(sets)) + sets
    if ipfix:  # scope observationDomainId; samplingInterval, samplingAlgorithm
        body = struct.pack("!HHH", T_OPT, 3, 1) + struct.pack("!HHHHHH", 149, 4, 34, 4, 35, 1)
        opt = struct.pack("!HH", 3, 4 + len(_pad(body))) + _pad(body)
        data = _pad(struct.pack("!IIB", cfg.domain, cfg.sampling_rate, 2 if cfg.sampling_rate > 1 else 1))
    else:  # scope System (1); SAMPLING_INTERVAL (34), SAMPLING_ALGORITHM (35)
        body = struct.pack("!HHH", T_OPT, 4, 8) + struct.pack("!HHHHHH", 1, 4, 34, 4, 35, 1)
        opt = struct.pack("!HH", 1, 4 + len(_pad(body))) + _pad(body)
        data = _pad(struct.pack("!IIB", 0, cfg.sampling_rate, 2 if cfg.sampling_rate > 1 else 1))
    return tmpl + opt + struct.pack("!HH", T_OPT, 4 + len(data)) + data


def write_flow_export(path: Path, cols: dict[str, np.ndarray], cfg: ExporterConfig, rng: np.random.Generator,
                      boot: float) -> int:
    """Write this exporter's datagrams to a container file; returns the flow record count."""
    recs = export_records(cols, cfg, rng)
    ipfix = cfg.format == "ipfix"
    meta = {"protocol": "netflow", "format": cfg.format, "exporter": cfg.exporter, "sampling_rate": cfg.sampling_rate,
            "observation_domain": cfg.domain, "active_timeout_s": cfg.active_timeout, "site": cfg.site}
    templates = _templates(cfg)
    n_templates = 4  # v9 header count: two templates, the options template and its data record
    seq = 0
    last_tmpl = -1e18
    v6 = np.array([":" in a for a in recs["src"]], dtype=bool)
    with DatagramWriter(path, meta) as out:
        for pkt_no, (i, j) in enumerate(group_datagrams(recs["export"], PER_DATAGRAM)):
            now = float(recs["export"][j - 1])
            sets, count = b"", 0
            if now - last_tmpl >= TEMPLATE_REFRESH_S:
                sets, count, last_tmpl = templates, n_templates, now
            uptime = lambda t: int((t - boot) * 1000) & 0xFFFFFFFF  # noqa: E731 - sysUptime wraps at 2^32 ms
            for family, tid in ((False, T_V4), (True, T_V6)):
                rows = [r for r in range(i, j) if v6[r] == family]
                if not rows:
                    continue
                body = bytearray()
                for r in rows:
                    src, dst = recs["src"][r], recs["dst"][r]
                    inbound = inside_site(dst) is not None
                    addrs = packed(src) + packed(dst)
                    vals = (int(recs["sport"][r]), int(recs["dport"][r]), int(recs["proto"][r]), int(recs["flags"][r]),
                            int(recs["tos"][r]))
                    pk, by = int(recs["packets"][r]), int(recs["bytes"][r])
                    ifs = (1, 2) if inbound else (2, 1)
                    ases = (_as_of(src), _as_of(dst))
                    if ipfix:
                        body += addrs + _REC_IPFIX.pack(*vals, pk, by, int(recs["start"][r] * 1000),
                                                        int(recs["end"][r] * 1000), *ifs, *ases)
                    else:
                        body += addrs + _REC_V9.pack(*vals, pk & 0xFFFFFFFF, min(by, 0xFFFFFFFF),
                                                     uptime(recs["start"][r]), uptime(recs["end"][r]), *ifs, *ases)
                sets += struct.pack("!HH", tid, 4 + len(_pad(bytes(body)))) + _pad(bytes(body))
                count += len(rows)
            if ipfix:
                head = struct.pack("!HHIII", 10, 16 + len(sets), int(now), seq, cfg.domain)
                seq += j - i  # IPFIX sequence counts data records
            else:
                head = struct.pack("!HHIIII", 9, count, uptime(now), int(now), pkt_no, cfg.domain)
            out.write(now, head + sets)
    return len(recs["export"])
