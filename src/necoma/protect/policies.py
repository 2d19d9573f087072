"""Policies: which proposed actions may apply without a person.

An ordered list; the first policy whose conditions all hold decides, "auto"
(approve and apply now, recorded as decided_by "policy:NAME") or "person"
(wait for `necoma actions approve`). The built-in list is the documented
default; `[[protect.policies]]` in necoma.toml replaces it as a whole (order
matters, so partial overrides would be ambiguous). Whatever a policy says,
the hard safety rules (necoma.protect.safety) still hold: a policy cannot
auto-apply a blackhole, an isolation or a too-wide prefix.
"""
from __future__ import annotations

import ipaddress
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from necoma.config import ProtectSettings
from necoma.protect.model import Action, Kind
from necoma.protect.safety import too_wide

LEVELS = {"low": 0, "medium": 1, "high": 2}


class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    decision: Literal["auto", "person"]
    description: str = ""
    kinds: list[Kind] = Field(default_factory=list)  # empty: any kind
    playbooks: list[str] = Field(default_factory=list)  # empty: any playbook
    min_confidence: Literal["low", "medium", "high"] | None = None  # the incident's confidence
    min_rating: int | None = Field(None, ge=0, le=100)
    dst_within_own: bool = False  # every destination prefix lies inside protect.own_prefixes
    max_ttl_seconds: int | None = Field(None, gt=0)  # the action's TTL is at most this
    wider_than_max: bool = False  # some prefix is wider than max_prefix_v4/v6

    def matches(self, action: Action, cfg: ProtectSettings, confidence: str | None) -> bool:
        if self.kinds and action.kind not in self.kinds:
            return False
        if self.playbooks and action.playbook not in self.playbooks:
            return False
        if self.min_confidence and LEVELS.get(confidence or "low", 0) < LEVELS[self.min_confidence]:
            return False
        if self.min_rating is not None and (action.rating or 0) < self.min_rating:
            return False
        if self.max_ttl_seconds is not None and action.ttl_seconds > self.max_ttl_seconds:
            return False
        if self.wider_than_max and not too_wide(action, cfg):
            return False
        if self.dst_within_own:
            own = [ipaddress.ip_network(p, strict=False) for p in cfg.own_prefixes]
            dst = [ipaddress.ip_network(p) for p in action.match.dst_prefixes]
            if not dst or not all(any(d.version == o.version and d.subnet_of(o) for o in own) for d in dst):
                return False
        return True


DEFAULT_POLICIES: list[dict[str, Any]] = [
    {"name": "blackhole-needs-person", "decision": "person", "kinds": ["blackhole"],
     "description": "A blackhole drops everything toward the prefix, the victim's good traffic too."},
    {"name": "isolation-needs-person", "decision": "person", "kinds": ["isolate"],
     "description": "Cutting a user's host off is a person's call."},
    {"name": "wide-needs-person", "decision": "person", "wider_than_max": True,
     "description": "Anything wider than max_prefix_v4 / max_prefix_v6 (default /24, /48)."},
    {"name": "dga-domains-auto", "decision": "auto", "kinds": ["block_domain"], "playbooks": ["dga_botnet"],
     "min_confidence": "high", "description": "RPZ blocks of DGA names from a high-confidence incident: nobody legitimate resolves them."},
    {"name": "own-prefix-filter-1h", "decision": "auto", "kinds": ["drop", "rate_limit"], "dst_within_own": True,
     "max_ttl_seconds": 3600, "description": "Filters protecting our own prefixes, for at most one hour."},
    {"name": "default-needs-person", "decision": "person", "description": "Everything else waits for a person."},
]


class PolicyError(Exception):
    """The policies in the configuration are invalid; the message says which and why."""


def load_policies(configured: list[dict[str, Any]] | None) -> list[Policy]:
    out = []
    for i, body in enumerate(DEFAULT_POLICIES if configured is None else configured):
        try:
            out.append(Policy.model_validate(body))
        except ValidationError as exc:
            errs = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise PolicyError(f"policy #{i + 1} ({body.get('name', '?')}) is invalid: {errs}") from None
    return out


def decide(action: Action, policies: list[Policy], cfg: ProtectSettings, confidence: str | None) -> Policy | None:
    """The first policy that matches, or None (then a person decides)."""
    return next((p for p in policies if p.matches(action, cfg, confidence)), None)
