"""Vectorized DNS message decoding (RFC 1035) over many messages at once.

`parse_messages` takes the start and end of every DNS message inside one byte
buffer and walks all of them in lock-step: names are read label by label across
all messages at each step (following compression pointers), resource records
record by record. No Python object is made per message except for the rare
answer types rendered in Python (AAAA, TXT, unknown types as hex) and for names
holding bytes that need escaping. `dns_fast` is the compiled equivalent, used
once numba is loaded; this one is its reference.
"""
from __future__ import annotations

import socket
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from necoma.collect.wire import ipv4_text, ragged_arange, scatter_strings, strings_from_bytes, u8, u16, u32, words16
from necoma.schemas import DNS_ANSWER

MAX_NAME_STEPS = 128  # labels + pointer jumps per name; a legal name has at most 127 labels
MAX_RECORDS = 256  # resource records walked per message; the rest is counted, not parsed
OPT = 41

# name failure codes
NAME_OK, NAME_TRUNCATED, NAME_BAD_POINTER, NAME_BAD_LABEL, NAME_TOO_LONG = 0, 1, 2, 3, 4
NAME_REASONS = {
    NAME_TRUNCATED: "name runs past the end of the message",
    NAME_BAD_POINTER: "name compression pointer not pointing backwards",
    NAME_BAD_LABEL: "reserved label type",
    NAME_TOO_LONG: "name longer than 255 bytes",
}


def read_names(buf: np.ndarray, msg: np.ndarray, mend: np.ndarray, pos: np.ndarray, *, text: bool = True):
    """Read one domain name at each `pos` (absolute offsets into `buf`).

    Returns (names, after, err): names as lower-case text without the trailing dot
    (root is ""; None when `text` is False; null where err != 0), the offset just
    after the name where the record continues, and a failure code per name.
    Pointers must point strictly backwards, which rules out loops.
    """
    k = len(pos)
    cur0 = pos.astype(np.int64)
    cur = cur0.copy()
    after = np.full(k, -1, np.int64)
    err = np.zeros(k, np.int8)
    wire_len = np.zeros(k, np.int64)  # bytes of labels incl. length octets, for the 255 limit
    jumped = np.zeros(k, bool)  # a compression pointer was followed
    active = np.arange(k)
    seg_row, seg_src, seg_len = [], [], []
    for _ in range(MAX_NAME_STEPS):
        if len(active) == 0:
            break
        c = cur[active]
        inside = c < mend[active]
        if not inside.all():
            err[active[~inside]] = NAME_TRUNCATED
            active, c = active[inside], c[inside]
        ln = u8(buf, c).astype(np.int64)
        if ((ln > 0) & (ln < 0x40)).all():  # common step: every name continues with a label
            wl = wire_len[active] + ln + 1
            nxt = c + 1 + ln
            good = (nxt <= mend[active]) & (wl <= 254)
            if good.all():
                wire_len[active] = wl
                if text:
                    seg_row.append(active)
                    seg_src.append(c + 1)
                    seg_len.append(ln)
                cur[active] = nxt
                continue
        # general step: ends of names, pointers, errors
        # end of name
        term = ln == 0
        t = active[term]
        after[t] = np.where(after[t] < 0, c[term] + 1, after[t])
        # compression pointer
        ptr = (ln & 0xC0) == 0xC0
        p, cp = active[ptr], c[ptr]
        target = msg[p] + (((ln[ptr] & 0x3F) << 8) | u8(buf, cp + 1))
        bad = (cp + 1 >= mend[p]) | (target >= cp)
        err[p[bad]] = NAME_BAD_POINTER
        p, cp, target = p[~bad], cp[~bad], target[~bad]
        after[p] = np.where(after[p] < 0, cp + 2, after[p])
        cur[p] = target
        jumped[p] = True
        # ordinary label
        lab = (ln > 0) & (ln < 0x40)
        a, ca, la = active[lab], c[lab], ln[lab]
        wire_len[a] += la + 1
        short = (ca + 1 + la > mend[a])
        long_ = wire_len[a] > 254
        err[a[short]] = NAME_TRUNCATED
        err[a[long_ & ~short]] = NAME_TOO_LONG
        good = ~(short | long_)
        a, ca, la = a[good], ca[good], la[good]
        if text:
            seg_row.append(a)
            seg_src.append(ca + 1)
            seg_len.append(la)
        cur[a] = ca + 1 + la
        err[active[((ln & 0xC0) == 0x40) | ((ln & 0xC0) == 0x80)]] = NAME_BAD_LABEL
        nxt = np.concatenate([p, a])
        active = np.sort(nxt)
    else:
        err[active] = NAME_TOO_LONG
    if not text:
        return None, after, err
    return _names_text(buf, k, cur0, jumped, seg_row, seg_src, seg_len, err), after, err


