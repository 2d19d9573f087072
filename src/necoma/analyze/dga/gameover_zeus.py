"""GameOver ZeuS ("newGOZ", 2014) domain generation algorithm.

As reverse-engineered in 2014: for day D and index i in 0..count-1, the MD5 of

    le32(i) ‖ le16(year) ‖ K ‖ le16(month) ‖ K ‖ le16(day) ‖ K,   K = 01 05 19 35

(the salt 0x35190501 stored little-endian). The digest is read as four
little-endian 32-bit words; each is written in base 36 (0-9a-z, most
significant digit first, no padding) and the four strings are concatenated.
The TLD is `.com` if i%4==0, else `.org` if i%3==0, else `.biz` if i%2==0,
else `.net`. Bots try up to 1000 names per day.

Test vector (2014-06-01, i = 0..3): jjxcu32oe5o6nsd22ugdd72i.com,
ckkg8f17uzqq11jpava31ajb0k2.net, me8hlf1s0eqnsv8zqhuzn1mj2.biz,
147snji1mfy625q2bxm215gaz4g.org.

The testbed uses this to make infected hosts' queries; the zeus_dga detector
uses it to recognise them. Keep it the single implementation.
"""
from __future__ import annotations

import hashlib
import struct
from datetime import date, timedelta
from functools import lru_cache

SALT = bytes.fromhex("01051935")  # 0x35190501 little-endian
DOMAINS_PER_DAY = 1000
_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


def _base36(n: int) -> str:
    if n == 0:
        return "0"
    out = []
    while n:
        n, r = divmod(n, 36)
        out.append(_DIGITS[r])
    return "".join(reversed(out))


def _tld(i: int) -> str:
    if i % 4 == 0:
        return ".com"
    if i % 3 == 0:
        return ".org"
    if i % 2 == 0:
        return ".biz"
    return ".net"


def domain(day: date, i: int) -> str:
    """The i-th GameOver ZeuS domain of `day`."""
    seed = (struct.pack("<IH", i, day.year) + SALT + struct.pack("<H", day.month) + SALT
            + struct.pack("<H", day.day) + SALT)
    words = struct.unpack("<4I", hashlib.md5(seed).digest())
    return "".join(_base36(w) for w in words) + _tld(i)


@lru_cache(maxsize=64)
def _day_domains(day: date, count: int) -> tuple[str, ...]:
    return tuple(domain(day, i) for i in range(count))


def domains(day: date, count: int = DOMAINS_PER_DAY) -> list[str]:
    """The first `count` domains of `day`, in the order the bots try them."""
    return list(_day_domains(day, count))


def domains_around(day: date, before: int = 1, after: int = 1, count: int = DOMAINS_PER_DAY) -> dict[str, date]:
    """Domains of `day` and its neighbours (bot clocks are off), name -> the day it belongs to."""
    out: dict[str, date] = {}
    for k in range(-before, after + 1):
        d = day + timedelta(days=k)
        for name in _day_domains(d, count):
            out.setdefault(name, d)
    return out
