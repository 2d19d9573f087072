"""Compiled link, IP and transport layers of `packet.decode_frames`: one pass per frame.

Same fields and verdicts as the numpy functions of `packet` (`_link_layer`,
`_ip_fields`, `_transport`), which stay as the reference; reads past a frame's end
are clipped into the buffer exactly as numpy's `take(mode="clip")` does there, so
even the garbage that no valid row uses is the same. The test of this equality is
in `tests/test_pcap_import_compiled.py` (real captures, every link type, mutations).
"""
from __future__ import annotations

import numpy as np

from necoma.collect._jit import njit

# frame verdicts (FRAME_OK = an IP row)
FRAME_OK, F_LINKTYPE, F_LINK_SHORT, F_RAW_NOT_IP, F_SKIP, F_V4_SHORT, F_V6_SHORT, F_BAD_IP = range(8)
# row verdicts: the row is kept, a layer of it was not decodable
ROW_OK, R_EXT, R_TCP, R_UDP, R_ICMP = range(5)
# rows of the int64 field matrix
(C_FRAME, C_L3, C_END, C_IS4, C_IPLEN, C_PAYEND, C_TTL, C_TOS, C_FRAGOFF, C_MF, C_IPID, C_FRAGHDR, C_PROTO, C_L4,
 C_FIRST, C_SPORT, C_DPORT, C_HASPORTS, C_TCP, C_UDP, C_FLAGS, C_PAYLOAD, C_TCPOK, C_PAYLEN, C_VLAN, C_ROWERR) = range(26)
N_FIELDS = 26


@njit
def _b(buf, i):
    """buf[i] with the index clipped into the buffer (numpy's take mode="clip")."""
    n = len(buf)
    return np.int64(buf[0 if i < 0 else (n - 1 if i >= n else i)])


@njit
def _w(buf, i):
    return (_b(buf, i) << 8) | _b(buf, i + 1)


@njit
def _d(buf, i):
    return (_w(buf, i) << 16) | _w(buf, i + 2)


@njit
def _is_tpid(e):
    return e == 0x8100 or e == 0x88A8 or e == 0x9100


@njit
def _is_v6_ext(p):
    return p == 0 or p == 43 or p == 60 or p == 51 or p == 44