_LOWER = np.arange(256, dtype=np.uint8)
_LOWER[65:91] += 32
_ODD = np.ones(256, bool)  # bytes a name shows escaped: not printable, or '.' / '\\' inside a label
_ODD[0x21:0x7F] = False
_ODD[[0x2E, 0x5C]] = True
# one table pass does both: lower case, and 0 for a byte that needs escaping (0 itself
# is one), so those names are found by comparing with 0 instead of a second lookup
_LOWER_OR_0 = np.where(_ODD, 0, _LOWER).astype(np.uint8)


def _names_text(buf, k, pos, jumped, seg_row, seg_src, seg_len, err) -> pa.StringArray:
    row = np.concatenate(seg_row) if seg_row else np.zeros(0, np.int64)
    src = np.concatenate(seg_src) if seg_src else np.zeros(0, np.int64)
    ln = np.concatenate(seg_len) if seg_len else np.zeros(0, np.int64)
    ok = err == 0
    nlab = np.bincount(row, minlength=k)
    out_len = np.bincount(row, weights=ln + 1, minlength=k).astype(np.int64) - (nlab > 0)
    out_len[~ok] = 0
    starts = np.cumsum(out_len) - out_len
    if not (ok & jumped).any():
        # no pointer followed: each name is one contiguous run of the buffer whose
        # inner length octets become dots - one copy per name, no sorting
        out = _LOWER_OR_0[buf[ragged_arange(pos + 1, out_len)]]
        inner = ok[row] & (src - 1 > pos[row])
        out[starts[row[inner]] + src[inner] - pos[row[inner]] - 2] = ord(".")
        odd = out == 0
        odd_rows = np.unique(np.searchsorted(starts + out_len, np.flatnonzero(odd), "right")) if odd.any() else []
    else:
        order = np.argsort(row, kind="stable")  # by name, labels in reading order
        row, src, ln = row[order], src[order], ln[order]
        # each label lands after the previous ones of its name plus one dot each
        step = ln + 1
        csum = np.cumsum(step) - step
        first_seg = np.cumsum(nlab) - nlab  # index of each name's first label (row is sorted)
        dst = starts[row] + csum - csum[first_seg[row]]
        keep = ok[row]
        src_i, dst_i = ragged_arange(src[keep], ln[keep]), ragged_arange(dst[keep], ln[keep])
        out = np.full(int(out_len.sum()), ord("."), np.uint8)
        b = _LOWER_OR_0[buf[src_i]]
        out[dst_i] = b
        odd = b == 0
        odd_rows = np.unique(np.repeat(row[keep], ln[keep])[odd]) if odd.any() else []
    names = strings_from_bytes(out, out_len, ok)
    if len(odd_rows):
        names = pc.replace_with_mask(names, pa.array(np.isin(np.arange(k), odd_rows)),
                                     pa.array([_escaped(buf, row, src, ln, r) for r in odd_rows], pa.string()))
    return names


def _escaped(buf: np.ndarray, row: np.ndarray, src: np.ndarray, ln: np.ndarray, r: int) -> str:
    """Presentation form of one name with \\DDD escapes (slow path, rare names only)."""
    labels = []
    sel = row == r
    for s, n in zip(src[sel], ln[sel]):
        raw = bytes(buf[s : s + n]).lower()
        labels.append("".join(chr(c) if 0x21 <= c <= 0x7E and c not in (0x2E, 0x5C) else f"\\{c:03d}" for c in raw))
    return ".".join(labels)


@dataclass
class Messages:
    """Decoded DNS messages, one entry per input message (arrays of equal length)."""

    header_ok: np.ndarray  # 12-byte header present
    question_ok: np.ndarray  # header and first question decoded
    id: np.ndarray
    is_response: np.ndarray
    rcode: np.ndarray
    qdcount: np.ndarray
    ancount: np.ndarray
    qname: pa.StringArray
    qtype: np.ndarray
    qclass: np.ndarray
    edns_size: np.ndarray  # 0 = no OPT record
    answers: pa.ListArray
    problems: dict[str, np.ndarray] = field(default_factory=dict)  # reason -> message indices


