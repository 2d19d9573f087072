"""`Action`: one countermeasure — what to do, where, on what, why, for how long, decided by whom.

This is the contract between the decision side (playbooks, policies, preview,
the audit log, `necoma actions`) and the enforcement drivers (nftables, BGP
FlowSpec/RTBH, DNS RPZ, abuse reports, notices). Drivers read `kind`, `match`
and `params`; they never change an action's state, the lifecycle does.
"""
from __future__ import annotations

import hashlib
import ipaddress
import json
from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Kind = Literal[
    "drop",  # discard matching traffic
    "rate_limit",  # police matching traffic to params["rate_bps"]
    "blackhole",  # RTBH: drop everything toward the destination prefixes (RFC 7999)
    "isolate",  # cut a host off except from params["allow"] prefixes
    "block_domain",  # DNS RPZ: the domains answer NXDOMAIN (or params["rpz_action"])
    "report_abuse",  # X-ARF / ARF report to the network owning the source prefixes
    "notify",  # notice to users or operators (webhook, email)
    "advise",  # configuration advice to a server owner (text in params["advice"])
]
KINDS: tuple[str, ...] = Kind.__args__  # type: ignore[attr-defined]

State = Literal["proposed", "approved", "rejected", "applied", "expired", "withdrawn", "failed"]
Fragment = Literal["is-fragment", "first-fragment", "last-fragment", "not-a-fragment", "dont-fragment"]


class PortRange(BaseModel):
    """An inclusive port range; one port when lo == hi."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    lo: int = Field(ge=0, le=65535)
    hi: int = Field(ge=0, le=65535)

    @model_validator(mode="after")
    def _ordered(self) -> "PortRange":
        if self.lo > self.hi:
            raise ValueError(f"port range {self.lo}-{self.hi} is reversed")
        return self

    @classmethod
    def parse(cls, text: str | int) -> "PortRange":
        """'123' or '1000-2000'."""
        lo, _, hi = str(text).partition("-")
        return cls(lo=int(lo), hi=int(hi or lo))

    def __str__(self) -> str:
        return str(self.lo) if self.lo == self.hi else f"{self.lo}-{self.hi}"


class Match(BaseModel):
    """What an action applies to. Empty lists mean 'any'. Fields map onto FlowSpec
    components (RFC 8955 §4.2.2), nftables expressions and the lake's flow columns."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    dst_prefixes: tuple[str, ...] = ()  # CIDR, IPv4 or IPv6
    src_prefixes: tuple[str, ...] = ()
    protocol: int | None = Field(None, ge=0, le=255)  # 6 tcp, 17 udp, 1 icmp, ...
    src_ports: tuple[PortRange, ...] = ()
    dst_ports: tuple[PortRange, ...] = ()
    packet_length: tuple[int, int] | None = None  # inclusive IP total length range
    fragment: Fragment | None = None
    tcp_flags: str | None = None  # e.g. "S/SA" (SYN set, ACK clear), as nfdump/FlowSpec write it
    domains: tuple[str, ...] = ()  # for block_domain; lower case, no trailing dot

    @field_validator("dst_prefixes", "src_prefixes")
    @classmethod
    def _cidr(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(str(ipaddress.ip_network(p, strict=False)) for p in v)

    @field_validator("domains")
    @classmethod
    def _names(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(d.strip().rstrip(".").lower() for d in v)

    @field_validator("packet_length")
    @classmethod
    def _length(cls, v: tuple[int, int] | None) -> tuple[int, int] | None:
        if v is not None and not 0 <= v[0] <= v[1] <= 65535:
            raise ValueError(f"packet length range {v} must satisfy 0 <= min <= max <= 65535")
        return v

    def families(self) -> set[int]:
        """IP versions named by the prefixes (empty when none is named)."""
        return {ipaddress.ip_network(p).version for p in (*self.dst_prefixes, *self.src_prefixes)}


def _utc(t: datetime) -> datetime:
    return t.replace(tzinfo=timezone.utc) if t.tzinfo is None else t.astimezone(timezone.utc)


class Action(BaseModel):
    """One countermeasure and where it stands."""

    model_config = ConfigDict(extra="forbid")
    id: str = ""  # filled from the content by `with_id` (same proposal -> same id while active, so re-proposing is idempotent)
    kind: Kind
    point: str  # enforcement point name, a key of [protect.points] in necoma.toml
    match: Match = Field(default_factory=Match)
    params: dict[str, Any] = Field(default_factory=dict)  # kind-specific: rate_bps, rpz_action, recipients, advice, ...
    incident_id: str | None = None
    rating: int | None = None  # the incident's rating when proposed
    reason: str = ""  # one line a person reads before approving
    playbook: str | None = None
    ttl_seconds: int = Field(3600, gt=0)  # every rule expires
    state: State = "proposed"
    decided_by: str | None = None  # a user name, or "policy:NAME" for automatic decisions
    created_at: datetime = Field(default_factory=lambda: datetime.now(timezone.utc))
    applied_at: datetime | None = None
    expires_at: datetime | None = None  # applied_at + ttl
    dry_run: bool = False  # applied to the dry-run driver (protect.enforce off): nothing was installed for real

    @field_validator("created_at", "applied_at", "expires_at")
    @classmethod
    def _tz(cls, v: datetime | None) -> datetime | None:
        return None if v is None else _utc(v)

    def content_key(self) -> str:
        """Identity of what the action does (not of its state)."""
        body = {"kind": self.kind, "point": self.point, "match": self.match.model_dump(mode="json"),
                "params": self.params, "incident": self.incident_id}
        return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()

    def with_id(self, generation: int = 0) -> "Action":
        """The id from the content. `generation` n > 0 names the n-th re-proposal of the same content after
        the earlier ones ended (expired, withdrawn, failed): a recurring attack gets a fresh action."""
        if not generation:
            return self if self.id else self.model_copy(update={"id": "act-" + self.content_key()[:16]})
        key = f"{self.content_key()}#{generation}".encode()
        return self.model_copy(update={"id": "act-" + hashlib.sha256(key).hexdigest()[:16]})


class DriverError(Exception):
    """An enforcement point refused or failed; the message says which and why."""
