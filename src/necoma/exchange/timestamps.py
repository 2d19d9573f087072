"""STIX/TAXII timestamps <-> integer microseconds since the epoch (UTC)."""
from __future__ import annotations

from datetime import datetime, timezone

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def parse_us(text: str) -> int:
    """Microseconds for an RFC 3339 timestamp such as 2016-04-06T20:03:48.123Z.

    Raises ValueError on anything else. Sub-microsecond digits are truncated.
    """
    if not isinstance(text, str) or len(text) < 20 or text[10] not in "Tt":
        raise ValueError(f"not a timestamp: {text!r}")
    head, _, frac = text.rstrip("Zz").partition(".")
    if not text.endswith(("Z", "z")):
        raise ValueError(f"timestamp must be UTC and end in Z: {text!r}")
    base = datetime.strptime(head, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
    if frac and not frac.isdigit():
        raise ValueError(f"not a timestamp: {text!r}")
    micros = int((frac + "000000")[:6]) if frac else 0
    delta = base - _EPOCH
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + micros


def format_us(us: int) -> str:
    """TAXII form with microseconds: 2016-04-06T20:03:48.123456Z."""
    seconds, micros = divmod(us, 1_000_000)
    dt = datetime.fromtimestamp(seconds, tz=timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + f".{micros:06d}Z"