def parse_messages(buf: np.ndarray, msg: np.ndarray, mend: np.ndarray) -> Messages:
    k = len(msg)
    msg, mend = msg.astype(np.int64), mend.astype(np.int64)
    problems: dict[str, np.ndarray] = {}
    hdr_ok = msg + 12 <= mend
    problems["dns: message shorter than its 12-byte header"] = np.nonzero(~hdr_ok)[0]
    hdr = words16(buf, msg, 6)
    ident, flags = hdr[:, 0].astype(np.uint16), hdr[:, 1].astype(np.uint16)
    qd, an, ns, ar = (hdr[:, i].astype(np.int64) for i in range(2, 6))
    # question
    hq = np.nonzero(hdr_ok & (qd > 0))[0]
    names, after, err = read_names(buf, msg[hq], mend[hq], msg[hq] + 12)
    fixed_ok = (err == 0) & (after + 4 <= mend[hq])
    for code, why in NAME_REASONS.items():
        problems[f"dns: question {why}"] = hq[err == code]
    problems["dns: question truncated after the name"] = hq[(err == 0) & ~fixed_ok]
    q_ok = np.zeros(k, bool)
    q_ok[hq[fixed_ok]] = True
    q_ok |= hdr_ok & (qd == 0)
    qname = scatter_strings([(hq[fixed_ok], names.filter(pa.array(fixed_ok)))], k)
    qtype = np.zeros(k, np.uint16)
    qclass = np.zeros(k, np.uint16)
    tc = words16(buf, after, 2)
    qtype[hq], qclass[hq] = tc[:, 0], tc[:, 1]
    pos = msg + 12  # records follow the header when there is no question
    pos[hq] = after + 4
    # further questions are skipped (almost never more than one)
    alive = q_ok.copy()
    for j in range(1, int(qd[alive].max(initial=0))):
        r = np.nonzero(alive & (qd > j))[0]
        _, aft, e = read_names(buf, msg[r], mend[r], pos[r], text=False)
        bad = (e != 0) | (aft + 4 > mend[r])
        alive[r[bad]] = False
        pos[r[~bad]] = aft[~bad] + 4
    answers, edns, rr_problems = _walk_records(buf, msg, mend, pos, alive, an, ns, ar, qname)
    problems.update(rr_problems)
    return Messages(hdr_ok, q_ok, ident, (flags >> 15).astype(bool), (flags & 0xF).astype(np.uint8), qd, an,
                    qname, qtype, qclass, edns, answers, {r: i for r, i in problems.items() if len(i)})


def _answer_names(buf, msg, mend, pos, q_valid):
    """Answer owner names. Most are a pointer to the question name (0xC00C): those are
    only flagged (`to_q`) and filled from the question later; the others are read here."""
    to_q = (u16(buf, pos) == 0xC00C) & (pos + 2 <= mend) & q_valid
    after, err = pos + 2, np.zeros(len(pos), np.int8)
    other = np.flatnonzero(~to_q)
    names = None
    if len(other):
        names, after[other], err[other] = read_names(buf, msg[other], mend[other], pos[other])
    return to_q, names, after, err


def _walk_records(buf, msg, mend, pos, alive, an, ns, ar, qname):
    """Walk answer, authority and additional records; keep answers and the EDNS size."""
    k = len(msg)
    q_valid = pc.is_valid(qname).to_numpy(zero_copy_only=False)
    total = np.where(alive, an + ns + ar, 0)
    edns = np.zeros(k, np.uint16)
    problems: dict[str, np.ndarray] = {}
    ans = {"row": [], "to_q": [], "name": [], "type": [], "ttl": [], "rdata": [], "rdlen": []}
    pos = pos.copy()
    live = np.nonzero(total > 0)[0]
    for j in range(min(int(total.max(initial=0)), MAX_RECORDS)):
        live = live[total[live] > j]
        if len(live) == 0:
            break
        is_ans = an[live] > j
        ia, io = live[is_ans], live[~is_ans]
        after = np.empty(len(live), np.int64)
        err = np.empty(len(live), np.int8)
        if len(ia):  # answer names are kept as text, other owner names only skipped
            to_q, names, after[is_ans], err[is_ans] = _answer_names(buf, msg[ia], mend[ia], pos[ia], q_valid[ia])
        if len(io):
            _, after[~is_ans], err[~is_ans] = read_names(buf, msg[io], mend[io], pos[io], text=False)
        fixed = words16(buf, after, 5)  # type, class, TTL (two words), RDLENGTH
        rtype, rclass, rdlen = fixed[:, 0].astype(np.uint16), fixed[:, 1].astype(np.uint16), fixed[:, 4].astype(np.int64)
        ttl = (fixed[:, 2].astype(np.uint32) << 16) | fixed[:, 3]
        ok = (err == 0) & (after + 10 + rdlen <= mend[live])
        bad = live[~ok]
        if len(bad):
            problems.setdefault("dns: resource record truncated or malformed", []).append(bad)
        if len(ia):
            sel = ok[is_ans]
            ans["row"].append(ia[sel])
            ans["to_q"].append(to_q[sel])
            if names is not None:
                ans["name"].append(names.filter(pa.array(sel[~to_q])))
            for key, v in (("type", rtype), ("ttl", ttl), ("rdata", after + 10), ("rdlen", rdlen)):
                ans[key].append(v[is_ans][sel])
        opt = ok & (rtype == OPT) & (j >= an[live] + ns[live])
        edns[live[opt]] = rclass[opt]
        pos[live] = after + 10 + rdlen
        live = live[ok]
    over = np.nonzero(total > MAX_RECORDS)[0]
    if len(over):
        problems[f"dns: more than {MAX_RECORDS} records, the rest not parsed"] = [over]
    problems = {r: np.concatenate(v) for r, v in problems.items()}
    return _answer_lists(buf, msg, mend, k, ans, qname), edns, problems


