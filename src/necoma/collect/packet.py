"""Vectorized decoding of captured frames into `packets` and `dns` rows.

Shared by the pcap importer and the sFlow decoder (sampled raw packet headers).
All frames of a batch are decoded at once with numpy fancy indexing at per-frame
offsets: first the link layer gives each frame's IP offset, then IPv4/IPv6
fields, L4 ports and flags, and finally DNS (see `dns_wire`) and NTP payloads.
Once numba is loaded (see `_jit`) the link to transport layers and DNS run as
compiled kernels instead (`packet_jit`, `dns_fast`), with the same results.
Nothing raises on bad input: a frame whose IP header is damaged becomes a counted
rejection; a damaged upper layer leaves its columns null and is counted too.
Non-IP frames (ARP, LLDP, ...) are not errors; they are counted in `skipped`.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from necoma.collect import dns_wire
from necoma.collect._jit import loaded
from necoma.collect.rejects import Rejects
from necoma.collect.wire import key_text, repeated, scatter_strings, u8, u16, u32
from necoma.schemas import DNS, PACKETS, TS

ETH, NULL, LOOP, SLL, SLL2 = 1, 0, 108, 113, 276
RAW = (101, 12, 14)  # raw IP, version from the first nibble
RAW4, RAW6 = 228, 229
IPV4, IPV6 = 0x0800, 0x86DD
VLAN_TPIDS = (0x8100, 0x88A8, 0x9100)
V6_EXT = (0, 43, 60, 51, 44)  # hop-by-hop, routing, dest options, AH, fragment
TCP, UDP, ICMP, ICMP6 = 6, 17, 1, 58
DNS_PORT, NTP_PORT = 53, 123


@dataclass
class DecodedFrames:
    packets: pa.Table  # PACKETS schema, one row per frame with a valid IP header
    dns: pa.Table  # DNS schema, one row per decodable DNS message
    rejects: Rejects
    skipped: Counter = field(default_factory=Counter)  # non-IP frames by kind (not errors)
    tos: np.ndarray | None = None  # per packets row: IPv4 ToS / IPv6 traffic class (for flows)
    addr_keys: np.ndarray | None = None  # per packets row: (src_hi, src_lo, dst_hi, dst_lo) uint64
    # DNS messages cut by the capture's snap length (an sFlow agent's 128-byte header,
    # tcpdump -s): decoded as far as they go, kept, and counted here apart from `rejects`
    # so the caller decides whether a cut is normal (sFlow) or worth reporting (pcap).
    truncated: Rejects = field(default_factory=Rejects)


def _reject(rejects: Rejects, mask: np.ndarray, reason: str, frame_base: int) -> None:
    idx = np.flatnonzero(mask)
    if len(idx):
        rejects.add(reason, f"frame {frame_base + int(idx[0]) + 1}", len(idx))


def decode_frames(buf: np.ndarray, offsets: np.ndarray, caplens: np.ndarray, wirelens: np.ndarray,
                  times_us: np.ndarray, linktypes: int | np.ndarray, *, exporter: str,
                  sampling_rate: int | np.ndarray = 1, source: str = "pcap", frame_base: int = 0,
                  reference: bool | None = None) -> DecodedFrames:
    """Decode every frame `buf[offsets[i] : offsets[i] + caplens[i]]` (see module doc).

    `frame_base` numbers frames in rejection messages ("first at frame N", 1-based).
    `reference` decodes with numpy (`_layers_numpy`, `dns_wire`) instead of the compiled
    kernels (`packet_jit`, `dns_fast`); the results are the same. By default the
    kernels are used once numba is loaded (see `_jit`).
    """
    if reference is None:
        reference = not loaded()
    rejects, truncated, skipped = Rejects(), Rejects(), Counter()
    n = len(offsets)
    off = np.asarray(offsets, np.int64)
    end = off + np.asarray(caplens, np.int64)
    lt = np.broadcast_to(np.asarray(linktypes, np.int64), (n,))
    layers = _layers_numpy if reference else _layers_compiled
    rows, f, vlan = layers(buf, off, end, np.asarray(wirelens, np.int64), lt, rejects, skipped, frame_base)
    dns_rows = _dns(buf, f, rejects, truncated, frame_base, rows, reference)
    _ntp(buf, f, rejects, frame_base, rows)

    m = len(rows)
    times = pa.array(np.asarray(times_us, np.int64)[rows], TS)
    rate = np.broadcast_to(np.asarray(sampling_rate, np.int64), (n,))[rows]
    src_ip, dst_ip = _addresses(f)

    def col(values, typ, valid=None):
        return pa.array(values, typ, mask=None if valid is None else ~valid)

    packets = pa.Table.from_arrays([
        times, _const(exporter, m),
        col(rate, pa.uint32()), src_ip, dst_ip,
        col(f["sport"], pa.uint16(), f["has_ports"]), col(f["dport"], pa.uint16(), f["has_ports"]),
        col(f["proto"], pa.uint8()), col(np.where(f["is4"], 4, 6), pa.uint8()),
        col(np.minimum(f["ip_length"], 0xFFFF), pa.uint16()), col(f["ttl"], pa.uint8()),
        col(f["ip_id"], pa.uint32(), f["is4"] | f["frag_hdr"]), col(f["frag_off"], pa.uint16()), col(f["mf"], pa.bool_()),
        col(f["tcp_flags"], pa.uint8(), f["has_flags"]), col(vlan, pa.uint16(), vlan >= 0),
        col(f["dns_id"], pa.uint16(), f["dns_hdr"]), f["dns_qname"], col(f["dns_qtype"], pa.uint16(), f["dns_q"]),
        col(f["dns_rcode"], pa.uint8(), f["dns_hdr"] & f["dns_qr"]), col(f["dns_qr"], pa.bool_(), f["dns_hdr"]),
        col(f["ntp_mode"], pa.uint8(), f["ntp"]), col(f["ntp_req"], pa.uint8(), f["ntp7"]),
        _const(source, m),
    ], schema=PACKETS)
    dns = _dns_table(dns_rows, packets, f, source) if dns_rows is not None else DNS.empty_table()
    return DecodedFrames(packets, dns, rejects, skipped, f["tos"], f["keys"], truncated)


def _layers_numpy(buf, off, end, wirelens, lt, rejects, skipped, frame_base):
    """Link, IP and transport layers with numpy -> (frame of each IP row, fields, VLAN per row)."""
    l3, etype, vlan = _link_layer(buf, off, end, lt, rejects, skipped, frame_base)
    v4 = etype == IPV4
    v6 = etype == IPV6
    ver = u8(buf, l3) >> 4
    _reject(rejects, v4 & (l3 + 20 > end), "ipv4: truncated header", frame_base)
    _reject(rejects, v6 & (l3 + 40 > end), "ipv6: truncated header", frame_base)
    v4 &= l3 + 20 <= end
    v6 &= l3 + 40 <= end
    ihl = (u8(buf, l3) & 0xF).astype(np.int64) * 4
    bad = (v4 & ((ver != 4) | (ihl < 20) | (l3 + ihl > end))) | (v6 & (ver != 6))
    _reject(rejects, bad, "ip: bad version or header length", frame_base)
    v4 &= ~bad
    v6 &= ~bad
    rows = np.flatnonzero(v4 | v6)
    f = _ip_fields(buf, l3[rows], end[rows], wirelens[rows] - (l3 - off)[rows], ihl[rows], v4[rows], rejects,
                   frame_base, rows)
    _transport(buf, f, rejects, frame_base, rows)
    return rows, f, vlan[rows]


def _layers_compiled(buf, off, end, wirelens, lt, rejects, skipped, frame_base):
    """`_layers_numpy` in one compiled pass; the same rows, fields and rejections (in the same order)."""
    from necoma.collect import packet_jit as J

    verdict, etypes, out, keys = J.decode_layers(buf, off, end, wirelens, np.ascontiguousarray(lt))
    bad_link = verdict == J.F_LINKTYPE
    for code in np.unique(lt[bad_link]):
        _reject(rejects, bad_link & (lt == code), f"unsupported link type {int(code)}", frame_base)
    _reject(rejects, verdict == J.F_LINK_SHORT, "link: truncated header", frame_base)
    _reject(rejects, verdict == J.F_RAW_NOT_IP, "raw/loopback frame is neither IPv4 nor IPv6", frame_base)
    other = verdict == J.F_SKIP
    if other.any():
        kinds, counts = np.unique(np.where(etypes[other] <= 1500, -1, etypes[other]), return_counts=True)
        for kind, cnt in zip(kinds, counts):
            skipped["802.3/LLC" if kind < 0 else f"ethertype 0x{int(kind):04x}"] += int(cnt)
    _reject(rejects, verdict == J.F_V4_SHORT, "ipv4: truncated header", frame_base)
    _reject(rejects, verdict == J.F_V6_SHORT, "ipv6: truncated header", frame_base)
    _reject(rejects, verdict == J.F_BAD_IP, "ip: bad version or header length", frame_base)
    err = out[J.C_ROWERR]  # numbered by row, not frame, as the numpy version does
    for code, reason in ((J.R_EXT, "ipv6: truncated or too many extension headers"), (J.R_TCP, "tcp: truncated header"),
                         (J.R_UDP, "udp: truncated header"), (J.R_ICMP, "icmp: truncated header")):
        _reject(rejects, err == code, reason, frame_base)
    flag = {k: out[c].astype(bool) for k, c in (("is4", J.C_IS4), ("mf", J.C_MF), ("frag_hdr", J.C_FRAGHDR),
                                                 ("first_frag", J.C_FIRST), ("has_ports", J.C_HASPORTS),
                                                 ("tcp", J.C_TCP), ("udp", J.C_UDP), ("tcp_payload_ok", J.C_TCPOK))}
    f = {k: out[c] for k, c in (("l3", J.C_L3), ("end", J.C_END), ("ip_length", J.C_IPLEN), ("pay_end", J.C_PAYEND),
                                ("l4", J.C_L4), ("payload", J.C_PAYLOAD), ("payload_len", J.C_PAYLEN))}
    # the table's own types: pa.array then takes them as they are instead of a checked cast
    for k, c, t in (("ttl", J.C_TTL, np.uint8), ("proto", J.C_PROTO, np.uint8), ("tcp_flags", J.C_FLAGS, np.uint8),
                    ("sport", J.C_SPORT, np.uint16), ("dport", J.C_DPORT, np.uint16), ("frag_off", J.C_FRAGOFF, np.uint16),
                    ("ip_id", J.C_IPID, np.uint32)):
        f[k] = out[c].astype(t)
    f.update(flag, tos=out[J.C_TOS].astype(np.uint8), keys=keys, has_flags=flag["tcp"],
             fragment=flag["mf"] | (out[J.C_FRAGOFF] > 0))
    return out[J.C_FRAME], f, out[J.C_VLAN]


def _link_layer(buf, off, end, lt, rejects, skipped, frame_base):
    """IP header offset, ethertype (0 = undecodable) and outer VLAN id (-1 = none) per frame."""
    n = len(off)
    l3 = np.zeros(n, np.int64)
    etype = np.zeros(n, np.int64)
    vlan = np.full(n, -1, np.int64)
    eth = lt == ETH
    l3[eth] = off[eth] + 14
    etype[eth] = u16(buf, off[eth] + 12)
    tagged = eth & np.isin(etype, VLAN_TPIDS)
    vlan[tagged] = u16(buf, l3[tagged]) & 0x0FFF  # outer tag (the S-tag for QinQ)
    for _ in range(4):  # 802.1Q, QinQ and deeper stacks
        if not tagged.any():
            break
        etype[tagged] = u16(buf, l3[tagged] + 2)
        l3[tagged] += 4
        tagged &= np.isin(etype, VLAN_TPIDS)
    for code, hdr, at in ((SLL, 16, 14), (SLL2, 20, 0)):
        m = lt == code
        l3[m] = off[m] + hdr
        etype[m] = u16(buf, off[m] + at)
    nibble = np.isin(lt, RAW)
    l3[nibble] = off[nibble]
    loop = (lt == NULL) | (lt == LOOP)  # 4-byte address family, host byte order: use the IP version
    l3[loop] = off[loop] + 4
    nibble |= loop
    ver = u8(buf, l3[nibble]) >> 4
    etype[nibble] = np.select([ver == 4, ver == 6], [IPV4, IPV6], 0)
    for code, et in ((RAW4, IPV4), (RAW6, IPV6)):
        l3[lt == code] = off[lt == code]
        etype[lt == code] = et
    known = eth | nibble | np.isin(lt, (SLL, SLL2, RAW4, RAW6))
    for code in np.unique(lt[~known]):
        _reject(rejects, lt == code, f"unsupported link type {int(code)}", frame_base)
    short = known & (l3 > end)
    _reject(rejects, short, "link: truncated header", frame_base)
    _reject(rejects, nibble & ~short & (etype == 0), "raw/loopback frame is neither IPv4 nor IPv6", frame_base)
    other = known & ~short & ~nibble & (etype != IPV4) & (etype != IPV6)
    if other.any():
        kinds, counts = np.unique(np.where(etype[other] <= 1500, -1, etype[other]), return_counts=True)
        for kind, cnt in zip(kinds, counts):
            skipped["802.3/LLC" if kind < 0 else f"ethertype 0x{int(kind):04x}"] += int(cnt)
    etype[~known | short] = 0
    return l3, etype, vlan


def _ip_fields(buf, l3, end, wire_ip_len, ihl, is4, rejects, frame_base, rows) -> dict:
    """IPv4/IPv6 header fields, with IPv6 extension headers walked to the upper layer."""
    m = len(l3)
    is6 = ~is4
    f: dict = {"is4": is4, "l3": l3, "end": end}
    tot = u16(buf, l3 + 2).astype(np.int64)  # IPv4 total length / IPv6 payload length at +4
    plen = _either(is4, lambda: tot, lambda: u16(buf, l3 + 4).astype(np.int64) + 40)
    # zero lengths come from TSO/jumbo captures: fall back to the length on the wire
    ip_len = np.where(np.where(is4, tot, plen - 40) > 0, np.where(is4, tot, plen), wire_ip_len)
    f["ip_length"] = ip_len
    f["pay_end"] = np.minimum(end, l3 + ip_len)  # drops Ethernet padding
    f["ttl"] = _either(is4, lambda: u8(buf, l3 + 8), lambda: u8(buf, l3 + 7))
    f["tos"] = _either(is4, lambda: u8(buf, l3 + 1), lambda: ((u16(buf, l3) >> 4) & 0xFF).astype(np.uint8))
    ff = u16(buf, l3 + 6)
    f["frag_off"] = np.where(is4, (ff & 0x1FFF).astype(np.int64) * 8, 0)
    f["mf"] = is4 & ((ff & 0x2000) != 0)
    f["ip_id"] = np.where(is4, u16(buf, l3 + 4), 0).astype(np.int64)
    f["frag_hdr"] = np.zeros(m, bool)
    proto = _either(is4, lambda: u8(buf, l3 + 9), lambda: u8(buf, l3 + 6)).astype(np.int64)
    l4 = np.where(is4, l3 + ihl, l3 + 40)
    ext_ok = np.ones(m, bool)
    walk = is6 & np.isin(proto, V6_EXT)
    for _ in range(8):
        if not walk.any():
            break
        w = np.flatnonzero(walk)
        p = l4[w]
        short = p + 8 > end[w]
        ext_ok[w[short]] = False
        w, p = w[~short], p[~short]
        nh = proto[w]
        frag = nh == 44
        wf, pf = w[frag], p[frag]
        fo = u16(buf, pf + 2)
        f["frag_off"][wf] = fo & 0xFFF8
        f["mf"][wf] = (fo & 1) != 0
        f["ip_id"][wf] = u32(buf, pf + 4)
        f["frag_hdr"][wf] = True
        hlen = np.where(frag, 8, np.where(nh == 51, (u8(buf, p + 1).astype(np.int64) + 2) * 4,
                                          (u8(buf, p + 1).astype(np.int64) + 1) * 8))
        proto[w] = u8(buf, p)
        l4[w] = p + hlen
        walk[:] = False
        walk[w] = np.isin(proto[w], V6_EXT)
    ext_ok &= ~walk
    _reject(rejects, ~ext_ok, "ipv6: truncated or too many extension headers", frame_base)
    f["proto"], f["l4"] = proto, l4
    f["first_frag"] = (f["frag_off"] == 0) & ext_ok
    f["fragment"] = f["mf"] | (f["frag_off"] > 0)
    # numeric address keys for flow aggregation: IPv4 as ::ffff:a.b.c.d
    keys = np.zeros((m, 4), np.uint64)
    for col, at4, at6 in ((0, 12, 8), (2, 16, 24)):
        keys[is4, col + 1] = (0xFFFF << 32) | u32(buf, l3[is4] + at4).astype(np.uint64)
        for half in (0, 1):
            hi = u32(buf, l3[is6] + at6 + 8 * half).astype(np.uint64)
            lo = u32(buf, l3[is6] + at6 + 8 * half + 4).astype(np.uint64)
            keys[is6, col + half] = (hi << np.uint64(32)) | lo
    f["keys"] = keys
    return f


def _either(is4: np.ndarray, v4, v6) -> np.ndarray:
    """Per-row IPv4 or IPv6 value, reading only the variant present when all rows agree."""
    if is4.all():
        return v4()
    if not is4.any():
        return v6()
    return np.where(is4, v4(), v6())


def _transport(buf, f, rejects, frame_base, rows) -> None:
    """Ports and TCP flags; ICMP type/code go in dst_port as type*256+code, as NetFlow does."""
    m = len(f["l4"])
    l4, end, proto = f["l4"], f["end"], f["proto"]
    first = f["first_frag"]
    tcp, udp = first & (proto == TCP), first & (proto == UDP)
    icmp = first & ((proto == ICMP) | (proto == ICMP6))
    for mask, need, name in ((tcp, 14, "tcp"), (udp, 8, "udp"), (icmp, 2, "icmp")):
        short = mask & (l4 + need > end)
        _reject(rejects, short, f"{name}: truncated header", frame_base)
        mask &= ~short
    sport = u16(buf, l4)  # ICMP type and code sit where the source port would be
    f["sport"] = np.where(tcp | udp, sport, 0)
    f["dport"] = np.where(tcp | udp, u16(buf, l4 + 2), np.where(icmp, sport, 0))
    f["has_ports"] = tcp | udp | icmp
    f["has_flags"] = tcp
    if tcp.any():
        f["tcp_flags"] = np.where(tcp, u8(buf, l4 + 13), 0)
        doff = (u8(buf, l4 + 12) >> 4).astype(np.int64) * 4
    else:
        f["tcp_flags"] = doff = np.zeros(m, np.int64)
    f["payload"] = np.where(tcp, l4 + doff, l4 + 8)
    f["tcp_payload_ok"] = tcp & (doff >= 20) & (l4 + doff <= end)
    f["udp"], f["tcp"] = udp, tcp
    f["payload_len"] = np.where(f["tcp_payload_ok"] | udp, f["pay_end"] - f["payload"], 0)


def _dns(buf, f, rejects, truncated, frame_base, rows, reference):
    """DNS over UDP, and over TCP per segment: a segment must start with the 2-byte
    length prefix. Messages spanning several segments, and second messages in one
    segment, are not reassembled (their first segment is decoded as far as it goes)."""
    m = len(f["l4"])
    on53 = (f["sport"] == DNS_PORT) | (f["dport"] == DNS_PORT)
    plen = f["payload_len"]
    udp = f["udp"] & on53 & (plen > 0)
    tcp = f["tcp"] & on53 & (plen >= 2)
    msg = np.where(tcp, f["payload"] + 2, f["payload"])
    mend = np.where(tcp, np.minimum(f["pay_end"], msg + u16(buf, f["payload"])), f["pay_end"])
    cand = np.flatnonzero(udp | tcp)
    for key, typ in (("dns_id", np.int64), ("dns_qtype", np.int64), ("dns_rcode", np.int64)):
        f[key] = np.zeros(m, typ)
    for key in ("dns_hdr", "dns_q", "dns_qr"):
        f[key] = np.zeros(m, bool)
    f["dns_qname"] = pa.nulls(m, pa.string())
    if len(cand) == 0:
        return None
    if reference:
        res = dns_wire.parse_messages(buf, msg[cand], mend[cand])
    else:
        from necoma.collect.dns_fast import parse_messages

        res = parse_messages(buf, msg[cand], mend[cand])
    snapped = (f["end"] < f["l3"] + f["ip_length"])[cand]  # the capture kept only the frame's head
    for reason, idx in res.problems.items():
        for sub, into in ((idx[~snapped[idx]], rejects), (idx[snapped[idx]], truncated)):
            if len(sub):
                into.add(reason, f"frame {frame_base + int(rows[cand[sub[0]]]) + 1}", len(sub))
    f["dns_hdr"][cand] = res.header_ok
    f["dns_q"][cand] = res.question_ok & (res.qdcount > 0)
    f["dns_id"][cand] = res.id
    f["dns_qr"][cand] = res.is_response
    f["dns_rcode"][cand] = res.rcode
    f["dns_qtype"][cand] = res.qtype
    f["dns_qname"] = scatter_strings([(cand, res.qname)], m)
    ok = np.flatnonzero(res.question_ok)
    return {"row": cand[ok], "tcp": tcp[cand[ok]], "size": (mend - msg)[cand[ok]],
            "qclass": res.qclass[ok], "ancount": res.ancount[ok], "edns": res.edns_size[ok],
            "answers": _take(res.answers, ok)}


def _ntp(buf, f, rejects, frame_base, rows) -> None:
    """NTP mode; for mode 7 (private, e.g. monlist) also the request code."""
    ntp = f["udp"] & ((f["sport"] == NTP_PORT) | (f["dport"] == NTP_PORT)) & (f["payload_len"] > 0)
    mode = u8(buf, f["payload"]) & 7
    f["ntp"] = ntp
    f["ntp_mode"] = np.where(ntp, mode, 0)
    short7 = ntp & (mode == 7) & (f["payload_len"] < 4)
    _reject(rejects, short7, "ntp: truncated mode-7 header", frame_base)
    f["ntp7"] = ntp & (mode == 7) & ~short7
    f["ntp_req"] = np.where(f["ntp7"], u8(buf, f["payload"] + 3), 0)


def _addresses(f: dict) -> list[pa.StringArray]:
    """src_ip, dst_ip text from the numeric flow keys (each format done once, with numpy)."""
    k = f["keys"]
    return [key_text(k[:, 0], k[:, 1], f["is4"]), key_text(k[:, 2], k[:, 3], f["is4"])]


def _take(data, idx: np.ndarray):
    """data.take(idx), skipped when idx selects every row in order (the all-DNS case)."""
    if len(idx) == len(data) and (len(idx) == 0 or (idx[0] == 0 and idx[-1] == len(idx) - 1)):
        return data  # idx is sorted and unique, so this is the identity
    return data.take(pa.array(idx))


def _const(value: str, n: int) -> pa.Array:
    return repeated(value, n)


def _dns_table(d: dict, packets: pa.Table, f: dict, source: str) -> pa.Table:
    """One `dns` row per message whose header and question decoded; client = the asker."""
    p = _take(packets.select(["time", "src_port", "dst_port", "dns_id", "dns_qname",
                              "dns_qtype", "dns_is_response", "dns_rcode"]), d["row"])
    resp = f["dns_qr"][d["row"]]
    is_resp = pa.array(resp)
    # client and server are formatted from the numeric keys, which is cheaper than
    # choosing between two text columns row by row
    k, is4 = f["keys"][d["row"]], f["is4"][d["row"]]
    r = resp[:, None]
    client, server = np.where(r, k[:, 2:], k[:, :2]), np.where(r, k[:, :2], k[:, 2:])
    n = len(d["row"])
    return pa.Table.from_arrays([
        p.column("time"),
        key_text(client[:, 0], client[:, 1], is4), key_text(server[:, 0], server[:, 1], is4),
        pc.if_else(is_resp, p.column("dst_port"), p.column("src_port")),
        pa.array(["udp", "tcp"]).take(pa.array(d["tcp"].astype(np.int8))) if d["tcp"].any() else _const("udp", n),
        p.column("dns_id"), p.column("dns_qname"), p.column("dns_qtype"),
        pa.array(d["qclass"], pa.uint16()), p.column("dns_is_response"),
        p.column("dns_rcode"), pa.array(d["ancount"], pa.uint16()), d["answers"],
        pa.array(d["size"], pa.uint32(), mask=~resp), pa.array(d["edns"], pa.uint16(), mask=d["edns"] == 0),
        _const(source, n),
    ], schema=DNS)