@njit
def decode_layers(buf, off, end, wirelen, lt):
    """-> (frame verdicts, ethertype per frame, field matrix (N_FIELDS, rows), address keys (rows, 4))."""
    n = len(off)
    verdict, etypes = np.zeros(n, np.int8), np.zeros(n, np.int64)
    out, keys = np.zeros((N_FIELDS, n), np.int64), np.zeros((n, 4), np.uint64)
    m = 0
    for i in range(n):
        o, e, code = off[i], end[i], lt[i]
        l3, etype, vlan, nibble = np.int64(0), np.int64(0), np.int64(-1), False
        if code == 1:  # Ethernet, 802.1Q / QinQ tags
            l3, etype = o + 14, _w(buf, o + 12)
            if _is_tpid(etype):
                vlan = _w(buf, l3) & 0x0FFF
                for _ in range(4):
                    etype = _w(buf, l3 + 2)
                    l3 += 4
                    if not _is_tpid(etype):
                        break
        elif code == 113:  # Linux cooked
            l3, etype = o + 16, _w(buf, o + 14)
        elif code == 276:  # Linux cooked v2
            l3, etype = o + 20, _w(buf, o)
        elif code == 101 or code == 12 or code == 14 or code == 0 or code == 108:  # raw IP, BSD loopback
            l3 = o + 4 if code == 0 or code == 108 else o
            nibble = True
            ver = _b(buf, l3) >> 4
            etype = 0x0800 if ver == 4 else (0x86DD if ver == 6 else 0)
        elif code == 228 or code == 229:
            l3, etype = o, (0x0800 if code == 228 else 0x86DD)
        else:
            verdict[i] = F_LINKTYPE
            continue
        etypes[i] = etype
        if l3 > e:
            verdict[i] = F_LINK_SHORT
            continue
        if nibble and etype == 0:
            verdict[i] = F_RAW_NOT_IP
            continue
        if etype != 0x0800 and etype != 0x86DD:
            verdict[i] = F_SKIP
            continue
        is4 = etype == 0x0800
        if l3 + (20 if is4 else 40) > e:
            verdict[i] = F_V4_SHORT if is4 else F_V6_SHORT
            continue
        first = _b(buf, l3)
        ihl = (first & 0xF) * 4
        if (is4 and ((first >> 4) != 4 or ihl < 20 or l3 + ihl > e)) or (not is4 and (first >> 4) != 6):
            verdict[i] = F_BAD_IP
            continue
        r = m
        m += 1
        out[C_FRAME, r], out[C_L3, r], out[C_END, r], out[C_IS4, r], out[C_VLAN, r] = i, l3, e, is4, vlan
        tot = _w(buf, l3 + 2)
        if is4:
            ip_len = tot if tot > 0 else wirelen[i] - (l3 - o)
        else:
            plen = _w(buf, l3 + 4)
            ip_len = plen + 40 if plen > 0 else wirelen[i] - (l3 - o)
        out[C_IPLEN, r], out[C_PAYEND, r] = ip_len, min(e, l3 + ip_len)
        ff = _w(buf, l3 + 6)
        frag_off, mf, ip_id, frag_hdr, ext_ok = np.int64(0), False, np.int64(0), False, True
        if is4:
            out[C_TTL, r], out[C_TOS, r] = _b(buf, l3 + 8), _b(buf, l3 + 1)
            frag_off, mf, ip_id = (ff & 0x1FFF) * 8, (ff & 0x2000) != 0, _w(buf, l3 + 4)
            proto, l4 = _b(buf, l3 + 9), l3 + ihl
        else:
            out[C_TTL, r], out[C_TOS, r] = _b(buf, l3 + 7), (_w(buf, l3) >> 4) & 0xFF
            proto, l4 = _b(buf, l3 + 6), l3 + 40
            walking = _is_v6_ext(proto)
            for _ in range(8):
                if not walking:
                    break
                if l4 + 8 > e:
                    ext_ok, walking = False, False
                    break
                if proto == 44:
                    fo = _w(buf, l4 + 2)
                    frag_off, mf, ip_id, frag_hdr = fo & 0xFFF8, (fo & 1) != 0, _d(buf, l4 + 4), True
                    hlen = 8
                elif proto == 51:
                    hlen = (_b(buf, l4 + 1) + 2) * 4
                else:
                    hlen = (_b(buf, l4 + 1) + 1) * 8
                proto = _b(buf, l4)
                l4 += hlen
                walking = _is_v6_ext(proto)
            if walking:
                ext_ok = False
        out[C_FRAGOFF, r], out[C_MF, r], out[C_IPID, r], out[C_FRAGHDR, r] = frag_off, mf, ip_id, frag_hdr
        out[C_PROTO, r], out[C_L4, r] = proto, l4
        first_frag = frag_off == 0 and ext_ok
        out[C_FIRST, r] = first_frag
        if not ext_ok:
            out[C_ROWERR, r] = R_EXT
        if is4:
            keys[r, 1] = (np.uint64(0xFFFF) << np.uint64(32)) | np.uint64(_d(buf, l3 + 12))
            keys[r, 3] = (np.uint64(0xFFFF) << np.uint64(32)) | np.uint64(_d(buf, l3 + 16))
        else:
            for col in range(4):
                at = l3 + 8 + 8 * col
                keys[r, col] = (np.uint64(_d(buf, at)) << np.uint64(32)) | np.uint64(_d(buf, at + 4))
        # transport
        tcp, udp = first_frag and proto == 6, first_frag and proto == 17
        icmp = first_frag and (proto == 1 or proto == 58)
        if tcp and l4 + 14 > e:
            tcp, out[C_ROWERR, r] = False, R_TCP
        if udp and l4 + 8 > e:
            udp, out[C_ROWERR, r] = False, R_UDP
        if icmp and l4 + 2 > e:
            icmp, out[C_ROWERR, r] = False, R_ICMP
        sport = _w(buf, l4)
        if tcp or udp:
            out[C_SPORT, r], out[C_DPORT, r] = sport, _w(buf, l4 + 2)
        elif icmp:
            out[C_DPORT, r] = sport
        out[C_HASPORTS, r], out[C_TCP, r], out[C_UDP, r] = tcp or udp or icmp, tcp, udp
        doff = (_b(buf, l4 + 12) >> 4) * 4
        if tcp:
            out[C_FLAGS, r] = _b(buf, l4 + 13)
        payload = l4 + doff if tcp else l4 + 8
        tcp_ok = tcp and doff >= 20 and l4 + doff <= e
        out[C_PAYLOAD, r], out[C_TCPOK, r] = payload, tcp_ok
        out[C_PAYLEN, r] = out[C_PAYEND, r] - payload if (tcp_ok or udp) else 0
    return verdict, etypes, out[:, :m], keys[:m]
