"""DNS message decoding (RFC 1035) as one compiled walk per message.

Same results as the lock-step numpy decoder `dns_wire.parse_messages` (kept as
the reference and for small captures; `tests/test_pcap_import_compiled.py`
compares both on real and mutated messages), about five times cheaper: numpy's
lock-step walk pays an array pass per label and per record for every message,
this ~120 ns per message. Names, rendered answer data and the question name of each answer that
points at it are written straight into Arrow string buffers.

Every read is bounds-checked against the message end (itself clipped to the
buffer), so damaged input yields a failure code, never an out-of-range read.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from necoma.collect._jit import njit
from necoma.collect.dns_wire import MAX_NAME_STEPS, MAX_RECORDS, NAME_REASONS, OPT, Messages, _render_slow
from necoma.collect.wire import strings_from_bytes
from necoma.schemas import DNS_ANSWER

TRUNC, BAD_POINTER, BAD_LABEL, TOO_LONG = 1, 2, 3, 4  # dns_wire's NAME_* codes
# per-message problem codes: 1 short header, 1 + name code for the question name,
# 6 question cut after its name, 7 a resource record truncated or malformed
P_HEADER, P_QFIXED, P_RR = 1, 6, 7
D_TEXT, D_NULL, D_PYTHON = 0, 1, 2  # answer data: rendered, null, left to Python (AAAA, TXT, hex)


NAME_ROOM = 1100  # most text one name can make: 253 label bytes as \\DDD plus dots


@njit
def _u16(buf, p):
    return (np.int64(buf[p]) << 8) | np.int64(buf[p + 1])


@njit
def _name(buf, m0, me, pos, text, out, o):
    """Read the name at `pos` of the message [m0, me); with `text`, write its lower-case
    presentation form (\\DDD escapes) at out[o:], which has NAME_ROOM bytes free.
    -> (after, error code, new o); on error o is unchanged. Pointers must point
    strictly backwards, which rules out loops."""
    cur, after, wire, o0, first = pos, np.int64(-1), 0, o, True
    for _ in range(MAX_NAME_STEPS):
        if cur < 0 or cur >= me:
            return -1, TRUNC, o0
        ln = np.int64(buf[cur])
        if ln == 0:
            return (cur + 1 if after < 0 else after), 0, o
        kind = ln & 0xC0
        if kind == 0xC0:
            if cur + 1 >= me:
                return -1, BAD_POINTER, o0
            target = m0 + (((ln & 0x3F) << 8) | np.int64(buf[cur + 1]))
            if target >= cur:
                return -1, BAD_POINTER, o0
            if after < 0:
                after = cur + 2
            cur = target
            continue
        if kind != 0:
            return -1, BAD_LABEL, o0
        wire += ln + 1
        if cur + 1 + ln > me:
            return -1, TRUNC, o0
        if wire > 254:
            return -1, TOO_LONG, o0
        if text:
            if not first:
                out[o] = 46  # '.'
                o += 1
            first = False
            for p in range(cur + 1, cur + 1 + ln):
                b = np.int64(buf[p])
                if 65 <= b <= 90:
                    b += 32
                if 0x21 <= b <= 0x7E and b != 0x2E and b != 0x5C:
                    out[o] = b
                    o += 1
                else:  # as \\DDD, like dig
                    out[o] = 92
                    out[o + 1] = 48 + b // 100
                    out[o + 2] = 48 + b // 10 % 10
                    out[o + 3] = 48 + b % 10
                    o += 4
        cur += 1 + ln
    return -1, TOO_LONG, o0


@njit
def _decimal(out, o, v):
    """Write v (0..65535) in decimal at out[o:] -> new o."""
    digits, t = 1, v
    while t >= 10:
        t //= 10
        digits += 1
    for d in range(digits - 1, -1, -1):
        out[o + d] = 48 + v % 10
        v //= 10
    return o + digits


@njit
def _render(buf, m0, me, rtype, rdata, rdlen, out, o):
    """Answer data as dig shows it (A, NS/CNAME/PTR, MX) at out[o:] (NAME_ROOM free)
    -> (kind, new o)."""
    if rtype == 1 and rdlen == 4:
        for j in range(4):
            o = _decimal(out, o, np.int64(buf[rdata + j]))
            if j < 3:
                out[o] = 46
                o += 1
        return D_TEXT, o
    if rtype == 2 or rtype == 5 or rtype == 12:
        _, err, o2 = _name(buf, m0, me, rdata, True, out, o)
        return (D_TEXT if err == 0 else D_NULL), o2
    if rtype == 15:
        if rdlen < 3:
            return D_NULL, o
        o2 = _decimal(out, o, _u16(buf, rdata))
        out[o2] = 32
        _, err, o3 = _name(buf, m0, me, rdata + 2, True, out, o2 + 1)
        return (D_TEXT, o3) if err == 0 else (D_NULL, o)
    return D_PYTHON, o


@njit
def _parse_into(buf, msg, mend, state, flag, word, count, prob, q_off, q_txt, ans, a_noff, a_ntxt, a_doff, a_dtxt):
    """Decode messages state[0]... into the given arrays; stop early (state says where)
    when a buffer might not hold the next message's worst case, for the caller to grow
    it. (Arrays are never reassigned in here: in a loop that costs numba refcounting
    on every message, more than the decoding itself.)
    flag: header_ok, question_ok, question name ok, over MAX_RECORDS; word: id, flags,
    qtype, qclass, EDNS size; count: qdcount, ancount, record of a malformed RR;
    ans: message, type, TTL, rdata offset, rdlength, data kind; state: message,
    q_txt, answer, a_ntxt and a_dtxt positions."""
    k = len(msg)
    i, qo, na, no, do = state[0], state[1], state[2], state[3], state[4]
    while i < k:
        if qo + NAME_ROOM > len(q_txt) or na + MAX_RECORDS > ans.shape[1] \
                or no + MAX_RECORDS * NAME_ROOM > len(a_ntxt) or do + MAX_RECORDS * NAME_ROOM > len(a_dtxt):
            break
        m0, me = msg[i], mend[i]
        if m0 < 0 or m0 + 12 > me:
            prob[i] = P_HEADER
            q_off[i + 1] = qo
            i += 1
            continue
        flag[0, i] = True
        word[0, i], word[1, i], count[0, i], count[1, i] = _u16(buf, m0), _u16(buf, m0 + 2), _u16(buf, m0 + 4), _u16(buf, m0 + 6)
        qd, an, ns, ar = count[0, i], count[1, i], _u16(buf, m0 + 8), _u16(buf, m0 + 10)
        pos, alive = m0 + 12, True
        if qd > 0:
            after, err, qo2 = _name(buf, m0, me, m0 + 12, True, q_txt, qo)
            if err != 0:
                prob[i], alive = 1 + err, False
            elif after + 4 > me:
                prob[i], alive = P_QFIXED, False
            else:
                flag[1, i] = flag[2, i] = True
                qo, word[2, i], word[3, i], pos = qo2, _u16(buf, after), _u16(buf, after + 2), after + 4
        else:
            flag[1, i] = True
        q_off[i + 1] = qo
        if alive:
            for _ in range(1, qd):  # further questions are skipped; a bad one ends the message quietly
                aft, err, _o = _name(buf, m0, me, pos, False, q_txt, qo)
                if err != 0 or aft + 4 > me:
                    alive = False
                    break
                pos = aft + 4
        if not alive:
            i += 1
            continue
        total = an + ns + ar
        flag[3, i] = total > MAX_RECORDS
        for j in range(min(total, MAX_RECORDS)):
            is_ans = j < an
            no0, err = no, 0
            if is_ans and flag[2, i] and pos + 2 <= me and _u16(buf, pos) == 0xC00C:  # the question's name
                after = pos + 2
                for p in range(q_off[i], q_off[i + 1]):
                    a_ntxt[no] = q_txt[p]
                    no += 1
            else:
                after, err, no = _name(buf, m0, me, pos, is_ans, a_ntxt, no)
            if err != 0 or after + 10 > me or after + 10 + _u16(buf, after + 8) > me:
                prob[i], count[2, i] = P_RR, j
                no = no0
                break
            rtype, rclass, rdlen = _u16(buf, after), _u16(buf, after + 2), _u16(buf, after + 8)
            if is_ans:
                ans[0, na], ans[1, na], ans[3, na], ans[4, na] = i, rtype, after + 10, rdlen
                ans[2, na] = (_u16(buf, after + 4) << 16) | _u16(buf, after + 6)
                ans[5, na], do = _render(buf, m0, me, rtype, after + 10, rdlen, a_dtxt, do)
                na += 1
                a_noff[na], a_doff[na] = no, do
            if rtype == OPT and j >= an + ns:
                word[4, i] = rclass
            pos = after + 10 + rdlen
        i += 1
    state[0], state[1], state[2], state[3], state[4] = i, qo, na, no, do


def _bigger(a: np.ndarray, need: int) -> np.ndarray:
    """`a` (grown along its last axis to at least `need`, doubling) with its content."""
    if a.shape[-1] >= need:
        return a
    b = np.zeros(a.shape[:-1] + (max(2 * a.shape[-1], need),), a.dtype)
    b[..., : a.shape[-1]] = a
    return b


def _parse(buf, msg, mend):
    k = len(msg)
    flag, word, count = np.zeros((4, k), np.bool_), np.zeros((5, k), np.uint16), np.zeros((3, k), np.int64)
    prob, q_off, state = np.zeros(k, np.int8), np.zeros(k + 1, np.int64), np.zeros(5, np.int64)
    room = MAX_RECORDS * NAME_ROOM  # one message's worst case
    q_txt, ans = np.empty(24 * k + NAME_ROOM, np.uint8), np.zeros((6, 2 * k + MAX_RECORDS), np.int64)
    a_noff, a_doff = np.zeros(2 * k + MAX_RECORDS + 1, np.int64), np.zeros(2 * k + MAX_RECORDS + 1, np.int64)
    a_ntxt, a_dtxt = np.empty(24 * k + room, np.uint8), np.empty(16 * k + room, np.uint8)
    while True:
        _parse_into(buf, msg, mend, state, flag, word, count, prob, q_off, q_txt, ans, a_noff, a_ntxt, a_doff, a_dtxt)
        i, qo, na, no, do = (int(v) for v in state)
        if i == k:
            break
        q_txt, a_ntxt, a_dtxt = _bigger(q_txt, qo + NAME_ROOM), _bigger(a_ntxt, no + room), _bigger(a_dtxt, do + room)
        ans, a_noff, a_doff = _bigger(ans, na + MAX_RECORDS), _bigger(a_noff, na + MAX_RECORDS + 1), \
            _bigger(a_doff, na + MAX_RECORDS + 1)
    return (flag, word, count, prob, q_off, q_txt[:qo], ans[:, :na], a_noff[: na + 1], a_ntxt[:no],
            a_doff[: na + 1], a_dtxt[:do])


def parse_messages(buf: np.ndarray, msg: np.ndarray, mend: np.ndarray) -> Messages:
    """Decode the DNS messages buf[msg[i]:mend[i]] (see `dns_wire.parse_messages`)."""
    k = len(msg)
    msg = np.ascontiguousarray(msg, np.int64)
    mend = np.minimum(np.asarray(mend, np.int64), len(buf))  # a message never reads past the buffer
    flag, word, count, prob, q_off, q_txt, ans, a_noff, a_ntxt, a_doff, a_dtxt = _parse(buf, msg, mend)
    hdr_ok, q_ok, qn_ok, over = flag
    ident, flags, qtype, qclass, edns = word
    qd, an, rr_j = count
    a_row, a_type, a_ttl, a_rdata, a_rdlen, a_kind = ans
    qname = strings_from_bytes(q_txt, np.diff(q_off), qn_ok)
    problems = {"dns: message shorter than its 12-byte header": np.flatnonzero(prob == P_HEADER)}
    for code, why in NAME_REASONS.items():
        problems[f"dns: question {why}"] = np.flatnonzero(prob == 1 + code)
    problems["dns: question truncated after the name"] = np.flatnonzero(prob == P_QFIXED)
    rr = np.flatnonzero(prob == P_RR)  # listed by record number, then message, as the lock-step walk finds them
    problems["dns: resource record truncated or malformed"] = rr[np.argsort(rr_j[rr], kind="stable")]
    problems[f"dns: more than {MAX_RECORDS} records, the rest not parsed"] = np.flatnonzero(over)
    data = strings_from_bytes(a_dtxt, np.diff(a_doff), a_kind == D_TEXT)
    slow = np.flatnonzero(a_kind == D_PYTHON)
    if len(slow):
        data = pc.replace_with_mask(data, pa.array(a_kind == D_PYTHON), pa.array(
            [_render_slow(buf, int(a_type[i]), int(a_rdata[i]), int(a_rdlen[i])) for i in slow], pa.string()))
    values = pa.StructArray.from_arrays(
        [strings_from_bytes(a_ntxt, np.diff(a_noff)), pa.array(a_type.astype(np.uint16)), pa.array(a_ttl.astype(np.uint32)),
         data], fields=list(DNS_ANSWER))
    offsets = np.zeros(k + 1, np.int32)
    np.cumsum(np.bincount(a_row, minlength=k), out=offsets[1:])
    answers = pa.ListArray.from_arrays(pa.array(offsets), values, type=pa.list_(DNS_ANSWER))
    return Messages(hdr_ok, q_ok, ident, (flags >> 15).astype(bool), (flags & 0xF).astype(np.uint8), qd, an,
                    qname, qtype, qclass, edns, answers, {r: i for r, i in problems.items() if len(i)})

