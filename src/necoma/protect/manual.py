"""An action an operator files by hand (`necoma actions add`): command-line words -> a checked `Action`.

Pure parsing and checking; storing, preview, policy and safety are the lifecycle's
(`Protector.file_by_hand`), the same as for a playbook's proposal. Every problem is a
`ValueError` whose message names the option and what it accepts.
"""
from __future__ import annotations

import json
import re
from typing import Any

from pydantic import ValidationError

from necoma.protect.model import KINDS, Action, Match, PortRange

PROTOCOLS = {"icmp": 1, "igmp": 2, "tcp": 6, "udp": 17, "gre": 47, "esp": 50, "ah": 51, "icmpv6": 58,
             "ipv6-icmp": 58, "sctp": 132}
TRAFFIC = frozenset({"drop", "rate_limit", "blackhole", "isolate"})
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
_RATE_UNITS = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9}


def split(values: list[str] | None) -> tuple[str, ...]:
    """Repeated options, each possibly comma-separated."""
    return tuple(v.strip() for item in values or () for v in item.split(",") if v.strip())


def protocol(text: str) -> int:
    """'udp', 'tcp', 'icmp', ... or a number 0-255."""
    t = text.strip().lower()
    if t in PROTOCOLS:
        return PROTOCOLS[t]
    if t.isdigit() and int(t) <= 255:
        return int(t)
    raise ValueError(f"--proto {text!r}: give a name ({', '.join(sorted(PROTOCOLS))}) or a number 0-255")


def duration(text: str) -> int:
    """Seconds from '3600', '90m', '4h', '1d'."""
    m = re.fullmatch(r"\s*(\d+)\s*([smhd]?)\s*", text.lower())
    if not m or int(m[1]) == 0:
        raise ValueError(f"--ttl {text!r}: give a positive duration like 3600, 90m, 4h or 1d")
    return int(m[1]) * _UNITS[m[2]]


def rate(text: str) -> int:
    """Bits per second from '1000000', '10M', '500k'."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmg]?)(?:bps|bit/s)?\s*", text.lower())
    if not m or float(m[1]) <= 0:
        raise ValueError(f"--rate {text!r}: give bits per second like 1000000, 500k or 10M")
    return int(float(m[1]) * _RATE_UNITS[m[2]])


def length(text: str) -> tuple[int, int]:
    """IP packet length: '1500' or 'LO-HI' (inclusive), e.g. '201-65535'."""
    lo, sep, hi = text.strip().partition("-")
    try:
        rng = (int(lo), int(hi) if sep else int(lo))
    except ValueError:
        raise ValueError(f"--length {text!r}: give a length (1500) or an inclusive range (201-65535)") from None
    if not 0 <= rng[0] <= rng[1] <= 65535:
        raise ValueError(f"--length {text!r}: must satisfy 0 <= low <= high <= 65535")
    return rng


def ports(values: tuple[str, ...], option: str) -> tuple[PortRange, ...]:
    out = []
    for v in values:
        try:
            out.append(PortRange.parse(v))
        except (ValueError, ValidationError):
            raise ValueError(f"{option} {v!r}: give a port (123) or an inclusive range (1000-2000), 0-65535") from None
    return tuple(sorted(set(out), key=lambda r: (r.lo, r.hi)))


def param(text: str) -> tuple[str, Any]:
    """KEY=VALUE; the value is read as JSON when it is JSON (numbers, true, lists), else kept as text."""
    key, sep, value = text.partition("=")
    if not sep or not re.fullmatch(r"[a-z_][a-z0-9_]*", key.strip()):
        raise ValueError(f"--param {text!r}: give KEY=VALUE, e.g. recipients=[\"noc@example.org\"]")
    try:
        return key.strip(), json.loads(value)
    except ValueError:
        return key.strip(), value


def build(kind: str, point: str, *, dst=(), src=(), proto: str | None = None, dst_ports=(), src_ports=(),
          packet_length: str | None = None, fragment: str | None = None, tcp_flags: str | None = None,
          domains=(), rate_bps: str | None = None, rpz_action: str | None = None, allow=(),
          params: list[str] | None = None, ttl: str = "1h", reason: str = "") -> Action:
    """The action the options describe (state proposed, no id yet), or ValueError naming what is wrong."""
    if kind not in KINDS:
        raise ValueError(f"kind {kind!r}: one of {', '.join(KINDS)}")
    if not reason.strip():
        raise ValueError("--reason: say in one line why (a person reads it before approving)")
    body: dict[str, Any] = dict(param(p) for p in params or ())
    if rate_bps is not None:
        body["rate_bps"] = rate(rate_bps)
    if rpz_action is not None:
        body["rpz_action"] = rpz_action
    if allow:
        body["allow"] = list(split(list(allow)))
    if kind == "rate_limit" and "rate_bps" not in body:
        raise ValueError("a rate_limit needs --rate (bits per second, e.g. 10M)")
    if kind != "rate_limit" and "rate_bps" in body:
        raise ValueError(f"--rate is for rate_limit, not {kind}")
    if kind != "block_domain" and "rpz_action" in body:
        raise ValueError(f"--rpz-action is for block_domain, not {kind}")
    if kind != "isolate" and "allow" in body:
        raise ValueError(f"--allow is for isolate, not {kind}")
    names = split(list(domains))
    if kind in TRAFFIC and names:
        raise ValueError(f"--domain is for block_domain, report_abuse and notify; a {kind} matches addresses")
    if tcp_flags is not None:
        if not re.fullmatch(r"[FSRPAUEC]+(/[FSRPAUEC]+)?", tcp_flags.upper()):
            raise ValueError(f"--tcp-flags {tcp_flags!r}: flags that must be set, optionally /the mask, from "
                             "F S R P A U E C, e.g. S/SA (SYN set, ACK clear)")
        if proto is None or protocol(proto) != 6:
            raise ValueError("--tcp-flags needs --proto tcp")
        tcp_flags = tcp_flags.upper()
    match_fields = (dst, src, proto, dst_ports, src_ports, packet_length, fragment, tcp_flags)
    if kind == "block_domain" and any(match_fields):
        raise ValueError("a block_domain matches names only: give --domain, no address or port options")
    try:
        match = Match(dst_prefixes=split(list(dst)), src_prefixes=split(list(src)),
                      protocol=protocol(proto) if proto else None,
                      dst_ports=ports(split(list(dst_ports)), "--dst-port"),
                      src_ports=ports(split(list(src_ports)), "--src-port"),
                      packet_length=length(packet_length) if packet_length else None,
                      fragment=fragment, tcp_flags=tcp_flags, domains=names)
        return Action(kind=kind, point=point, match=match, params=body, reason=reason.strip(),
                      ttl_seconds=duration(ttl))
    except ValidationError as exc:
        raise ValueError("; ".join(_say(e) for e in exc.errors())) from None


_OPTION = {"dst_prefixes": "--dst", "src_prefixes": "--src", "fragment": "--fragment", "tcp_flags": "--tcp-flags",
           "domains": "--domain"}


def _say(err: dict) -> str:
    field = next((str(p) for p in err["loc"] if str(p) in _OPTION), ".".join(map(str, err["loc"])))
    value = f" {err['input']!r}" if isinstance(err.get("input"), (str, int)) else ""
    return f"{_OPTION.get(field, field)}{value}: {err['msg'].removeprefix('Value error, ')}"