def _answer_lists(buf, msg, mend, k, ans, qname) -> pa.ListArray:
    if ans["row"]:
        row = np.concatenate(ans["row"])
        to_q = np.concatenate(ans["to_q"])
        fast, other = np.flatnonzero(to_q), np.flatnonzero(~to_q)
        name = scatter_strings([(fast, qname.take(pa.array(row[fast]))),
                                (other, pa.concat_arrays(ans["name"] or [pa.array([], pa.string())]))], len(row))
        rtype, ttl, rdata, rdlen = (np.concatenate(ans[c]) for c in ("type", "ttl", "rdata", "rdlen"))
    else:
        row = rdata = rdlen = np.zeros(0, np.int64)
        rtype, ttl, name = np.zeros(0, np.uint16), np.zeros(0, np.uint32), pa.array([], pa.string())
    data = _render_rdata(buf, msg[row], mend[row], rtype, rdata, rdlen)
    order = np.argsort(row, kind="stable")  # by message, answers in wire order
    values = pa.StructArray.from_arrays(
        [name.take(pa.array(order)), pa.array(rtype[order], pa.uint16()), pa.array(ttl[order], pa.uint32()),
         data.take(pa.array(order))],
        fields=list(DNS_ANSWER),
    )
    offsets = np.zeros(k + 1, np.int32)
    np.cumsum(np.bincount(row, minlength=k), out=offsets[1:])
    return pa.ListArray.from_arrays(pa.array(offsets), values, type=pa.list_(DNS_ANSWER))


def _render_rdata(buf, msg, mend, rtype, rdata, rdlen) -> pa.Array:
    """Answer data as text: A/AAAA/CNAME/NS/PTR/MX/TXT as dig shows them, others as hex."""
    n = len(rtype)
    parts = []
    a = np.nonzero((rtype == 1) & (rdlen == 4))[0]
    parts.append((a, ipv4_text(u32(buf, rdata[a]))))
    nm = np.nonzero(np.isin(rtype, (2, 5, 12)))[0]
    names, _, err = read_names(buf, msg[nm], mend[nm], rdata[nm])
    parts.append((nm[err == 0], names.filter(pa.array(err == 0))))
    mx = np.nonzero((rtype == 15) & (rdlen >= 3))[0]
    names, _, err = read_names(buf, msg[mx], mend[mx], rdata[mx] + 2)
    pref = pc.cast(pa.array(u16(buf, rdata[mx])), pa.string())
    parts.append((mx[err == 0], pc.binary_join_element_wise(pref, names, " ").filter(pa.array(err == 0))))
    done = np.zeros(n, bool)
    for idx, _ in parts:
        done[idx] = True
    slow = np.nonzero(~done & ~np.isin(rtype, (2, 5, 12, 15)))[0]
    parts.append((slow, pa.array([_render_slow(buf, int(rtype[i]), int(rdata[i]), int(rdlen[i])) for i in slow],
                                 pa.string())))
    return scatter_strings(parts, n)


def _render_slow(buf: np.ndarray, rtype: int, start: int, length: int) -> str:
    raw = bytes(buf[start : start + length])
    if rtype == 28 and length == 16:
        return socket.inet_ntop(socket.AF_INET6, raw)
    if rtype == 16:
        out, i = [], 0
        while i < len(raw):
            s = raw[i + 1 : i + 1 + raw[i]]
            i += 1 + raw[i]
            out.append('"' + "".join(("\\" + chr(c)) if c in (0x22, 0x5C) else chr(c) if 0x20 <= c <= 0x7E
                                     else f"\\{c:03d}" for c in s) + '"')  # as dig prints it
        return " ".join(out)
    return raw.hex()
